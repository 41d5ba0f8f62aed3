"""What operators ask of a station, device-free: start a batch, resume after a fault, name the
operator (loading blanks is the ledger's :func:`printsrv.ledger.blanks.load_blanks`). The CLI
and the web app call these; the running daemon reads the requests from the ``details`` of the
station's one row (:class:`printsrv.ledger.models.Station`). Nothing here imports ``chip``,
``printers`` or the daemon (``tests/test_import_rules.py`` checks it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv import audit
from printsrv.audit_tags import StationTag
from printsrv.errors import StateError
from printsrv.ledger.models import Station

#: The most cards one batch request may ask for.
MAX_BATCH = 1000


def _running_station(session: Session, name: str) -> Station | None:
    """Station ``name`` if its daemon has ever run (requests are for a daemon to read)."""
    row = session.scalar(select(Station).where(Station.name == name))
    return row if row is not None and row.has_run else None


def batch_remaining(row: Station | None) -> int:
    """The cards still requested of a station."""
    value = (row.details or {}).get("batch", 0) if row is not None else 0
    return value if isinstance(value, int) and value > 0 else 0


def set_operator(session: Session, row: Station, operator: str | None) -> None:
    """Name the person now operating the station (the last one to start it or ask it for a
    batch); the cards it makes from now on are theirs."""
    details = {k: v for k, v in (row.details or {}).items() if k != "operator"}
    if operator:
        details["operator"] = operator[:64]
    row.details = details


def current_operator(row: Station | None, default: str | None) -> str | None:
    """Who operates the station for the card being started: the operator named on its row,
    else ``default`` (its configuration)."""
    named = (row.details or {}).get("operator") if row is not None else None
    return str(named) if named else default


def add_batch_request(session: Session, name: str, count: int, *, actor: str) -> int | None:
    """Ask station ``name`` (running with ``on_request``) for ``count`` more cards, in the
    caller's transaction; returns the cards now requested, ``None`` if it has never run."""
    if not 1 <= count <= MAX_BATCH:
        raise StateError(f"a batch is 1 to {MAX_BATCH} cards, not {count}")
    row = _running_station(session, name)
    if row is None:
        return None
    total = batch_remaining(row) + count
    row.details = {**(row.details or {}), "batch": total}
    set_operator(session, row, actor)
    audit.record(session, StationTag.BATCH_REQUEST, actor=actor, subject=name,
                 details={"count": count, "requested": total})  # fmt: skip
    return total


def request_resume(session: Session, name: str) -> bool:
    """Ask the running station ``name`` to resume (an operator cleared the printer), in the
    caller's transaction; ``False`` when it has never run. The daemon reads it while paused."""
    row = _running_station(session, name)
    if row is None:
        return False
    row.details = {**(row.details or {}), "resume": True}
    return True


def resume_requested(row: Station | None) -> bool:
    """Whether an operator asked the paused station to resume."""
    return bool(row is not None and (row.details or {}).get("resume"))
