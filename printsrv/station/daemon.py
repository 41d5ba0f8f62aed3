"""The station loop: one card at a time, each step journaled before the device acts.

Per card (see ``docs/station.md``)::

    T1  claim record (lease) + reserve blank + CardJob(intent)            commit
        render the face (pure; a data error holds the record, blank back to hopper)
    T2  decrypt the record (audited) + CardJob(chip_started)              commit
        encoder: present blank, personalize, verify (blank → retry same blank)
    T3  CardJob(chip_done, chip uid) + CardJob(print_submitted, title)    commit
        printer: print and follow the job; a fault that fed no card pauses the
        station and the *same* card is printed again after the operator clears it
    T4  fate: issue (blank issued, record issued, biometrics shredded — or, with
        ``reprint_window_days`` > 0, kept until ``media_purge_due`` — ribbon counted)
        or spoil (blank spoiled with cause, record back to queued / held)  commit

When the queue is empty the station also shreds the biometrics whose reprint window has ended
(:func:`printsrv.records.purge_expired_media`, at most every ``PURGE_SWEEP_SECONDS``), never
between the steps of a card.

Faults pause the station with a readable reason (written to the station's one row,
``station``) and the loop resumes when the device reports ready again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from sqlalchemy.orm import Session, joinedload

from chip.errors import CardState, ChipError, ReaderError
from printers.api import CardPrinter, PrinterState, PrintOutcome
from printers.errors import PrinterError
from printers.faults import fault_from_reasons
from printsrv import audit
from printsrv.audit import station_chain
from printsrv.audit_tags import StationTag
from printsrv.cardinput import CardInput
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.eventlog import card_fields
from printsrv.ledger.models import StationState
from printsrv.products import card_types_for_stock, product
from printsrv.records import card_input_for, purge_expired_media
from printsrv.station import reasons, stock
from printsrv.station.claim import Claim, claim_next, office_ids, renew_lease
from printsrv.station.devices import CardEncoder, ChipResult, StationConfig
from printsrv.station.fates import issue_card, release_card, spoil_card
from printsrv.station.journal import (
    CardJob,
    CardOutcome,
    CardPhase,
    advance,
    title_for,
)
from printsrv.station.requests import (
    batch_remaining,
    current_operator,
    resume_requested,
    set_operator,
)

#: Seconds between two reads of the print holds (a supervisor's acknowledgement shows then).
HOLD_CHECK_SECONDS = 5.0

log = logging.getLogger("printsrv.station")


#: Printer fault → ledger spoil cause when a card was consumed (or may have been).
def printer_status_record(status: Any) -> dict[str, Any]:
    """A printer snapshot as the station row keeps it (JSON): state, reasons, whether it
    accepts jobs, its message and each supply's level in percent (-1: not reported)."""
    return {
        "state": status.state.name.lower(),
        "reasons": list(status.reasons),
        "accepting": bool(status.accepting_jobs),
        "message": str(status.message)[:200],
        "markers": [{"name": m.name, "type": m.type, "level": m.level,
                     "low": m.low} for m in status.markers],
    }


@dataclass
class CardResult:
    """What happened to one card."""

    job_id: int
    request_id: str
    blank_serial: str | None
    outcome: CardOutcome
    cause: str | None = None
    message: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    chip_uid: str | None = None


class StopRequested(Exception):
    """The station was asked to stop while waiting on a device."""


QcCheck = Callable[[PrintOutcome], str | None]


