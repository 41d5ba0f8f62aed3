"""``run.py doctor``: check a running installation, one line per check.

Each check returns a :class:`Check` (name, ok, detail); :func:`run_checks` runs them all and
never stops at the first failure, so an administrator sees everything that is wrong at once.
The checks read; none of them changes the installation.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from printsrv.config import Settings

#: Less free space than this under the instance folder fails the disk check.
MIN_FREE_BYTES = 1 << 30
#: A clock this far from the database server's fails the clock check (PostgreSQL).
MAX_CLOCK_SKEW_SECONDS = 60.0


@dataclass(frozen=True)
class Check:
    """The outcome of one check."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        """``ok   name: detail`` or ``FAIL name: detail``."""
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def _database(settings: Settings) -> Check:
    from printsrv import schema

    try:
        current = schema.current_revision(settings)
        head = schema.head_revision()
    except Exception as exc:  # any driver error is the finding
        return Check("database", False, f"unreachable: {_short(exc)}")
    where = _redacted_url(settings.sqlalchemy_url)
    if current != head:
        return Check(
            "database", False, f"{where} at revision {current}, code expects {head}: run init"
        )
    return Check("database", True, f"{where} reachable, migrated ({head})")


def _token(settings: Settings) -> Check:
    from printsrv.keys import KeyStore

    try:
        with KeyStore.open(settings) as store:
            missing = store.missing_keys()
    except Exception as exc:
        return Check("token", False, _short(exc))
    if missing:
        return Check("token", False, f"{settings.token_label!r} lacks {', '.join(missing)}")
    return Check("token", True, f"{settings.token_label!r} holds every key")


def _readers(settings: Settings) -> Check:
    wanted = {
        name: str(cfg.get("reader", ""))
        for name, cfg in settings.stations.items()
        if str(cfg.get("encoder", "pcsc")) == "pcsc"
    }
    if not wanted:
        return Check("pcscd readers", True, "no station uses a PC/SC encoder")
    try:
        from chip.pcsc import list_readers

        present = set(list_readers())
    except Exception as exc:
        return Check("pcscd readers", False, f"pcscd: {_short(exc)}")
    absent = [f"{name} ({reader!r})" for name, reader in wanted.items() if reader not in present]
    if absent:
        return Check("pcscd readers", False, "reader missing for " + ", ".join(absent))
    return Check("pcscd readers", True, f"{len(wanted)} station reader(s) present")


def _printers(settings: Settings) -> Check:
    stations = settings.stations
    if not stations:
        return Check("printers", True, "no station configured")
    problems, seen = [], []
    for name in sorted(stations):
        try:
            from printsrv.station.devices import StationConfig, build_printer

            config = StationConfig.from_settings(settings, name)
            printer = build_printer(settings, config)
            status = printer.status()
        except Exception as exc:
            problems.append(f"{name}: {_short(exc)}")
            continue
        seen.append(f"{name}: {status.state.name.lower()}")
    if problems:
        return Check("printers", False, "; ".join(problems))
    return Check("printers", True, "; ".join(seen))


def _disk(settings: Settings) -> Check:
    path = settings.instance_dir
    probe = path if path.exists() else path.parent
    free = shutil.disk_usage(probe).free
    detail = f"{free / (1 << 30):.1f} GiB free under {path}"
    return Check("disk", free >= MIN_FREE_BYTES, detail)


def _clock(settings: Settings) -> Check:
    from sqlalchemy import func, select, text

    from printsrv.db import unit_of_work
    from printsrv.models import AuditEvent

    now = datetime.now(UTC)
    try:
        with unit_of_work(settings) as session:
            newest = session.execute(select(func.max(AuditEvent.at))).scalar()
            server_now = (
                session.execute(text("SELECT now()")).scalar() if settings.is_postgres else None
            )
    except Exception as exc:
        return Check("clock", False, f"cannot read the database: {_short(exc)}")
    if newest is not None:
        if newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        if newest > now:
            return Check(
                "clock", False, f"behind the newest audit event ({newest.isoformat()}): "
                "the clock went backwards"
            )
    if server_now is not None:
        skew = abs((server_now - now).total_seconds())
        if skew > MAX_CLOCK_SKEW_SECONDS:
            return Check("clock", False, f"{skew:.0f} s off the database server's clock")
        return Check("clock", True, f"{skew:.1f} s from the database server")
    return Check("clock", True, f"{now.isoformat(timespec='seconds')} (UTC)")


def _audit(settings: Settings) -> Check:
    from printsrv import audit, checkpoints
    from printsrv.db import unit_of_work

    started = time.perf_counter()
    try:
        with unit_of_work(settings) as session:
            report = audit.verify(session)
            anchored = checkpoints.verify(session, settings)
    except Exception as exc:
        return Check("audit log", False, _short(exc))
    took = time.perf_counter() - started
    problems = [p.reason for p in report.problems] + anchored.problems
    if problems:
        return Check("audit log", False, f"{len(problems)} problem(s), first: {problems[0]}")
    return Check("audit log", True, f"{report.events} events verified against "
                 f"{anchored.checkpoints} signed checkpoint(s) in {took:.1f} s")


def _holds(settings: Settings) -> Check:
    from printsrv.backup import active_hold
    from printsrv.db import unit_of_work

    try:
        with unit_of_work(settings) as session:
            hold = active_hold(session)
    except Exception as exc:
        return Check("print holds", False, f"cannot read the database: {_short(exc)}")
    if hold:
        return Check("print holds", False, f"stations will not print: {hold}")
    return Check("print holds", True, "none open")


CHECKS: tuple[Callable[[Settings], Check], ...] = (
    _database,
    _token,
    _readers,
    _printers,
    _disk,
    _clock,
    _audit,
    _holds,
)


def run_checks(settings: Settings) -> Iterator[Check]:
    """Run every check in order; a check that raises unexpectedly is reported as failed."""
    for check in CHECKS:
        try:
            yield check(settings)
        except Exception as exc:
            yield Check(check.__name__.lstrip("_"), False, f"check crashed: {_short(exc)}")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _redacted_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed: Any = make_url(url)
    return str(parsed.render_as_string(hide_password=True))
