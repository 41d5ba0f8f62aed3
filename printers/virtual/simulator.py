"""A card printer's consumables and faults, persisted in a state directory.

Files in the state directory:

``state.json``
    ribbon panels (capacity, remaining), cards in the hopper, counters, current reasons.
``faults.json``
    the control file: a list of ``{"reason": "media-jam", "after_cards": 0}``. A fault fires
    once ``after_cards`` more cards have printed and stays until cleared, like a real printer
    that waits for an operator. An injected jam or ribbon-out spoils the card being printed
    (consumed); a cover open or empty hopper feeds none; a ribbon that is simply too short for
    the next card is found before feeding (not consumed).
``jobs/<n>.json``
    one record per job handled (inputs and result), for tests to inspect.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from printers.errors import ControlError

#: Fault reasons the simulator can raise; all are among ippeveprinter's 16 known reasons.
SIM_REASONS: Final = ("media-jam", "cover-open", "marker-supply-empty", "media-empty")
#: Friendly names accepted by :meth:`CardSimulator.inject_fault`.
FAULT_ALIASES: Final = {
    "jam": "media-jam",
    "ribbon-out": "marker-supply-empty",
    "cover-open": "cover-open",
    "media-empty": "media-empty",
    **{r: r for r in SIM_REASONS},
}
LOW_REASON: Final = "marker-supply-low"
MARKER_NAME: Final = "Ribbon YMCKOK"
MARKER_TYPE: Final = "ribbon-wax"
LOW_PERCENT: Final = 10
#: ippeveprinter attribute file (``-a``) of the virtual CR80 card printer.
ATTRIBUTE_FILE: Final = Path(__file__).resolve().parent / "card-printer.attr"


@dataclass(frozen=True, slots=True)
class SimResult:
    """What the simulated printer did with one card."""

    ok: bool
    reason: str | None
    card_consumed: bool
    level_before: int
    level_after: int
    reasons: tuple[str, ...]


class CardSimulator:
    """File-backed supplies and faults of one virtual card printer."""

    def __init__(self, state_dir: Path | str) -> None:
        self.dir = Path(state_dir)
        self.state_file = self.dir / "state.json"
        self.fault_file = self.dir / "faults.json"
        self.jobs_dir = self.dir / "jobs"

    # -- setup ---------------------------------------------------------------------------------

    def initialise(
        self,
        *,
        ribbon_panels: int,
        panels_simplex: int,
        panels_duplex: int,
        cards: int,
    ) -> None:
        """Create a fresh state: full ribbon, full hopper, no faults."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.jobs_dir.mkdir(exist_ok=True)
        with self._locked():
            self._write(
                self.state_file,
                {
                    "capacity_panels": ribbon_panels,
                    "remaining_panels": ribbon_panels,
                    "panels_simplex": panels_simplex,
                    "panels_duplex": panels_duplex,
                    "cards_in_hopper": cards,
                    "cards_printed": 0,
                    "cards_spoiled": 0,
                    "jobs": 0,
                    "reasons": [],
                },
            )
            self._write(self.fault_file, [])

    # -- control (tests, demo) -----------------------------------------------------------------

    def inject_fault(self, reason: str, *, after_cards: int = 0) -> str:
        """Make the printer fail with ``reason`` once ``after_cards`` more cards printed."""
        try:
            canonical = FAULT_ALIASES[reason]
        except KeyError:
            known = sorted(FAULT_ALIASES)
            raise ControlError(f"unknown fault {reason!r}; known: {known}") from None
        with self._locked():
            faults = self._read(self.fault_file, [])
            faults.append({"reason": canonical, "after_cards": after_cards})
            self._write(self.fault_file, faults)
        return canonical

    def clear_faults(self) -> None:
        """Operator clears the printer: pending faults go; an empty ribbon stays empty."""
        with self._locked():
            self._write(self.fault_file, [])
            state = self._read(self.state_file, {})
            state["reasons"] = [r for r in state.get("reasons", []) if r == LOW_REASON]
            self._write(self.state_file, state)

    def refill(self, *, ribbon: bool = True, cards: int | None = None) -> None:
        """Load a new ribbon and/or set the hopper's card count."""
        with self._locked():
            state = self._read(self.state_file, {})
            if ribbon:
                state["remaining_panels"] = state["capacity_panels"]
            if cards is not None:
                state["cards_in_hopper"] = cards
            state["reasons"] = []
            self._write(self.state_file, state)

    # -- reading -------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The current state as stored."""
        data: dict[str, Any] = self._read(self.state_file, {})
        return data

    def level(self) -> int:
        """Ribbon level in percent (rounded up: 0 only when empty)."""
        return self._level(self.state())

    def reasons(self) -> tuple[str, ...]:
        """Current printer-state-reasons."""
        return tuple(self.state().get("reasons", []))

    def jobs(self) -> list[dict[str, Any]]:
        """Records of the jobs handled, oldest first."""
        files = sorted(self.jobs_dir.glob("*.json"), key=lambda p: int(p.stem))
        return [json.loads(p.read_text()) for p in files]

    # -- one card ------------------------------------------------------------------------------

    def run_card(self, *, duplex: bool, record: dict[str, Any] | None = None) -> SimResult:
        """Feed and print one card, or fail with the pending/implied fault."""
        with self._locked():
            state = self._read(self.state_file, {})
            faults = self._read(self.fault_file, [])
            before = self._level(state)
            need = state["panels_duplex" if duplex else "panels_simplex"]
            active = next((f["reason"] for f in faults if f["after_cards"] <= 0), None)
            consumed = False
            if active == "media-jam":
                state["cards_in_hopper"] = max(0, state["cards_in_hopper"] - 1)
                state["cards_spoiled"] += 1
                consumed = True
            elif active == "marker-supply-empty":
                # The ribbon ends during this card: the card is fed, half printed, spoiled.
                state["remaining_panels"] = 0
                state["cards_in_hopper"] = max(0, state["cards_in_hopper"] - 1)
                state["cards_spoiled"] += 1
                consumed = True
            elif active is None and state["remaining_panels"] < need:
                active = "marker-supply-empty"
            elif active is None and state["cards_in_hopper"] <= 0:
                active = "media-empty"
            if active is None:
                state["remaining_panels"] -= need
                state["cards_in_hopper"] -= 1
                state["cards_printed"] += 1
                consumed = True
                for fault in faults:
                    fault["after_cards"] -= 1
                after = self._level(state)
                state["reasons"] = [LOW_REASON] if after <= LOW_PERCENT else []
            else:
                after = self._level(state)
                state["reasons"] = [active]
            state["jobs"] += 1
            result = SimResult(
                ok=active is None,
                reason=active,
                card_consumed=consumed,
                level_before=before,
                level_after=after,
                reasons=tuple(state["reasons"]),
            )
            self._write(self.state_file, state)
            self._write(self.fault_file, faults)
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
            entry = {"job": state["jobs"], "duplex": duplex, **asdict(result), **(record or {})}
            self._write(self.jobs_dir / f"{state['jobs']}.json", entry)
        return result

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _level(state: dict[str, Any]) -> int:
        capacity = int(state.get("capacity_panels", 0))
        if capacity <= 0:
            return -2
        return math.ceil(100 * max(0, int(state["remaining_panels"])) / capacity)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _read(path: Path, default: Any) -> Any:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return default

    @staticmethod
    def _write(path: Path, data: Any) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)
