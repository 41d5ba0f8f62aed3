"""Stock for the web tests: blanks, a station, a ribbon, spoiled blanks, a pending adjustment,
a destruction record and a handover record in the "own" and the "other" kecamatan office."""

from __future__ import annotations

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.ledger import adjustments, blanks, ribbons
from printsrv.ledger.models import AdjustmentKind, ConsumableKind, SpoilCause, Station
from printsrv.models import Office

SCOPES = {"own": ("35.26.01", "A"), "other": ("35.27.01", "B")}


def serial(prefix: str, n: int) -> str:
    return f"{prefix}-{n:06d}"


def make_stock(settings: Settings) -> dict[str, dict[str, str]]:
    """Per scope: office code, serial prefix, station id, ids of the documents and of a
    pending adjustment (requested by the scope's operator)."""
    out: dict[str, dict[str, str]] = {}
    with unit_of_work(settings) as s:
        for scope, (code, p) in SCOPES.items():
            office = s.query(Office).filter_by(code=code).one()
            handover = blanks.receive_blanks(
                s, office_code=code, first=serial(p, 1), last=serial(p, 30),
                handover_number=f"BAST-{scope.upper()}-1", actor="test", carton=f"CTN-{p}",
                from_party="Ditjen Dukcapil",
            )
            station = s.query(Station).filter_by(name=f"ST-{scope.upper()}").one_or_none()
            if station is None:
                station = Station(name=f"ST-{scope.upper()}", office_id=office.id,
                                  printer_status={})
                s.add(station)
                s.flush()
            blanks.load_blanks(s, station, actor=f"operator_{scope}",
                               serials=[serial(p, n) for n in range(21, 26)])
            for n in (1, 2, 3, 4):
                blank = blanks.blank_by_serial(s, serial(p, n))
                blanks.spoil_blank(s, blank, cause=SpoilCause.PRINT_DEFECT, actor="test")
            destruction = blanks.destroy_blanks(
                s, office_code=code, number=f"BAP-{scope.upper()}-1",
                officers=("BUDI / NIP 1", "SITI / NIP 2"), witness="ANDI / NIP 3",
                witness_role="Inspektorat", actor="test", serials=[serial(p, 1)],
            )
            for suffix in ("1", "T"):  # T: the roll the authorization matrix transfers
                ribbons.receive_consumable(
                    s, kind=ConsumableKind.RIBBON, office_code=code, serial=f"RIB-{p}{suffix}",
                    type_="YMCKO", capacity=500, actor="test",
                )
            adjustment = adjustments.request_adjustment(
                s, office_code=code, kind=AdjustmentKind.WRITE_OFF,
                serials=[serial(p, 10)], reason=f"hilang saat opname {scope}",
                requested_by=f"operator_{scope}",
            )
            out[scope] = {
                "office": code,
                "p": p,
                "station": str(station.id),
                "handover": str(handover.id),
                "handover_number": handover.number,
                "destruction": str(destruction.id),
                "destruction_number": destruction.number,
                "adjustment": str(adjustment.id),
                "adjustment_reason": adjustment.reason,
            }
    return out
