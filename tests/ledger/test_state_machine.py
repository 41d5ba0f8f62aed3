"""A hypothesis state machine over the ledger: random receive / transfer / load / reserve /
issue / release / spoil / destroy / unload / adjust sequences, plus illegal moves that must be
refused without a trace. After every step the ledger must balance, every serial must be in the
state a plain-Python model says, and each office's monthly report must agree with the model.
Blanks come in two stock types (KTP-el chip blanks, KIA blanks): loads and reserves ask for one,
and the balances and the report count each apart.
SQLite only (a fresh schema per run, cleaned between examples) to stay fast.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from printsrv import schema
from printsrv.config import Settings, load_settings
from printsrv.db import session_factory, unit_of_work
from printsrv.ledger import adjustments
from printsrv.ledger import blanks as ops
from printsrv.ledger.check import check_ledger
from printsrv.ledger.errors import LedgerError
from printsrv.ledger.models import (
    AdjustmentKind,
    Blank,
    BlankMovement,
    BlankState,
    SpoilCause,
)
from printsrv.ledger.reports import stock_report
from printsrv.localtime import WIB
from printsrv.models import AuditEvent
from printsrv.products import STOCK_TYPES
from tests.conftest import _clean
from tests.ledger.conftest import make_records

OFFICES = ("35.26.01", "35.26.02")
STATIONS = {"st-a": "35.26.01", "st-b": "35.26.01", "st-c": "35.26.02"}
ON_HAND = {"in_stock", "in_hopper", "reserved"}
PREFIX = {"KTP-EL": "KTP2026-", "KIA": "KIA2026-"}
S = BlankState


def _machine(settings: Settings) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            _clean(settings.sqlalchemy_url)
            with unit_of_work(settings) as s:
                offices = {code: ops.ensure_office(s, code, actor="t").id for code in OFFICES}
                for name, code in STATIONS.items():
                    ops.get_or_create_station(
                        s, name, office_code=code, cups_queue="", reader="", profile=""
                    )
                self.records = iter(make_records(s, offices[OFFICES[0]], 400))
            # serial → [state, office, station, cause, stock type]
            self.model: dict[str, list[str | None]] = {}
            self.next_number = 1
            self.handovers = 0

        # ------------------------------------------------------------------ helpers
        def serials(
            self, state: str, *, office: str | None = None, station: str | None = None,
            stock: str | None = None,
        ):
            return sorted(
                s
                for s, (st_, off, sta, _c, stock_) in self.model.items()
                if st_ == state
                and (office is None or off == office)
                and (station is None or sta == station)
                and (stock is None or stock_ == stock)
            )

        def doc(self) -> str:
            self.handovers += 1
            return f"BA-{self.handovers}"

        # ------------------------------------------------------------------ rules
        @initialize(a=st.integers(0, 8), b=st.integers(0, 4))
        def opening_stock(self, a: int, b: int) -> None:
            """Most runs start with stock at both offices and some blanks in st-a's hopper."""
            for office, n in ((OFFICES[0], a), (OFFICES[1], b)):
                if n:
                    self.receive(office, n, "KTP-EL")
            if a >= 2:
                self.load("st-a", 2, "KTP-EL")

        @rule(office=st.sampled_from(OFFICES), n=st.integers(1, 6),
              stock=st.sampled_from(STOCK_TYPES))
        def receive(self, office: str, n: int, stock: str) -> None:
            first, last = self.next_number, self.next_number + n - 1
            self.next_number += n
            prefix = PREFIX[stock]
            with unit_of_work(settings) as s:
                ops.receive_blanks(
                    s,
                    office_code=office,
                    first=f"{prefix}{first:08d}",
                    last=f"{prefix}{last:08d}",
                    handover_number=self.doc(),
                    actor="recv",
                    stock_type=stock,
                )
            for i in range(first, last + 1):
                self.model[f"{prefix}{i:08d}"] = ["in_stock", office, None, None, stock]

        @precondition(lambda self: bool(self.serials("in_stock")))
        @rule(src=st.sampled_from(OFFICES), n=st.integers(1, 4))
        def transfer(self, src: str, n: int) -> None:
            dst = OFFICES[1 - OFFICES.index(src)]
            chosen = self.serials("in_stock", office=src)[:n]
            if not chosen:
                return
            with unit_of_work(settings) as s:
                ops.transfer_blanks(
                    s,
                    from_office_code=src,
                    to_office_code=dst,
                    serials=chosen,
                    handover_number=self.doc(),
                    actor="t",
                )
            for serial in chosen:
                self.model[serial][1] = dst

        @rule(station=st.sampled_from(sorted(STATIONS)), n=st.integers(1, 5),
              stock=st.sampled_from(STOCK_TYPES))
        def load(self, station: str, n: int, stock: str) -> None:
            office = STATIONS[station]
            available = self.serials("in_stock", office=office, stock=stock)
            if len(available) < n:
                try:
                    with unit_of_work(settings) as s:
                        ops.load_blanks(s, ops.station_by_name(s, station), actor="op", count=n,
                                        stock_type=stock)
                except LedgerError:
                    return
                raise AssertionError("loading more blanks than in stock was accepted")
            with unit_of_work(settings) as s:
                loaded = ops.load_blanks(s, ops.station_by_name(s, station), actor="op", count=n,
                                         stock_type=stock)
                # serial order, and only the stock type asked for
                assert [b.serial for b in loaded] == available[:n]
            for serial in available[:n]:
                self.model[serial][0], self.model[serial][2] = "in_hopper", station

        @precondition(lambda self: bool(self.serials("in_hopper")))
        @rule(station=st.sampled_from(sorted(STATIONS)))
        def unload(self, station: str) -> None:
            with unit_of_work(settings) as s:
                ops.unload_blanks(s, ops.station_by_name(s, station), actor="op")
            for serial in self.serials("in_hopper", station=station):
                self.model[serial][0], self.model[serial][2] = "in_stock", None

        @precondition(lambda self: bool(self.serials("in_hopper")))
        @rule(station=st.sampled_from(sorted(STATIONS)), stock=st.sampled_from(STOCK_TYPES))
        def reserve(self, station: str, stock: str) -> None:
            expected = self.serials("in_hopper", station=station, stock=stock)
            with unit_of_work(settings) as s:
                blank = ops.next_blank_for_station(s, ops.station_by_name(s, station), stock)
                if not expected:
                    assert blank is None
                    return
                assert blank is not None and blank.serial == expected[0]
                ops.reserve_blank(s, blank, record_id=next(self.records), actor="daemon")
            self.model[expected[0]][0] = "reserved"

        @precondition(lambda self: bool(self.serials("reserved")))
        @rule(data=st.data())
        def issue(self, data: st.DataObject) -> None:
            reserved = self.serials("reserved")
            if not reserved:
                return
            serial = data.draw(st.sampled_from(reserved))
            with unit_of_work(settings) as s:
                blank = ops.blank_by_serial(s, serial)
                assert blank.record_id is not None
                ops.issue_blank(
                    s, blank, record_id=blank.record_id, chip_uid="04" + serial[-6:], actor="d"
                )
            self.model[serial][0], self.model[serial][2] = "issued", None

        @precondition(lambda self: bool(self.serials("reserved")))
        @rule(data=st.data())
        def release(self, data: st.DataObject) -> None:
            reserved = self.serials("reserved")
            if not reserved:
                return
            serial = data.draw(st.sampled_from(reserved))
            with unit_of_work(settings) as s:
                ops.release_blank(s, ops.blank_by_serial(s, serial), actor="d", reason="no feed")
            self.model[serial][0] = "in_hopper"

        @precondition(lambda self: any(v[0] in ON_HAND for v in self.model.values()))
        @rule(data=st.data(), cause=st.sampled_from([c for c in SpoilCause if c != "missing"]))
        def spoil(self, data: st.DataObject, cause: SpoilCause) -> None:
            candidates = sorted(s for s, v in self.model.items() if v[0] in ON_HAND)
            if not candidates:
                return
            serial = data.draw(st.sampled_from(candidates))
            with unit_of_work(settings) as s:
                blank = ops.blank_by_serial(s, serial)
                ops.spoil_blank(s, blank, cause=cause, record_id=blank.record_id, actor="d")
            self.model[serial][0], self.model[serial][2] = "spoiled", None
            self.model[serial][3] = cause.value

        @precondition(lambda self: bool(self.serials("spoiled")))
        @rule(office=st.sampled_from(OFFICES))
        def destroy(self, office: str) -> None:
            targets = [
                s for s in self.serials("spoiled", office=office) if self.model[s][3] != "missing"
            ]
            try:
                with unit_of_work(settings) as s:
                    ops.destroy_blanks(
                        s,
                        office_code=office,
                        number=self.doc(),
                        officers=("Budi", "Sari"),
                        witness="Joko",
                        actor="t",
                    )
            except LedgerError:
                assert not targets
                return
            assert targets
            for serial in targets:
                self.model[serial][0] = "destroyed"

        @precondition(lambda self: any(v[0] in ON_HAND for v in self.model.values()))
        @rule(data=st.data(), write_off=st.booleans(), same_person=st.booleans())
        def adjust(self, data: st.DataObject, write_off: bool, same_person: bool) -> None:
            candidates = sorted(s for s, v in self.model.items() if v[0] in ON_HAND)
            if write_off:
                pass
            else:  # correct_state to in_stock: only blanks not already there
                candidates = [s for s in candidates if self.model[s][0] != "in_stock"]
            if not candidates:
                return
            serial = data.draw(st.sampled_from(candidates))
            office = self.model[serial][1]
            with unit_of_work(settings) as s:
                adj = adjustments.request_adjustment(
                    s,
                    office_code=office,  # type: ignore[arg-type]
                    kind=AdjustmentKind.WRITE_OFF if write_off else AdjustmentKind.CORRECT_STATE,
                    serials=[serial],
                    target_state=None if write_off else BlankState.IN_STOCK,
                    reason="stock count",
                    requested_by="alice",
                )
                adj_id = adj.id
            if same_person:
                try:
                    with unit_of_work(settings) as s:
                        adjustments.approve_adjustment(s, adj_id, approved_by="alice")
                except LedgerError:
                    pass
                else:
                    raise AssertionError("self-approval accepted")
            with unit_of_work(settings) as s:
                adjustments.approve_adjustment(s, adj_id, approved_by="bob")
            if write_off:
                self.model[serial][:4] = ["spoiled", office, None, "missing"]
            else:
                self.model[serial][0], self.model[serial][2] = "in_stock", None

        @precondition(lambda self: bool(self.model))
        @rule(data=st.data(), action=st.sampled_from(["reserve", "issue", "release", "destroy"]))
        def illegal(self, data: st.DataObject, action: str) -> None:
            """A move the blank's state forbids is refused, naming it, and leaves no trace."""
            allowed = {
                "reserve": {"in_hopper"},
                "issue": {"reserved"},
                "release": {"reserved"},
                "destroy": {"spoiled"},
            }[action]
            candidates = sorted(s for s, v in self.model.items() if v[0] not in allowed)
            if not candidates:
                return
            serial = data.draw(st.sampled_from(candidates))
            try:
                with unit_of_work(settings) as s:
                    blank = ops.blank_by_serial(s, serial)
                    if action == "reserve":
                        ops.reserve_blank(s, blank, record_id=next(self.records), actor="x")
                    elif action == "issue":
                        ops.issue_blank(s, blank, record_id=1, chip_uid=None, actor="x")
                    elif action == "release":
                        ops.release_blank(s, blank, actor="x", reason="x")
                    else:
                        ops.destroy_blanks(
                            s,
                            office_code=self.model[serial][1],  # type: ignore[arg-type]
                            number=self.doc(),
                            officers=("A", "B"),
                            witness="C",
                            serials=[serial],
                            actor="x",
                        )
            except LedgerError as exc:
                assert exc.serial == serial and serial in str(exc)
            else:
                raise AssertionError(f"{action} of {serial} ({self.model[serial][0]}) accepted")

        # ------------------------------------------------------------------ invariants
        @invariant()
        def balances(self) -> None:
            with session_factory(settings)() as s:
                result = check_ledger(s)
                assert result.ok, [str(p) for p in result.problems]
                rows = s.execute(select(Blank.serial, Blank.state, Blank.station_id)).all()
                assert {r.serial: r.state.value for r in rows} == {
                    k: v[0] for k, v in self.model.items()
                }
                moves = s.scalar(select(func.count()).select_from(BlankMovement))
                events = s.scalar(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.tag.like("ledger:blank:%"))
                )
                assert moves == events
                month = datetime.now(UTC).astimezone(WIB.tz).strftime("%Y-%m")
                for office in OFFICES:
                    if not any(v[1] == office for v in self.model.values()):
                        continue
                    report = stock_report(s, office, month)
                    on_hand = sum(
                        1 for v in self.model.values() if v[1] == office and v[0] in ON_HAND
                    )
                    assert report["balanced"] and report["opening"] == 0
                    assert report["closing"] == on_hand
                    spoiled = sum(
                        1 for v in self.model.values() if v[0] in {"spoiled", "destroyed"}
                    )
                    assert report["spoiled_total"] <= spoiled
                    for stock in STOCK_TYPES:  # each stock type balances on its own
                        part = report["stock_types"][stock]
                        assert part["balanced"] and part["closing"] == sum(
                            1 for v in self.model.values()
                            if v[1] == office and v[0] in ON_HAND and v[4] == stock
                        )
                    assert sum(p["issued"] for p in report["stock_types"].values()) == (
                        report["issued"]
                    )
                for bal in result.offices:
                    assert bal.on_hand == sum(
                        1 for v in self.model.values()
                        if v[1] == bal.office and v[0] in ON_HAND and v[4] == bal.stock_type
                    )
                    assert (
                        report["opening"] + report["received"] + report["transferred_in"]
                        == report["issued"]
                        + sum(report["spoiled"].values())
                        + report["transferred_out"]
                        + report["closing"]
                    )

    return LedgerMachine


def test_ledger_state_machine(instance_dir: Path, tmp_path: Path) -> None:
    settings = load_settings(
        overrides={"instance_dir": instance_dir, "database_url": f"sqlite:///{tmp_path / 'sm.db'}"}
    )
    schema.upgrade(settings)
    run_state_machine_as_test(
        _machine(settings),
        settings=hsettings(
            max_examples=40,
            stateful_step_count=35,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
