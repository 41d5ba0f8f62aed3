"""The CUPS dev stack itself: start, readiness, shared daemons, stop."""

from __future__ import annotations

import json
import subprocess

import pytest

from printsrv.devstack.cups import SHARED_STATE, CupsStack, StackError, pid_alive

pytestmark = pytest.mark.realstack


def test_two_stacks_side_by_side_and_clean_stop() -> None:
    with CupsStack(printers=["A", "B"]) as one, CupsStack(printers=["A"]) as two:
        assert one.server != two.server and one.cups_port != two.cups_port
        assert one.printer("A").port != two.printer("A").port
        assert one.queues == {"A": "A", "B": "B"} and one.queue_name == "A"
        out = one.lp("lpstat", "-v").stdout
        assert one.printer("B").uri in out
        attrs = one.open_printer("B").printer_attributes()
        assert attrs["printer-error-policy"] == "abort-job"
        assert attrs["printer-is-accepting-jobs"] is True
        users = json.loads(SHARED_STATE.read_text())["users"]
        assert {one.token, two.token} <= {u["token"] for u in users}
        pids = [one.cupsd_pid, two.cupsd_pid, one.printer("A").pid, one.printer("B").pid]
        workdir = one.workdir
    assert not any(pid_alive(p) for p in pids if p)
    assert not workdir.exists()
    users = json.loads(SHARED_STATE.read_text())["users"]
    assert one.token not in {u["token"] for u in users}


def test_unknown_printer_name() -> None:
    stack = CupsStack(printers=["X"])
    with pytest.raises(KeyError):
        stack.printer("nope")
    with pytest.raises(ValueError):
        CupsStack(printers=[])


def test_restart_after_kill(cups_stack: CupsStack) -> None:
    queue = "Card2"
    cups_stack.kill_printer(queue)
    assert cups_stack.printer(queue).pid is None
    cups_stack.restart_printer(queue)
    pid = cups_stack.printer(queue).pid
    assert pid is not None and pid_alive(pid)
    subprocess.run(["ipptool", "-q", cups_stack.printer(queue).uri, "get-printer-attributes.test"],
                   check=False)  # fmt: skip


def test_stack_error_type() -> None:
    assert issubclass(StackError, RuntimeError)
