"""IKD (*Identitas Kependudukan Digital*) activations: imported from the office's daily CSV or
entered on a form, and set beside the blanks each office received and used in a month.

An office that pushes the digital KTP saves blanks: the share of activations against the blanks
received is held to a target (the 2023 national target is at least 50 %, setting
``ikd_target_percent``), and offices below it are flagged.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from printsrv import audit
from printsrv.audit_tags import DeskTag
from printsrv.desk.models import IkdActivation
from printsrv.errors import IntakeError
from printsrv.localtime import local_date, month_bounds, now_utc, office_zone
from printsrv.models import Office

IMPORT_TAG = DeskTag.IKD_IMPORT
_CODE = re.compile(r"\d{2}\.\d{2}\.\d{2}")
HEADER = ("date", "office_code", "activations")


@dataclass(frozen=True)
class IkdLine:
    line: int
    day: date
    office_code: str
    activations: int


def parse_csv(text: str, *, source: str) -> list[IkdLine]:
    """Every line of an IKD CSV (``date,office_code,activations``), or an
    :class:`IntakeError` naming every bad line and field; nothing is half-read."""
    problems: list[str] = []
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(c.strip().lower() for c in rows[0]) != HEADER:
        raise IntakeError(f"{source}: the first line must be {','.join(HEADER)}",
                          [f"line 1: header: expected {','.join(HEADER)}"])  # fmt: skip
    out: list[IkdLine] = []
    seen: dict[tuple[str, date], int] = {}
    now = now_utc()
    for number, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 3:
            problems.append(f"line {number}: expected 3 fields, got {len(row)}")
            continue
        raw_day, code, raw_count = (c.strip() for c in row)
        line_problems = []
        code_ok = _CODE.fullmatch(code) is not None
        try:
            day = date.fromisoformat(raw_day)
            # "today" is the office's own date (WIB/WITA/WIT), not the server's UTC one
            if day > (local_date(code, now=now) if code_ok else now.date()):
                line_problems.append(f"line {number}: date: {raw_day} is in the future")
        except ValueError:
            line_problems.append(f"line {number}: date: {raw_day[:20]!r} is not YYYY-MM-DD")
            day = now.date()
        if not code_ok:
            line_problems.append(f"line {number}: office_code: {code[:20]!r} is not PP.KK.CC")
        if not raw_count.isdigit() or len(raw_count) > 7:
            line_problems.append(f"line {number}: activations: {raw_count[:20]!r} is not a "
                                 "whole number ≥ 0")  # fmt: skip
        key = (code, day)
        if not line_problems and key in seen:
            line_problems.append(f"line {number}: the same office and date as line {seen[key]}")
        if line_problems:
            problems += line_problems
            continue
        seen[key] = number
        out.append(IkdLine(number, day, code, int(raw_count)))
    if problems:
        raise IntakeError(f"{source}: {len(problems)} problems; nothing imported", problems)
    return out


def record_lines(
    session: Session, lines: list[IkdLine], *, source: str, actor: str,
    allowed_offices: set[str] | None = None,
) -> int:
    """Store the lines (a later figure for the same office and day replaces the earlier one,
    audited); offices outside ``allowed_offices`` are refused."""
    if allowed_offices is not None:
        outside = sorted({ln.office_code for ln in lines} - allowed_offices)
        if outside:
            raise IntakeError(f"{source}: offices outside your scope: {', '.join(outside)}",
                              [f"office_code: {c} is not yours" for c in outside])  # fmt: skip
    for ln in lines:
        row = session.scalar(select(IkdActivation).where(
            IkdActivation.office_code == ln.office_code, IkdActivation.day == ln.day))
        if row is None:
            session.add(IkdActivation(office_code=ln.office_code, day=ln.day,
                                      activations=ln.activations, source=source[:120],
                                      entered_by=actor, at=datetime.now(UTC)))  # fmt: skip
        else:
            row.activations, row.source, row.entered_by = ln.activations, source[:120], actor
            row.at = datetime.now(UTC)
    audit.record(session, IMPORT_TAG, actor=actor, subject=source[:120],
                 details={"lines": len(lines),
                          "activations": sum(ln.activations for ln in lines)})  # fmt: skip
    return len(lines)


def import_file(session: Session, path: Path, *, actor: str) -> int:
    lines = parse_csv(path.read_text(encoding="utf-8-sig"), source=path.name)
    return record_lines(session, lines, source=path.name, actor=actor)


@dataclass(frozen=True)
class IkdMonth:
    """One office's month: IKD activations beside the blanks it received and used."""

    office_code: str
    office_name: str
    activations: int
    blanks_received: int
    blanks_issued: int
    target_percent: int

    @property
    def share(self) -> float | None:
        """Activations as a share of the blanks received (None without any blank)."""
        return self.activations / self.blanks_received if self.blanks_received else None

    @property
    def below_target(self) -> bool:
        share = self.share
        return share is not None and share * 100 < self.target_percent


def month_summary(
    session: Session, office_ids: list[int], month: str, *, target_percent: int
) -> list[IkdMonth]:
    """Each office's IKD month (the office's local month)."""
    from printsrv.ledger.models import MovementKind

    out = []
    for office in session.scalars(select(Office).where(Office.id.in_(office_ids))
                                  .order_by(Office.code)):  # fmt: skip
        zone = office_zone(office.code)
        start, end = month_bounds(month, zone)
        first, last = zone.local(start).date(), zone.local(end).date()
        activations = session.scalar(
            select(func.coalesce(func.sum(IkdActivation.activations), 0)).where(
                IkdActivation.office_code == office.code, IkdActivation.day >= first,
                IkdActivation.day < last)) or 0  # fmt: skip

        received = _moved(session, office.id, MovementKind.RECEIVE, start, end) + _moved(
            session, office.id, MovementKind.TRANSFER, start, end)
        issued = _moved(session, office.id, MovementKind.ISSUE, start, end)
        out.append(IkdMonth(office.code, office.name, int(activations), received, issued,
                            target_percent))  # fmt: skip
    return out


def _moved(session: Session, office_id: int, kind: Any, start: datetime, end: datetime) -> int:
    """Blanks that made movement ``kind`` into (transfer) or at (else) the office."""
    from printsrv.ledger.models import BlankMovement, MovementKind

    where = (BlankMovement.to_office_id == office_id if kind is MovementKind.TRANSFER
             else BlankMovement.office_id == office_id)  # fmt: skip
    count = session.scalar(
        select(func.count()).select_from(BlankMovement).where(
            BlankMovement.kind == kind, BlankMovement.at >= start, BlankMovement.at < end, where
        )
    )
    return int(count or 0)
