"""One fault → spoil-cause table: the daemon and recovery give the same cause for the same
printer fault (they disagreed on "rejected"), and every cause is one the ledger knows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from printers.api import Fault, JobState, PrintOutcome
from printsrv.ledger.models import SpoilCause
from printsrv.station import reasons
from printsrv.station.journal import CardOutcome, CardPhase
from printsrv.station.recovery import decide


class _Port:
    """A printer port that remembers one failed job (recovery asks it through find_job)."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault

    def find_job(self, title: str) -> PrintOutcome | None:
        if title != "cardjob-1-x":
            return None
        return PrintOutcome(printer="p", job_id=7, job_state=JobState.ABORTED,
                            card_consumed=True, card_printed=False, fault=self.fault,
                            operator_action=False)


@pytest.mark.parametrize("fault", list(Fault))
def test_recovery_and_the_daemon_agree(fault: Fault) -> None:
    station = SimpleNamespace(printer=_Port(fault))
    job = SimpleNamespace(id=1, phase=CardPhase.PRINT_SUBMITTED, print_title="cardjob-1-x")
    outcome, cause, _rule = decide(station, job)  # type: ignore[arg-type]
    assert outcome is CardOutcome.SPOILED
    assert cause == reasons.spoil_cause(fault)  # what the daemon writes for the same fault
    assert cause in {c.value for c in SpoilCause}


def test_a_rejected_job_is_lost_to_the_printer() -> None:
    assert reasons.spoil_cause(Fault.REJECTED) == reasons.spoil_cause("rejected") == "printer_gone"
    assert reasons.spoil_cause("no-such-fault") == "unknown_crash"
