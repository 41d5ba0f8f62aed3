"""The demo console says a station's warning once while it holds, and again after a change."""

from __future__ import annotations

import io
import logging

from printsrv.commands.demo import SayOnce


def test_a_pause_warning_is_said_once_and_again_after_a_change() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setLevel(logging.INFO)
    handler.addFilter(SayOnce())
    log = logging.getLogger("test.demo.console")
    log.propagate, log.level = False, logging.INFO
    log.addHandler(handler)
    try:
        for _ in range(10):  # a paused station polls twice a second
            log.warning("station demo paused: %s", "printer cover open")
        log.info("station demo resumed")  # to the log file only
        log.warning("station demo paused: %s", "printer cover open")
        log.warning("station demo paused: %s", "no KTP-EL blanks in the hopper")
        log.warning("station demo paused: %s", "no KTP-EL blanks in the hopper")
    finally:
        log.removeHandler(handler)
    assert out.getvalue().splitlines() == [
        "station demo paused: printer cover open",
        "station demo paused: printer cover open",
        "station demo paused: no KTP-EL blanks in the hopper",
    ]
