"""The CUPS backend (pycups); the only module of :mod:`printers` that imports ``cups``.

One card is one job: submit with the profile's page and ``print-scaling=none``, poll the job to
its end, read printer state reasons and ``marker-*`` levels before and after, and decide the
card's fate with :func:`printers.faults.classify`.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import cups

from printers.api import (
    Fault,
    JobState,
    Marker,
    PrinterState,
    PrinterStatus,
    PrintOutcome,
    encoder_command,
    normalise_reasons,
)
from printers.documents import check_card_document
from printers.errors import (
    JobRejectedError,
    PrinterError,
    PrintServerUnavailableError,
    QueueRejectingError,
)
from printers.faults import (
    Verdict,
    classify,
    fault_from_reasons,
    finish_card,
    outcome_of,
    rejected,
)
from printers.profiles import PrinterProfile

#: Reasons that mean the CUPS backend cannot reach the printer (no card can have been fed).
UNREACHABLE_REASONS: Final = frozenset({"connecting-to-device", "offline"})
#: The ipp backend's printer-state-message while it cannot connect (C locale).
UNREACHABLE_MESSAGES: Final = ("may not exist or is unavailable", "unable to locate printer")
#: Job reasons of a job that failed and went back to pending/stopped instead of ending.
REQUEUED_REASONS: Final = frozenset({"job-completed-with-errors", "job-stopped"})
_JOB_ATTRS: Final = ["job-state", "job-state-reasons", "job-printer-state-message"]


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def markers_from(attrs: Mapping[str, Any]) -> tuple[Marker, ...]:
    """Decode ``marker-names``/``-levels``/``-types``/``-low-levels`` into :class:`Marker`\\ s."""
    names = _as_list(attrs.get("marker-names"))
    levels = _as_list(attrs.get("marker-levels"))
    types = _as_list(attrs.get("marker-types"))
    lows = _as_list(attrs.get("marker-low-levels"))
    out = []
    for i, name in enumerate(names):
        level = int(levels[i]) if i < len(levels) else -2
        out.append(
            Marker(
                name=str(name),
                level=level,
                type=str(types[i]) if i < len(types) else "",
                low_level=int(lows[i]) if i < len(lows) else None,
            )
        )
    return tuple(out)


class CupsPrinter:
    """A card printer behind a CUPS queue.

    ``server`` is a host name or a domain socket path (``None``: the default, usually
    ``/run/cups/cups.sock``); ``timeout`` bounds one card's job in seconds.
    """

    def __init__(
        self,
        queue: str,
        profile: PrinterProfile,
        *,
        server: str | None = None,
        port: int | None = None,
        timeout: float = 120.0,
        poll_interval: float = 0.1,
        stopped_grace: float = 1.0,
        gone_after: float = 3.0,
    ) -> None:
        self._queue = queue
        self._profile = profile
        self.server = server
        self.port = port
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.stopped_grace = stopped_grace
        self.gone_after = gone_after

    @property
    def name(self) -> str:
        """The CUPS queue name."""
        return self._queue

    @property
    def profile(self) -> PrinterProfile:
        """The printer profile."""
        return self._profile

    # -- connection ----------------------------------------------------------------------------

    def _connect(self) -> cups.Connection:
        kwargs: dict[str, Any] = {}
        if self.server is not None:
            kwargs["host"] = self.server
        if self.port is not None:
            kwargs["port"] = self.port
        try:
            return cups.Connection(**kwargs)
        except RuntimeError as exc:
            where = self.server or "the default CUPS server"
            raise PrintServerUnavailableError(f"cannot reach {where}: {exc}") from exc

    def _printer_attrs(self, conn: cups.Connection) -> dict[str, Any]:
        try:
            attrs: dict[str, Any] = conn.getPrinterAttributes(self._queue)
        except cups.IPPError as exc:
            status, text = exc.args
            if status == cups.IPP_NOT_FOUND:
                raise PrintServerUnavailableError(f"no CUPS queue {self._queue!r}") from exc
            raise PrintServerUnavailableError(f"{self._queue}: {text}") from exc
        except RuntimeError as exc:
            raise PrintServerUnavailableError(f"{self._queue}: {exc}") from exc
        return attrs

    def _status_from(self, attrs: Mapping[str, Any]) -> PrinterStatus:
        return PrinterStatus(
            name=self._queue,
            state=PrinterState(int(attrs.get("printer-state", PrinterState.IDLE))),
            reasons=normalise_reasons(attrs.get("printer-state-reasons")),
            accepting_jobs=bool(attrs.get("printer-is-accepting-jobs", True)),
            markers=markers_from(attrs),
            message=str(attrs.get("printer-state-message", "")),
        )

    # -- port ----------------------------------------------------------------------------------

    def status(self) -> PrinterStatus:
        """Read queue state, normalised reasons and supplies (``PrinterUnavailableError``)."""
        return self._status_from(self._printer_attrs(self._connect()))

    def printer_attributes(self) -> dict[str, Any]:
        """All attributes CUPS holds for the queue (diagnostics, e.g. the error policy)."""
        return self._printer_attrs(self._connect())

    def job_attributes(self, job_id: int) -> dict[str, Any]:
        """All attributes CUPS holds for a job (e.g. ``media``, ``print-scaling`` as sent)."""
        conn = self._connect()
        try:
            attrs: dict[str, Any] = conn.getJobAttributes(job_id)
        except cups.IPPError as exc:
            raise PrintServerUnavailableError(f"job {job_id}: {exc.args[1]}") from exc
        return attrs

    def feed_to_encoder(self) -> None:
        """Send the profile's ``to_encoder`` command to the queue as a raw job (see the port)."""
        self._encoder_job("to_encoder")

    def reject_from_encoder(self) -> None:
        """Send the profile's ``reject`` command (a failed chip goes to the reject box)."""
        self._encoder_job("reject")

    def eject_from_encoder(self) -> None:
        """Send the profile's ``eject`` command (an untouched card leaves for the output tray)."""
        self._encoder_job("eject")

    def _encoder_job(self, which: str) -> None:
        command = encoder_command(self._profile, self._queue, which)
        if command is None:
            return
        conn = self._connect()
        with tempfile.NamedTemporaryFile(prefix="encoder-") as tmp:
            tmp.write(command)
            tmp.flush()
            try:
                conn.printFile(self._queue, tmp.name, f"encoder-{which}", {"raw": "true"})
            except cups.IPPError as exc:
                raise JobRejectedError(
                    f"{self._queue}: CUPS refused the encoder command: {exc.args[1]}"
                ) from exc

    def find_job(self, title: str) -> PrintOutcome | None:
        """The outcome of this queue's newest job named ``title`` (see the port)."""
        conn = self._connect()
        try:
            jobs = conn.getJobs(
                which_jobs="all",
                requested_attributes=["job-id", "job-name", "job-printer-uri"],
            )
        except (cups.IPPError, RuntimeError) as exc:
            raise PrintServerUnavailableError(f"{self._queue}: cannot list jobs: {exc}") from exc
        suffix = f"/printers/{self._queue}"
        ids = sorted(
            job_id
            for job_id, attrs in jobs.items()
            if attrs.get("job-name") == title
            and str(attrs.get("job-printer-uri", "")).endswith(suffix)
        )
        if not ids:
            return None
        job_id = ids[-1]
        try:
            attrs = conn.getJobAttributes(job_id, requested_attributes=_JOB_ATTRS)
        except (cups.IPPError, RuntimeError) as exc:
            raise PrintServerUnavailableError(f"{self._queue}: job {job_id}: {exc}") from exc
        state = JobState(int(attrs["job-state"]))
        job_reasons = normalise_reasons(attrs.get("job-state-reasons"))
        now = self._status_from(self._printer_attrs(conn))
        if state.is_final:
            verdict = classify(state, job_reasons, (), now.reasons)
        else:
            self._cancel(conn, job_id)
            state = JobState.CANCELED
            verdict = Verdict(
                Fault.UNKNOWN, None, None, True, "job found unfinished after a restart; cancelled"
            )
        return outcome_of(self._queue, job_id, state, None, now, verdict, job_reasons=job_reasons)

    def print_card(
        self,
        document: Path | bytes,
        *,
        title: str = "card",
        duplex: bool | None = None,
        timeout: float | None = None,
    ) -> PrintOutcome:
        """Print one card and follow its job to the end (see :class:`printers.api.CardPrinter`)."""
        data = document if isinstance(document, bytes) else Path(document).read_bytes()
        two_sided = self._profile.duplex if duplex is None else duplex
        check_card_document(data, duplex=two_sided, printer=self._queue)
        if isinstance(document, bytes):
            with tempfile.NamedTemporaryFile(suffix=".pdf", prefix="card-") as tmp:
                tmp.write(document)
                tmp.flush()
                return self._print(Path(tmp.name), title, duplex, timeout, None)
        return self._print(Path(document), title, duplex, timeout, document)

    # -- one job -------------------------------------------------------------------------------

    def _print(
        self,
        path: Path,
        title: str,
        duplex: bool | None,
        timeout: float | None,
        document: Path | None,
    ) -> PrintOutcome:
        conn = self._connect()
        before = self._status_from(self._printer_attrs(conn))
        if not before.accepting_jobs or before.state == PrinterState.STOPPED:
            why = "not accepting jobs" if not before.accepting_jobs else "stopped (disabled)"
            verdict = rejected(f"queue {why}")
            return self._finish(
                None, None, (), before, before, verdict, document, QueueRejectingError
            )
        options = self._profile.job_options(duplex)
        try:
            job_id = int(conn.printFile(self._queue, str(path), title, options))
        except cups.IPPError as exc:
            status, text = exc.args
            after = self._status_from(self._printer_attrs(conn))
            verdict = rejected(f"CUPS refused the job: {text} ({status:#06x})")
            error = QueueRejectingError if status == cups.IPP_NOT_ACCEPTING else JobRejectedError
            return self._finish(None, None, (), before, after, verdict, document, error)
        return self._follow(conn, job_id, before, timeout or self.timeout, document)

    def _follow(
        self,
        conn: cups.Connection,
        job_id: int,
        before: PrinterStatus,
        timeout: float,
        document: Path | None,
    ) -> PrintOutcome:
        deadline = time.monotonic() + timeout
        stopped_since: float | None = None
        unreachable_since: float | None = None
        started = time.monotonic()
        seen_processing = False
        while True:
            try:
                attrs = conn.getJobAttributes(job_id, requested_attributes=_JOB_ATTRS)
            except (cups.IPPError, RuntimeError) as exc:
                raise PrintServerUnavailableError(
                    f"{self._queue}: lost job {job_id} ({exc}); the card's fate is unknown",
                    card_consumed=None,
                ) from exc
            state = JobState(int(attrs["job-state"]))
            job_reasons = normalise_reasons(attrs.get("job-state-reasons"))
            if state.is_final:
                after = self._status_from(self._printer_attrs(conn))
                verdict = classify(
                    state,
                    job_reasons,
                    before.reasons,
                    after.reasons,
                    markers_before=before.markers,
                    markers_after=after.markers,
                )
                return self._finish(job_id, state, job_reasons, before, after, verdict, document)
            now = time.monotonic()
            if state == JobState.PROCESSING:
                seen_processing = True
            elif seen_processing or REQUEUED_REASONS & set(job_reasons):
                # A filter or backend failure put the job back in the queue (or stopped it).
                printer = self._status_from(self._printer_attrs(conn))
                self._cancel(conn, job_id)
                message = str(attrs.get("job-printer-state-message") or printer.message)
                verdict = Verdict(
                    fault_from_reasons(printer.reasons) or Fault.UNKNOWN,
                    None,
                    None,
                    True,
                    f"job failed and was requeued ({message or 'no message'}); cancelled",
                )
                return self._finish(
                    job_id, JobState.CANCELED, job_reasons, before, printer, verdict, document
                )
            if state == JobState.PROCESSING and now - started >= self.gone_after:
                if self._device_answers(conn):
                    unreachable_since = None
                else:
                    unreachable_since = unreachable_since or now
                    if now - unreachable_since >= self.gone_after:
                        return self._printer_gone(conn, job_id, job_reasons, before, document)
            if state in (JobState.PENDING, JobState.HELD, JobState.STOPPED):
                printer = self._status_from(self._printer_attrs(conn))
                if printer.state == PrinterState.STOPPED or not printer.accepting_jobs:
                    stopped_since = stopped_since or now
                    if now - stopped_since >= self.stopped_grace:
                        # A disabled queue would print this card whenever it is re-enabled.
                        self._cancel(conn, job_id)
                        verdict = rejected("queue stopped (disabled) before the job started")
                        return self._finish(
                            job_id,
                            JobState.CANCELED,
                            job_reasons,
                            before,
                            printer,
                            verdict,
                            document,
                            QueueRejectingError,
                        )
                else:
                    stopped_since = None
            if now >= deadline:
                return self._timed_out(conn, job_id, state, job_reasons, before, document)
            time.sleep(self.poll_interval)

    def _timed_out(
        self,
        conn: cups.Connection,
        job_id: int,
        state: JobState,
        job_reasons: tuple[str, ...],
        before: PrinterStatus,
        document: Path | None,
    ) -> PrintOutcome:
        printer = self._status_from(self._printer_attrs(conn))
        self._cancel(conn, job_id)
        if self._unreachable(printer):
            verdict = Verdict(
                Fault.PRINTER_GONE,
                False,
                False,
                True,
                "printer unreachable; job cancelled before it reached the printer",
            )
        elif state in (JobState.PENDING, JobState.HELD):
            verdict = Verdict(
                Fault.UNKNOWN, False, False, True, "job still queued at the timeout; cancelled"
            )
        else:
            verdict = Verdict(
                fault_from_reasons(printer.reasons) or Fault.UNKNOWN,
                None,
                None,
                True,
                "job did not end within the timeout; cancelled mid-print",
            )
        return self._finish(
            job_id, JobState.CANCELED, job_reasons, before, printer, verdict, document
        )

    @staticmethod
    def _unreachable(printer: PrinterStatus) -> bool:
        """Whether the CUPS backend says it cannot reach the printer."""
        text = printer.message.lower()
        return bool(UNREACHABLE_REASONS & set(printer.reasons)) or any(
            hint in text for hint in UNREACHABLE_MESSAGES
        )

    def _device_answers(self, conn: cups.Connection) -> bool:
        """Probe an ``ipp``/``ipps`` printer behind the queue directly (others: assume yes)."""
        try:
            attrs = conn.getPrinterAttributes(self._queue, requested_attributes=["device-uri"])
        except (cups.IPPError, RuntimeError):
            return True  # the queue itself is the question then, not the device
        match = re.match(r"ipps?://([^/:]+)(?::(\d+))?(/.*)?$", str(attrs.get("device-uri", "")))
        if match is None:
            return True
        host, port = match[1], int(match[2] or 631)
        try:
            device = cups.Connection(host=host, port=port)
            device.getPrinterAttributes(
                uri=str(attrs["device-uri"]), requested_attributes=["printer-state"]
            )
        except (cups.IPPError, RuntimeError):
            return False
        return True

    def _printer_gone(
        self,
        conn: cups.Connection,
        job_id: int,
        job_reasons: tuple[str, ...],
        before: PrinterStatus,
        document: Path | None,
    ) -> PrintOutcome:
        printer = self._status_from(self._printer_attrs(conn))
        self._cancel(conn, job_id)
        if self._unreachable(printer) and "cups-waiting-for-job-completed" not in printer.reasons:
            consumed, message = False, "printer unreachable before the job reached it"
        else:
            consumed, message = None, "printer stopped answering during the job"
        verdict = Verdict(
            Fault.PRINTER_GONE,
            consumed,
            False if consumed is False else None,
            True,
            f"{message}; job cancelled",
        )
        return self._finish(
            job_id, JobState.CANCELED, job_reasons, before, printer, verdict, document
        )

    @staticmethod
    def _cancel(conn: cups.Connection, job_id: int) -> None:
        with contextlib.suppress(cups.IPPError):  # it may have ended meanwhile
            conn.cancelJob(job_id, purge_job=False)

    def _finish(
        self,
        job_id: int | None,
        state: JobState | None,
        job_reasons: tuple[str, ...],
        before: PrinterStatus,
        after: PrinterStatus,
        verdict: Verdict,
        document: Path | None,
        error: type[PrinterError] | None = None,
    ) -> PrintOutcome:
        return finish_card(
            self._queue, job_id, state, before, after, verdict,
            job_reasons=job_reasons, document=document, error=error,
        )  # fmt: skip
