"""One fault → spoil-cause table: the daemon and recovery give the same cause for the same
printer fault (they disagreed on "rejected"), and every cause is one the ledger knows."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from printers.api import Fault
from printsrv.ledger.models import SpoilCause
from printsrv.station import reasons
from printsrv.station.journal import CardOutcome, CardPhase
from printsrv.station.recovery import decide


class _Journal:
    def __init__(self, fault: str) -> None:
        self.fault = fault

    def jobs(self) -> list[dict[str, Any]]:
        return [{"title": "cardjob-1-x", "ok": False, "card_consumed": True,
                 "reason": self.fault, "job": 7}]


@pytest.mark.parametrize("fault", list(Fault))
def test_recovery_and_the_daemon_agree(fault: Fault) -> None:
    station = SimpleNamespace(printer=SimpleNamespace(simulator=_Journal(fault.value)))
    job = SimpleNamespace(id=1, phase=CardPhase.PRINT_SUBMITTED, print_title="cardjob-1-x")
    outcome, cause, _rule = decide(station, job)  # type: ignore[arg-type]
    assert outcome is CardOutcome.SPOILED
    assert cause == reasons.spoil_cause(fault)  # what the daemon writes for the same fault
    assert cause in {c.value for c in SpoilCause}


def test_a_rejected_job_is_lost_to_the_printer() -> None:
    assert reasons.spoil_cause(Fault.REJECTED) == reasons.spoil_cause("rejected") == "printer_gone"
    assert reasons.spoil_cause("no-such-fault") == "unknown_crash"
