"""The printer port: what the station needs from any card printer backend.

Backends: :class:`printers.cups.CupsPrinter` (CUPS via pycups) and
:class:`printers.directory.DirectoryPrinter` (writes PDFs to a folder; the in-package stand-in).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from printers.errors import PrinterError
    from printers.profiles import PrinterProfile


class JobState(enum.IntEnum):
    """IPP ``job-state`` values."""

    PENDING = 3
    HELD = 4
    PROCESSING = 5
    STOPPED = 6
    CANCELED = 7
    ABORTED = 8
    COMPLETED = 9

    @property
    def is_final(self) -> bool:
        """Whether the job has ended (canceled, aborted or completed)."""
        return self >= JobState.CANCELED


class PrinterState(enum.IntEnum):
    """IPP ``printer-state`` values."""

    IDLE = 3
    PROCESSING = 4
    STOPPED = 5


class Fault(enum.StrEnum):
    """Why a card did not come out printed."""

    JAM = "jam"
    RIBBON_OUT = "ribbon-out"
    COVER_OPEN = "cover-open"
    MEDIA_EMPTY = "media-empty"
    PRINTER_GONE = "printer-gone"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Marker:
    """One supply (ribbon, film) as the printer reports it through ``marker-*``.

    ``level`` is a percentage, or -1 (unavailable), -2 (unknown), -3 (some remaining).
    """

    name: str
    level: int
    type: str = ""
    low_level: int | None = None

    @property
    def known(self) -> bool:
        """Whether ``level`` is a real percentage."""
        return self.level >= 0

    @property
    def low(self) -> bool:
        """Whether the level is at or below the printer's low mark."""
        return self.known and self.low_level is not None and self.level <= self.low_level


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """A snapshot of a printer queue."""

    name: str
    state: PrinterState
    reasons: tuple[str, ...]
    accepting_jobs: bool
    markers: tuple[Marker, ...] = ()
    message: str = ""

    @property
    def ready(self) -> bool:
        """Whether a card may be sent now: accepting, not stopped, no fault reason."""
        from printers.faults import fault_from_reasons

        return (
            self.accepting_jobs
            and self.state != PrinterState.STOPPED
            and fault_from_reasons(self.reasons) is None
        )


@dataclass(frozen=True, slots=True)
class PrintOutcome:
    """What happened to one card.

    ``card_consumed``: ``True`` when a blank left the hopper (printed or spoiled), ``False`` when
    none was fed, ``None`` when unknown (an operator must check the printer). ``card_printed``
    is ``True`` only for a good card. ``fault`` is ``None`` for a good card. ``operator_action``
    says the station must pause until a person clears the printer or queue.
    ``printer_state_reasons`` are normalised (no ``-report``/``-warning``/``-error`` suffix, no
    ``none``) as read after the job ended.
    """

    printer: str
    job_id: int | None
    job_state: JobState | None
    card_consumed: bool | None
    card_printed: bool | None
    fault: Fault | None
    operator_action: bool
    printer_state_reasons: tuple[str, ...] = ()
    job_state_reasons: tuple[str, ...] = ()
    markers_before: tuple[Marker, ...] = ()
    markers_after: tuple[Marker, ...] = ()
    message: str = ""
    document: Path | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        """Whether the card came out printed."""
        return self.fault is None and self.card_printed is True

    @property
    def ribbon_spent(self) -> bool | None:
        """Whether any known marker level fell during the job (``None``: not measurable).

        Integer percentages of a long roll need not fall for every card: this is evidence,
        not a verdict.
        """
        before = {m.name: m.level for m in self.markers_before if m.known}
        after = {m.name: m.level for m in self.markers_after if m.known}
        common = before.keys() & after.keys()
        if not common:
            return None
        return any(after[n] < before[n] for n in common)

    def error(self) -> PrinterError | None:
        """The :class:`~printers.errors.PrinterError` for this outcome, ``None`` for a good card."""
        from printers.faults import error_for

        return error_for(self)

    def raise_for_fault(self) -> PrintOutcome:
        """Return ``self`` for a good card; raise its :class:`PrinterError` otherwise."""
        exc = self.error()
        if exc is not None:
            raise exc
        return self