class Station:
    """A running station: devices, settings and the loop."""

    #: Least time between two sweeps for biometrics whose reprint window has ended.
    PURGE_SWEEP_SECONDS = 300.0

    def __init__(
        self,
        settings: Settings,
        config: StationConfig,
        printer: CardPrinter,
        encoder: CardEncoder,
        *,
        keys: Any,
        render: Callable[[CardInput], bytes] | None = None,
        qc: QcCheck | None = None,
        idle_sleep: float | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.printer = printer
        self.encoder = encoder
        self.keys = keys
        self.render = render or _render_pdf
        self.qc = qc
        self.idle_sleep = config.poll_interval if idle_sleep is None else idle_sleep
        self.stop_event = threading.Event()
        self.paused_reason: str | None = None
        self.issued = 0
        self.spoiled = 0
        self.lease = timedelta(seconds=config.lease_seconds)
        self._offices: list[int] = []
        self.acknowledged: set[str] = set()
        #: A problem only an operator's ``station resume`` clears (a software fault).
        self.sticky_problem: str | None = None
        self.on_phase: Callable[[str, CardJob], None] | None = None  # tests: crash points
        self._next_purge_sweep = 0.0  # time.monotonic() of the next sweep; 0: at the first idle
        self._hold: str | None = None
        #: The printer as last read (state, reasons, supplies), recorded on the station row
        #: with every heartbeat, card and pause, for the pages.
        self.printer_status: dict[str, Any] | None = None
        #: How often the database went away under this station (a failover, a restart).
        self.database_outages = 0
        self._hold_checked_at = float("-inf")

    def _unit(self) -> AbstractContextManager[Session]:
        """A unit of work whose audit events go to this station's own chain."""
        return unit_of_work(self.settings, audit_chain=station_chain(self.config.name))

    # -- life cycle ----------------------------------------------------------------------------

    def start(self, *, on_request: bool = False) -> None:
        """Register the station, write its row (state starting; ``on_request`` noted
        in its details, so that the web page offers "print a batch" only when it applies)."""
        with self._unit() as session:
            stock.ensure_station(session, self.config)
            self._offices = office_ids(session, self.config.office)
            row = self._runtime(session, StationState.STARTING, None)
            set_operator(session, row, self.config.operator)
            row.details = {**(row.details or {}), "on_request": on_request}
            audit.record(
                session,
                StationTag.START,
                actor=self.config.actor,
                office_code=self.config.office,
                subject=self.config.name,
                details={"pid": os.getpid(), "printer": self.printer.name,
                         "operator": self.config.operator},
            )

    def shutdown(self) -> None:
        with self._unit() as session:
            self._runtime(session, StationState.STOPPED, None)
            audit.record(
                session,
                StationTag.STOP,
                actor=self.config.actor,
                office_code=self.config.office,
                subject=self.config.name,
                details={"issued": self.issued, "spoiled": self.spoiled},
            )
        self._checkpoint("shift_end")

    def _checkpoint(self, reason: str) -> None:
        """Sign every audit chain's head (after a card's fate, at the end of a shift): the
        log anchored outside the database. A failure is logged, never stops the station."""
        from printsrv import checkpoints

        try:
            checkpoints.checkpoint_now(self.settings, self.keys, reason=reason,
                                       audit_chain=station_chain(self.config.name))
        except Exception:
            log.exception("station %s: audit checkpoint failed", self.config.name)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: finish the current card, then stop; a second signal stops at once."""

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.stop_event.is_set():
                raise KeyboardInterrupt
            log.info("station %s: stopping after the current card", self.config.name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(
        self,
        *,
        max_cards: int | None = None,
        once: bool = False,
        until_empty: bool = False,
        on_result: Callable[[CardResult], None] | None = None,
        card_interval: float = 0.0,
        on_request: bool = False,
    ) -> list[CardResult]:
        """Make cards until stopped (``once``: one card; ``until_empty``: stop when nothing
        is queued); returns the results.

        ``on_request``: make cards only as operators ask for them (``station batch NAME
        --count N`` or the web page's "print a batch"), N at a time; idle otherwise.

        ``on_result`` is called after each card (progress output); ``card_interval`` is the
        least time from one card's start to the next one's (a watchable pace for the demo).
        """
        from printsrv.station.recovery import recover

        recover(self, automatic=True)
        self.start(on_request=on_request)
        results: list[CardResult] = []
        try:
            while not self.stop_event.is_set():
                if max_cards is not None and len(results) >= max_cards:
                    break
                try:
                    self.wait_ready()
                except StopRequested:
                    break
                except Exception as exc:
                    if not self._database_lost(exc):
                        raise
                    self._wait_for_database(exc)
                    continue
                if on_request and not self._batch_remaining():
                    self.purge_sweep()
                    self.heartbeat()
                    self.stop_event.wait(self.idle_sleep)
                    continue
                started = time.monotonic()
                try:
                    result = self.process_one()
                except Exception as exc:
                    if not self._database_lost(exc):
                        raise
                    self._wait_for_database(exc)
                    continue
                if result is not None and on_request:
                    self._batch_done_one()
                if result is None:
                    self.purge_sweep()
                    if until_empty or once:
                        break
                    self.heartbeat()
                    self.stop_event.wait(self.idle_sleep)
                    continue
                results.append(result)
                if on_result is not None:
                    on_result(result)
                if once:
                    break
                rest = card_interval - (time.monotonic() - started)
                if rest > 0 and not (max_cards is not None and len(results) >= max_cards):
                    self.heartbeat()
                    self.stop_event.wait(rest)
        finally:
            try:
                self.shutdown()
            except Exception as exc:
                if not self._database_lost(exc):
                    raise
                log.warning("station %s: stopped without a database to say so: %s",
                            self.config.name, exc)
        return results

    def _database_lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the central database went away (a failover, a restart, a cut
        link) rather than a fault of ours. Only PostgreSQL: SQLite is a local file."""
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

        if not self.settings.is_postgres or not isinstance(exc, DBAPIError):
            return False
        return bool(exc.connection_invalidated) or isinstance(
            exc, OperationalError | InterfaceError
        )

    def _wait_for_database(self, exc: BaseException) -> None:
        """Pause until the database answers again (libpq tries every host in the URL and,
        with ``target_session_attrs=read-write``, connects only to the primary), then settle
        the card that was in flight through the intent journal, as at a restart."""
        from sqlalchemy import text

        from printsrv.db import engine_for
        from printsrv.station.recovery import recover

        reason = f"{reasons.DATABASE_GONE}{str(exc).strip().splitlines()[0][:200]}"
        log.warning("station %s paused: %s", self.config.name, reason)
        self.paused_reason = reason
        self.database_outages += 1
        engine = engine_for(self.settings.sqlalchemy_url)
        while not self.stop_event.wait(self.config.poll_interval):
            engine.dispose()  # every pooled connection points at the lost server
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                recovered = recover(self, automatic=True)
            except Exception as again:
                if not self._database_lost(again):
                    raise
                continue
            log.info("station %s: database back; %d card(s) settled by the journal",
                     self.config.name, len(recovered))
            self.resume(settled=[r.job_id for r in recovered])
            return

    def purge_sweep(self, *, force: bool = False) -> int:
        """Shred the biometrics of this station's offices whose reprint window has ended; at
        most every :attr:`PURGE_SWEEP_SECONDS` (``force``: now). Called from the idle loop
        only; a failure is logged and retried at the next sweep, it never stops the station."""
        now = time.monotonic()
        if not force and now < self._next_purge_sweep:
            return 0
        self._next_purge_sweep = now + self.PURGE_SWEEP_SECONDS
        try:
            with self._unit() as session:
                if not self._offices:
                    self._offices = office_ids(session, self.config.office)
                shredded = purge_expired_media(
                    session,
                    now=datetime.now(UTC),
                    actor=self.config.actor,
                    office_ids=self._offices,
                    limit=500,
                )
        except Exception:
            log.exception("station %s: purge sweep failed", self.config.name)
            return 0
        if shredded:
            log.info(
                "station %s: shredded the biometrics of %d records (reprint window ended)",
                self.config.name,
                shredded,
            )
        return shredded

    # -- device readiness ----------------------------------------------------------------------

    def device_problem(self) -> str | None:
        """A reason the station cannot make a card now, or ``None``.

        CUPS keeps ``…-report`` reasons (a jam, ribbon out) until a later good job, so reasons
        an operator acknowledged with ``station resume`` are ignored until they go away.
        """
        if self.sticky_problem:
            return self.sticky_problem
        hold = self._print_hold()
        if hold:
            return f"{reasons.PRINT_HOLD}{hold}"
        try:
            status = self.printer.status()
        except PrinterError as exc:
            self.printer_status = {"state": "gone", "reasons": [], "message": str(exc)[:200],
                                   "accepting": False, "markers": []}
            return f"{reasons.PRINTER_GONE}{exc}"
        self.printer_status = printer_status_record(status)
        current = set(status.reasons)
        self.acknowledged &= current
        fault = fault_from_reasons([r for r in status.reasons if r not in self.acknowledged])
        if fault is not None:
            return reasons.PAUSE_TEXT[fault]
        if not status.accepting_jobs:
            return reasons.QUEUE_NOT_ACCEPTING
        if status.state == PrinterState.STOPPED:
            return reasons.QUEUE_STOPPED
        reason = self.encoder.ready()
        if reason:
            return reason
        return None

    def _print_hold(self) -> str | None:
        """An unacknowledged print hold (e.g. after a restore), read at most every few
        seconds: it changes by a supervisor's hand, not per card."""
        now = time.monotonic()
        if now - self._hold_checked_at >= HOLD_CHECK_SECONDS:
            from printsrv.backup import active_hold

            with self._unit() as session:
                self._hold = active_hold(session)
            self._hold_checked_at = now
        return self._hold

    def _resume_requested(self) -> bool:
        with self._unit() as session:
            row = stock.station_row(session, self.config)
            if not resume_requested(row):
                return False
            row.details = {k: v for k, v in row.details.items() if k != "resume"}
        self.sticky_problem = None
        with contextlib.suppress(PrinterError):
            self.acknowledged = set(self.printer.status().reasons)
        return True

    def _batch_remaining(self) -> int:
        """Cards operators asked for and not yet made (``on_request`` mode)."""
        with self._unit() as session:
            return batch_remaining(stock.station_row(session, self.config))

    def _batch_done_one(self) -> None:
        with self._unit() as session:
            row = stock.station_row(session, self.config)
            left = max(batch_remaining(row) - 1, 0)
            row.details = {**(row.details or {}), "batch": left}

    def wait_ready(self, reason: str | None = None) -> None:
        """Block (paused, with a reason) until the devices are ready or an operator asks to
        resume; raise :class:`StopRequested` if stopped meanwhile."""
        problem = reason or self.device_problem()
        while problem:
            if self.paused_reason != problem:
                self.pause(problem)
            if self.stop_event.wait(self.config.poll_interval):
                raise StopRequested(problem)
            if self._resume_requested():
                log.info("station %s: operator resumed (%s)", self.config.name, problem)
            problem = self.device_problem()
            self.heartbeat()
        if self.paused_reason is not None and not self.paused_reason.startswith(
            reasons.NO_STOCK
        ):  # waiting for stock ends when a card is claimed (process_one)
            self.resume()

    def pause(self, reason: str) -> None:
        log.warning("station %s paused: %s", self.config.name, reason)
        self.paused_reason = reason
        with self._unit() as session:
            self._runtime(session, StationState.PAUSED, reason)
            audit.record(
                session,
                StationTag.PAUSE,
                actor=self.config.actor,
                office_code=self.config.office,
                subject=self.config.name,
                details={"reason": reason},
            )

    def resume(self, **details: Any) -> None:
        """Running again after :attr:`paused_reason`; ``details`` add to the audit event (the
        cards a reconnection settled)."""
        log.info("station %s resumed", self.config.name)
        with self._unit() as session:
            self._runtime(session, StationState.RUNNING, None)
            audit.record(
                session,
                StationTag.RESUME,
                actor=self.config.actor,
                office_code=self.config.office,
                subject=self.config.name,
                details={"after": self.paused_reason, **details},
            )
        self.paused_reason = None

    def heartbeat(self, job: CardJob | None = None) -> None:
        with self._unit() as session:
            mode = StationState.PAUSED if self.paused_reason else StationState.RUNNING
            self._runtime(session, mode, self.paused_reason, job)
            if job is not None:
                renew_lease(session, job.record_id, self.config.actor, lease=self.lease)

    def _runtime(
        self,
        session: Any,
        state: StationState,
        reason: str | None,
        job: CardJob | None = None,
    ) -> Any:
        """Write what the station is doing on its one row (state, reason, pid, heartbeat,
        card job, counters, the printer as last read) and return the row."""
        from printsrv.models import utcnow

        row = stock.station_row(session, self.config)
        row.state = state
        row.pause_reason = reason
        row.pid = os.getpid()
        row.heartbeat_at = utcnow()
        row.current_job_id = job.id if job is not None else None
        row.cards_issued = self.issued
        row.cards_spoiled = self.spoiled
        if self.printer_status is not None:
            row.printer_status = self.printer_status
        return row

    def _phase(self, name: str, job: CardJob) -> None:
        if self.on_phase is not None:
            self.on_phase(name, job)

    # -- one card ------------------------------------------------------------------------------

    def process_one(self) -> CardResult | None:
        """Make one card; ``None`` when no record is queued (or no blank is loaded)."""
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        claim: Claim | None = None
        with self._unit() as session:
            if not self._offices:
                self._offices = office_ids(session, self.config.office)
            loaded = stock.loaded_stock_types(session, self.config)
            if not loaded:
                problem = reasons.NO_BLANKS
            else:
                problem = None
                claim = claim_next(
                    session, self._offices, self.config.actor, lease=self.lease,
                    card_types=card_types_for_stock(loaded),
                )
                if claim is None:
                    missing = stock.missing_stock(session, self._offices, loaded)
                    problem = reasons.NO_STOCK + ", ".join(missing) if missing else None
            if claim is not None:  # its card type's stock is in the hopper (loaded)
                stock_type = product(claim.card_type).blank_stock
                blank = stock.next_blank(session, self.config, stock_type)
                stock.reserve(session, self.config, blank, claim.id)
                row = stock.station_row(session, self.config)
                job = CardJob(
                    station=self.config.name,
                    record_id=claim.id,
                    blank_serial=blank.serial,
                    phase=CardPhase.INTENT,
                    operator=current_operator(row, self.config.operator),
                )
                session.add(job)
                session.flush()
                job.print_title = title_for(job, claim.request_id)
                self._runtime(session, StationState.RUNNING, None, job)
        if problem:
            if problem != self.paused_reason:  # waiting for stock: one pause, not one a poll
                self.pause(problem)
            return None
        if self.paused_reason is not None and self.paused_reason.startswith(reasons.NO_STOCK):
            self.resume()  # nothing waits for missing stock any more
        if claim is None:
            return None
        timings["claim"] = time.perf_counter() - t0
        self._phase("intent", job)

        # Decrypt and render before the blank moves: a data error costs no blank.
        t = time.perf_counter()
        try:
            with self._unit() as session:
                db_job = session.get(CardJob, job.id, options=[joinedload(CardJob.record)])
                assert db_job is not None
                card = card_input_for(
                    session, self.keys, db_job.record, actor=self.config.actor, purpose="card"
                )
                advance(session, db_job, CardPhase.CHIP_STARTED)
            timings["decrypt"] = time.perf_counter() - t
            t = time.perf_counter()
            pdf = self.render(card)
            timings["render"] = time.perf_counter() - t
        except Exception as exc:
            log.error("station %s: cannot prepare %s: %s", self.config.name, job.id, exc)
            return self._release(job, hold=f"cannot prepare the card: {exc}", timings=timings)
        self._phase("chip_started", job)

        # Chip first: a chip failure costs a blank but no ribbon.
        t = time.perf_counter()
        chip_result: ChipResult | None = None
        attempts = 0
        fed = False  # the blank is in the encoder
        while chip_result is None:
            attempts += 1
            try:
                if attempts == 1:
                    self._feed_to_encoder()
                    fed = True
                    self.encoder.present_blank(job.blank_serial or "")
                chip_result = self.encoder.personalize(card, blank_serial=job.blank_serial or "")
            except ChipError as exc:
                if isinstance(exc, ReaderError) and exc.card_state is CardState.BLANK:
                    gone = f"{reasons.READER_GONE}{exc}"
                    if fed:  # untouched: out to the tray, the operator puts it back
                        self._eject_from_encoder()
                        gone += reasons.BLANK_EJECTED
                    result = self._release(job, reason=gone, timings=timings)
                    self.paused_reason = None
                    self.pause(gone)
                    return result
                if exc.card_state is CardState.BLANK and attempts <= self.config.chip_retries:
                    log.warning("station %s: chip retry on blank: %s", self.config.name, exc)
                    continue
                self._reject_from_encoder()
                return self._spoil(job, "chip_failure", str(exc), timings=timings)
            except Exception as exc:  # a software fault, not the card's: stop and say so
                log.exception("station %s: encoder error on card job %s", self.config.name,
                              job.id)
                return self._encoder_fault(job, exc, timings, fed=fed)
        timings["chip"] = time.perf_counter() - t
        # One commit for both phases: nothing physical happens between them, and recovery
        # gives a chip_done job and a print_submitted job without a print job the same fate.
        with self._unit() as session:
            db_job = session.get(CardJob, job.id)
            assert db_job is not None
            advance(
                session,
                db_job,
                CardPhase.CHIP_DONE,
                chip_uid=chip_result.uid or None,
                chip_attempts=attempts,
            )
            advance(session, db_job, CardPhase.PRINT_SUBMITTED)
        self._phase("chip_done", job)
        self._phase("print_submitted", job)

        # Print; a fault that fed no card pauses and prints the same card again.
        t = time.perf_counter()
        while True:
            try:
                outcome = self.printer.print_card(pdf, title=job.print_title or "card")
                break
            except PrinterError as exc:
                outcome = exc.outcome  # type: ignore[assignment]
                fault = outcome.fault if outcome is not None else None
                consumed = exc.card_consumed
                if outcome is not None and outcome.job_id is not None:
                    self._note_job(job, outcome.job_id)
                if consumed is False:
                    reason = (reasons.PAUSE_TEXT.get(fault, str(exc)) if fault
                              else f"{reasons.PRINTER_ERROR}{exc}")
                    timings["print"] = time.perf_counter() - t
                    try:
                        self.wait_ready(reason)
                    except StopRequested:
                        cause = reasons.spoil_cause(fault)
                        return self._spoil(
                            job, cause, f"stopped while paused: {exc}", timings=timings
                        )
                    continue
                cause = reasons.spoil_cause(fault)
                result = self._spoil(job, cause, str(exc), outcome=outcome, timings=timings)
                problem = self.device_problem()
                if problem:
                    self.pause(problem)
                return result
        timings["print"] = time.perf_counter() - t
        reject = self.qc(outcome) if self.qc is not None else None
        if reject:
            return self._spoil(job, "qc_reject", reject, outcome=outcome, timings=timings)
        return self._issue(job, chip_result, outcome, timings=timings)

    def _encoder_fault(self, job: CardJob, exc: Exception, timings: dict[str, float], *,
                       fed: bool) -> CardResult:
        """An unexpected error in the encoder software: the blank is released when the card
        still probes blank (ejected to the tray if it was ``fed`` to the encoder), else spoiled
        ``chip_failure`` (to the reject box); the station then stays paused until an operator
        resumes it (the next card would most likely fail the same way)."""
        reason = (f"{reasons.ENCODER_ERROR}{type(exc).__name__}: {exc}; "
                  f"{reasons.AFTER_FIXING}python run.py station resume {self.config.name}")[:500]
        try:
            state = self.encoder.probe()
        except Exception:
            state = CardState.UNKNOWN
        if state is CardState.BLANK:
            if fed:
                self._eject_from_encoder()
                reason = (reason + reasons.BLANK_EJECTED)[:500]
            result = self._release(job, reason=reason, timings=timings)
        else:
            if fed:
                self._reject_from_encoder()
            result = self._spoil(job, "chip_failure", reason, timings=timings)
        self.sticky_problem = reason
        self.paused_reason = None
        self.pause(reason)
        return result

    def _feed_to_encoder(self) -> None:
        """The printer moves the blank to the encoder as its profile's ``[encoder]`` says; a
        printer that cannot do it leaves the blank in the hopper (a reader-side stop)."""
        try:
            self.printer.feed_to_encoder()
        except PrinterError as exc:
            raise ReaderError(f"the printer did not move the blank to the encoder: {exc}",
                              card_state=CardState.BLANK) from exc  # fmt: skip

    def _reject_from_encoder(self) -> None:
        """A failed chip's card goes to the reject box; if the printer cannot say so, the
        operator removes it (the blank is spoiled either way)."""
        try:
            self.printer.reject_from_encoder()
        except PrinterError as exc:
            log.warning("station %s: reject command failed: %s", self.config.name, exc)

    def _eject_from_encoder(self) -> None:
        """An untouched blank leaves the encoder for the output tray (released: the operator
        puts it back in the hopper); if the printer cannot say so, the operator takes it out."""
        try:
            self.printer.eject_from_encoder()
        except PrinterError as exc:
            log.warning("station %s: eject command failed: %s", self.config.name, exc)

    def _note_job(self, job: CardJob, print_job_id: int | None) -> None:
        if print_job_id is None:
            return
        with self._unit() as session:
            db_job = session.get(CardJob, job.id)
            if db_job is not None and db_job.outcome is None:
                db_job.print_job_id = print_job_id

    # -- fates ---------------------------------------------------------------------------------

    def _issue(
        self,
        job: CardJob,
        chip: ChipResult,
        outcome: PrintOutcome,
        *,
        timings: dict[str, float],
    ) -> CardResult:
        t = time.perf_counter()
        with self._unit() as session:
            db_job = session.get(CardJob, job.id, options=[joinedload(CardJob.record)])
            assert db_job is not None
            issue_card(
                session,
                self.config,
                db_job,
                actor=self.config.actor,
                chip_uid=chip.uid,
                outcome=outcome,
                reprint_window_days=self.settings.reprint_window_days,
            )
            request_id = db_job.record.request_id
        self.issued += 1
        timings["issue"] = time.perf_counter() - t
        self._checkpoint("card")
        log.info("station %s: issued %s on %s", self.config.name, request_id, job.blank_serial,
                 extra=card_fields(self.config.name, request_id=request_id,
                                   blank_serial=job.blank_serial, card_job=job.id))
        return CardResult(job.id, request_id, job.blank_serial, CardOutcome.ISSUED,
                          timings=timings, chip_uid=chip.uid or None)

    def _spoil(
        self,
        job: CardJob,
        cause: str,
        message: str,
        *,
        outcome: PrintOutcome | None = None,
        timings: dict[str, float],
    ) -> CardResult:
        with self._unit() as session:
            db_job = session.get(CardJob, job.id, options=[joinedload(CardJob.record)])
            assert db_job is not None
            spoil_card(
                session,
                self.config,
                db_job,
                cause,
                message,
                actor=self.config.actor,
                outcome=outcome,
            )
            request_id = db_job.record.request_id
        self.spoiled += 1
        self._checkpoint("card")
        log.warning("station %s: spoiled %s (%s): %s", self.config.name, job.blank_serial,
                    cause, message,
                    extra=card_fields(self.config.name, request_id=request_id,
                                      blank_serial=job.blank_serial, card_job=job.id))
        return CardResult(job.id, request_id, job.blank_serial, CardOutcome.SPOILED, cause,
                          message, timings=timings)

    def _release(
        self,
        job: CardJob,
        *,
        hold: str | None = None,
        reason: str | None = None,
        timings: dict[str, float],
    ) -> CardResult:
        with self._unit() as session:
            db_job = session.get(CardJob, job.id)
            assert db_job is not None
            release_card(session, self.config, db_job, hold=hold, reason=reason,
                         actor=self.config.actor)
            request_id = db_job.record.request_id
        return CardResult(job.id, request_id, job.blank_serial, CardOutcome.RELEASED,
                          None, hold or reason or "", timings=timings)


def _render_pdf(card: CardInput) -> bytes:
    from printsrv.layout import render_card

    return render_card(card).pdf
