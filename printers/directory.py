"""The directory printer: a real in-package stand-in for a card printer.

Each printed card's PDF is written to ``directory`` as ``<job>-<title>.pdf``; ribbon panels,
the hopper and faults are simulated by :class:`printers.virtual.CardSimulator` with its state in
``directory/.printer`` (so faults can be injected from another process, as with the CUPS stack).
"""

from __future__ import annotations

import re
from pathlib import Path

from printers.api import (
    JobState,
    Marker,
    PrinterState,
    PrinterStatus,
    PrintOutcome,
    encoder_command,
)
from printers.documents import check_card_document
from printers.errors import PrinterError, QueueRejectingError
from printers.faults import Verdict, classify, finish_card, rejected
from printers.profiles import PrinterProfile
from printers.virtual.simulator import LOW_PERCENT, MARKER_NAME, MARKER_TYPE, CardSimulator


class DirectoryPrinter:
    """A :class:`printers.api.CardPrinter` that writes cards to a folder.

    ``ribbon_cards`` sizes the simulated ribbon in duplex cards (default: the profile's roll);
    ``cards`` fills the hopper (default: the profile's input capacity).
    """

    def __init__(
        self,
        directory: Path | str,
        profile: PrinterProfile,
        *,
        name: str = "directory",
        ribbon_cards: int | None = None,
        cards: int | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._profile = profile
        self._name = name
        self.simulator = CardSimulator(self.directory / ".printer")
        #: The encoder commands sent, in order (a vendor-command profile).
        self.encoder_commands: list[bytes] = []
        self.accepting = True
        self.enabled = True
        if not self.simulator.state_file.exists():
            ribbon = profile.ribbon
            per_card = ribbon.panels_per_card(True)
            rolls = ribbon_cards if ribbon_cards is not None else ribbon.cards_per_roll(True)
            self.simulator.initialise(
                ribbon_panels=rolls * per_card,
                panels_simplex=ribbon.panels_per_card(False),
                panels_duplex=per_card,
                cards=cards if cards is not None else profile.input_capacity,
            )

    @property
    def name(self) -> str:
        """The printer name given at construction."""
        return self._name

    @property
    def profile(self) -> PrinterProfile:
        """The printer profile."""
        return self._profile

    # -- simulation controls -------------------------------------------------------------------

    def inject_fault(self, reason: str, *, after_cards: int = 0) -> str:
        """Fail with ``reason`` (``media-jam``/``jam``, ``ribbon-out``, ``cover-open``,
        ``media-empty``) once ``after_cards`` more cards have printed."""
        return self.simulator.inject_fault(reason, after_cards=after_cards)

    def clear_faults(self) -> None:
        """Clear pending and current faults (the operator fixed the printer)."""
        self.simulator.clear_faults()

    # -- port ----------------------------------------------------------------------------------

    def status(self) -> PrinterStatus:
        """Simulated state, reasons and the ribbon marker."""
        reasons = self.simulator.reasons() + (() if self.enabled else ("paused",))
        return PrinterStatus(
            name=self._name,
            state=PrinterState.IDLE if self.enabled else PrinterState.STOPPED,
            reasons=reasons,
            accepting_jobs=self.accepting,
            markers=(Marker(MARKER_NAME, self.simulator.level(), MARKER_TYPE, LOW_PERCENT),),
        )

    def find_job(self, title: str) -> PrintOutcome | None:
        """The outcome of the newest job named ``title``, from the simulator's journal."""
        entries = [j for j in self.simulator.jobs() if j.get("title") == title]
        if not entries:
            return None
        last = entries[-1]
        ok = bool(last.get("ok"))
        reason = last.get("reason")
        verdict = classify(
            JobState.COMPLETED if ok else JobState.ABORTED,
            (),
            (),
            () if ok else (str(reason),),
        )
        if not ok and verdict.card_consumed is None:
            consumed = bool(last.get("card_consumed"))
            verdict = Verdict(verdict.fault, consumed, False, True, verdict.message)
        written = sorted(self.directory.glob(f"{int(last['job']):06d}-*.pdf"))
        return PrintOutcome(
            printer=self._name,
            job_id=int(last["job"]),
            job_state=JobState.COMPLETED if ok else JobState.ABORTED,
            card_consumed=verdict.card_consumed,
            card_printed=verdict.card_printed,
            fault=verdict.fault,
            operator_action=verdict.operator_action,
            printer_state_reasons=tuple(last.get("reasons", ())),
            message=verdict.message,
            document=written[-1] if written else None,
        )

    def feed_to_encoder(self) -> None:
        """Note the profile's encoder command in :attr:`encoder_commands` (nothing to move)."""
        command = encoder_command(self._profile, self._name)
        if command is not None:
            self.encoder_commands.append(command)

    def reject_from_encoder(self) -> None:
        """Note the profile's reject command in :attr:`encoder_commands`."""
        command = encoder_command(self._profile, self._name, "reject")
        if command is not None:
            self.encoder_commands.append(command)

    def eject_from_encoder(self) -> None:
        """Note the profile's eject command in :attr:`encoder_commands`."""
        command = encoder_command(self._profile, self._name, "eject")
        if command is not None:
            self.encoder_commands.append(command)

    def print_card(
        self,
        document: Path | bytes,
        *,
        title: str = "card",
        duplex: bool | None = None,
        timeout: float | None = None,
    ) -> PrintOutcome:
        """Write the card's PDF to the directory, spending simulated ribbon; raise on a fault."""
        del timeout  # nothing to wait for
        data = document if isinstance(document, bytes) else Path(document).read_bytes()
        before = self.status()
        two_sided = self._profile.duplex if duplex is None else duplex
        check_card_document(data, duplex=two_sided, printer=self._name)
        if not before.accepting_jobs or before.state == PrinterState.STOPPED:
            verdict = rejected("printer paused")
            return self._finish(None, None, before, before, verdict, None, QueueRejectingError)
        result = self.simulator.run_card(duplex=two_sided, record={"title": title})
        job_id = int(self.simulator.state()["jobs"])
        after = self.status()
        state = JobState.COMPLETED if result.ok else JobState.ABORTED
        out: Path | None = None
        if result.ok:
            safe = re.sub(r"[^A-Za-z0-9._-]+", "_", title)[:60] or "card"
            out = self.directory / f"{job_id:06d}-{safe}.pdf"
            out.write_bytes(data)
        verdict = classify(
            state,
            (),
            before.reasons,
            after.reasons,
            markers_before=before.markers,
            markers_after=after.markers,
        )
        if not result.ok and not result.card_consumed and verdict.card_consumed is None:
            verdict = Verdict(verdict.fault, False, False, True, verdict.message)
        return self._finish(job_id, state, before, after, verdict, out)

    def _finish(
        self,
        job_id: int | None,
        state: JobState | None,
        before: PrinterStatus,
        after: PrinterStatus,
        verdict: Verdict,
        out: Path | None,
        error: type[PrinterError] | None = None,
    ) -> PrintOutcome:
        return finish_card(
            self._name, job_id, state, before, after, verdict, document=out, error=error
        )