@runtime_checkable
class CardPrinter(Protocol):
    """A card printer queue driven with one profile."""

    @property
    def name(self) -> str:
        """The queue (or printer) name."""
        ...

    @property
    def profile(self) -> PrinterProfile:
        """The profile whose media, options and ribbon this printer uses."""
        ...

    def status(self) -> PrinterStatus:
        """Read state, reasons and supplies.

        Raises :class:`~printers.errors.PrinterUnavailableError` when the printer or print
        system cannot be reached.
        """
        ...

    def print_card(
        self,
        document: Path | bytes,
        *,
        title: str = "card",
        duplex: bool | None = None,
        timeout: float | None = None,
    ) -> PrintOutcome:
        """Print one card from a PDF (one page per side) and follow it to its end.

        Returns the outcome of a good card; raises a :class:`~printers.errors.PrinterError`
        carrying the outcome otherwise. ``duplex`` defaults to the profile's setting.
        """
        ...

    def feed_to_encoder(self) -> None:
        """Move the next blank from the hopper into the contactless encoder, as the profile's
        ``[encoder]`` section says: ``vendor-command`` sends its ``to_encoder`` command through
        the print system; ``cardsim`` (the virtual printer: its card appears in the reader)
        and ``none`` (an encoder outside the printer) move nothing here. ``vendor-sdk`` raises
        :class:`~printers.errors.PrinterUnavailableError`: no SDK adapter is installed."""
        ...

    def reject_from_encoder(self) -> None:
        """Move the card in the encoder to the reject box (the profile's ``reject`` command; a
        printer without one moves nothing). A chip that failed is spoiled; its card leaves."""
        ...

    def eject_from_encoder(self) -> None:
        """Move an untouched card out of the encoder to the output tray (the profile's
        ``eject`` command; a printer without one moves nothing): the chip could not be reached,
        the blank is released and the operator puts it back in the hopper."""
        ...

    def find_job(self, title: str) -> PrintOutcome | None:
        """Recovery after a crash: the outcome of the newest job named ``title``.

        ``None`` when there is no such job. A job that has not ended is cancelled and reported
        with its card's fate unknown. Never raises for card faults (the outcome says them);
        raises :class:`~printers.errors.PrinterUnavailableError` when the printer or print
        system cannot be asked.
        """
        ...


def encoder_command(
    profile: PrinterProfile, printer: str, which: str = "to_encoder"
) -> bytes | None:
    """The raw bytes of the profile's encoder command ``which`` (``to_encoder``: move a blank
    into the encoder; ``reject``: move the card in it to the reject box; ``eject``: move it
    out to the output tray), framed as the
    vendors' raw command protocols take them (ESC, the command, CR); ``None``: nothing to send.
    Raises for a method this library cannot drive or a ``to_encoder`` the profile lacks."""
    from printers.errors import PrinterUnavailableError, ProfileError

    spec = profile.encoder
    if spec.method in ("cardsim", "none"):
        return None
    if spec.method == "vendor-sdk":
        raise PrinterUnavailableError(
            f"{printer}: profile {profile.id} moves cards to the encoder with the vendor's SDK, "
            "and no SDK adapter is installed; use a vendor-command profile"
        )
    command = {"reject": spec.reject, "eject": spec.eject}.get(which, spec.to_encoder)
    if not command:
        if which in ("reject", "eject"):
            return None  # the printer has no such command: the card leaves with the next one
        raise ProfileError(f"profile {profile.id}: encoder.method vendor-command needs "
                           "encoder.to_encoder")  # fmt: skip
    return b"\x1b" + command.encode("ascii") + b"\r"


def normalise_reasons(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Normalise ``printer-state-reasons``/``job-state-reasons`` as pycups returns them.

    pycups gives a string for one value and a list for several. Suffixes ``-report``,
    ``-warning`` and ``-error`` are removed, ``none`` and blanks are dropped, order is kept and
    duplicates are removed.
    """
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for raw in items:
        for part in str(raw).split(","):
            reason = part.strip().lower()
            for suffix in ("-report", "-warning", "-error"):
                if reason.endswith(suffix) and len(reason) > len(suffix):
                    reason = reason[: -len(suffix)]
                    break
            if reason and reason != "none" and reason not in out:
                out.append(reason)
    return tuple(out)
