"""``demo``: one command for a complete virtual station, stopped cleanly on Ctrl-C.

    python run.py demo [--count N] [--no-web] [--port 8080] [--cards-per-minute R]
    python run.py demo --kecamatan [--count N] [--offline-seconds S]  (demo_kecamatan.py)

In order: ``init`` (idempotent) → a signed demo batch generated and imported (skipped while
records of an earlier demo batch are still queued) → a carton of blanks received and loaded and a
ribbon received and loaded (only what is missing) → the device stack (pcscd + vpcd + the card
simulator; a private cupsd + ippeveprinter as the card printer behind a CUPS queue) → a demo
operator account and ``run.py serve`` on 127.0.0.1 → the station printing the queue at a
watchable pace. Ctrl-C (or SIGTERM) finishes the current card, then stops the web server and the
device stack in reverse order. A second Ctrl-C stops at once (the interrupted card is recovered
by the station's journal at the next start).

The demo runs itself as a child process in a session of its own: a Ctrl-C in the terminal goes
to the whole foreground process group, and would otherwise also hit pcscd and the card simulator
in the middle of a card. The parent forwards the signal to the child, which stops in order.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, Final

from printsrv import PROJECT_ROOT
from printsrv.config import Settings, load_settings
from printsrv.errors import PrintSrvError

OFFICE: Final = "35.26.01"
STATION: Final = "demo"
PRINTER: Final = "DemoCard"
READER: Final = "Virtual PCD 00 00"
DEMO_USER: Final = "demo-operator"
BLANK_PREFIX: Final = "DEMO-"
#: The demo's blank serials and spares of each blank stock type (KIA blanks have no chip).
BLANK_PREFIXES: Final = {"KTP-EL": BLANK_PREFIX, "KIA": "KIADEMO-"}
SPARES: Final = {"KTP-EL": 10, "KIA": 3}
CARTON: Final = 100
_CHILD_ENV: Final = "PRINTSRV_DEMO_CHILD"
_PR_SET_PDEATHSIG: Final = 1

log = logging.getLogger("printsrv.demo")
#: Records of each demo batch held for review, so that the review workflow can be tried.
DEMO_HELD = 2


class DemoStopped(Exception):
    """Ctrl-C arrived while the demo was still starting."""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run a complete virtual station (database, chip simulator, CUPS printer, web)",
        description="Start everything a newcomer needs to watch cards being made; Ctrl-C "
        "stops all of it.",
    )
    p.add_argument("--count", type=int, default=20, help="demo records to import (default 20)")
    p.add_argument("--no-web", action="store_true", help="do not start the web server")
    p.add_argument("--port", type=int, default=8080, help="web server port (default 8080)")
    p.add_argument(
        "--cards-per-minute",
        type=float,
        default=12.0,
        help="pace of the station, to be watchable (default 12; 0 = as fast as it can)",
    )
    k = p.add_argument_group(
        "kecamatan", "--kecamatan: a kabupaten server, a kecamatan node with its virtual station "
        "and a link that drops for a while; prints what happens, cleans up, exits 0 when the "
        "node caught up")
    k.add_argument("--kecamatan", action="store_true", help="run the kecamatan node demo")
    k.add_argument("--offline-seconds", type=float, default=15.0,
                   help="how long the link stays down at least (default 15)")
    k.add_argument("--print-seconds", type=float, default=0.5,
                   help="seconds the node's printer takes per card (default 0.5)")
    k.add_argument("--sqlite", action="store_true",
                   help="the server on SQLite even when PostgreSQL answers on 127.0.0.1:5432")
    k.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.count < 1:
        print("error: --count must be at least 1", file=sys.stderr)
        return 2
    if os.environ.get(_CHILD_ENV) != "1":
        return _supervise()
    if args.kecamatan:
        from printsrv.commands.demo_kecamatan import run_kecamatan

        return run_kecamatan(args)
    return run_demo(args)


# -- the supervising parent ---------------------------------------------------------------------


def _die_with_parent() -> None:
    """In a child: get SIGTERM when the process that started it dies (Linux prctl)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _supervise() -> int:
    """Run the demo in a new session and forward SIGINT/SIGTERM to it; its status is ours."""
    env = {**os.environ, _CHILD_ENV: "1"}
    child = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "run.py"), *sys.argv[1:]],
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    status = child.wait()
    return status if status >= 0 else 128 - status


# -- the demo ----------------------------------------------------------------------------------


class _Console:
    """Progress lines on standard output, flushed at once (a pipe may be watching)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[demo {time.monotonic() - self.started:6.1f}s] {text}", flush=True)


def run_demo(args: argparse.Namespace) -> int:
    """Start the whole virtual station, make cards until stopped, stop everything."""
    console = _Console()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        console.say("stopping: the station finishes the current card (Ctrl-C again: at once)")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def check() -> None:
        if stop.is_set():
            raise DemoStopped

    base = load_settings()
    log_dir = base.instance_dir / "log" / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    _log_to_file(log_dir / "demo.log")

    with contextlib.ExitStack() as stack:
        try:
            console.say(f"instance {base.instance_dir}, database "
                        f"{base.sqlalchemy_url.split('@')[-1]}")
            if not args.no_web and _port_answers(args.port):
                raise PrintSrvError(f"port {args.port} is in use: choose another with --port")
            _init(console)
            check()
            queued = ensure_records(base, args.count, base.instance_dir / "demo", console)
            check()
            settings = _station_settings(base, cups_server=None)
            ensure_stock(settings, queued, console)
            check()
            stack.callback(console.say, "stopped")
            cups_server = _start_devstack(stack, log_dir, queued, console)
            check()
            settings = _station_settings(base, cups_server=cups_server)
            if not args.no_web:
                user, password = ensure_demo_user(settings)
                web = _start_web(args.port, log_dir, console)
                stack.callback(_stop_web, web, console)
                check()
                console.say(f"web: http://127.0.0.1:{args.port}/  user {user}  "
                            f"password {password}")
            console.say(f"station {STATION}: printer queue {PRINTER} (ippeveprinter), reader "
                        f"{READER!r} (card simulator via vpcd); Ctrl-C stops everything")
            results = _run_station(settings, stop, args.cards_per_minute, queued, console)
        except DemoStopped:
            console.say("stopped while starting")
            return 0
        except KeyboardInterrupt:
            console.say("stopping at once (the station's journal recovers the card next time)")
            return 130
        except (RuntimeError, PrintSrvError) as exc:  # a daemon that would not start, a port
            console.say(f"error: {exc}; stopping what was started (logs in {log_dir})")
            return 1
        issued = sum(r.outcome.value == "issued" for r in results)
        console.say(f"station stopped: {len(results)} cards this run, {issued} issued")
    return 0


class SayOnce(logging.Filter):
    """For the console: a warning is shown once, and the same warning again only after the
    state changed (any other message came in between), not at every poll of a paused
    station. Messages below WARNING only mark the change; they go to the log file."""

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.levelno < logging.WARNING:
            self.last = None
            return False
        if text == self.last:
            return False
        self.last = text
        return True


def _log_to_file(path: Path) -> None:
    """Station details to a log file; the console shows warnings (each once while it holds,
    :class:`SayOnce`) and the progress lines."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO)
    console.addFilter(SayOnce())
    console.setFormatter(logging.Formatter("  %(levelname)s %(message)s"))
    root.addHandler(console)


def _init(console: _Console) -> None:
    """``run.py init``: database schema and development keys (idempotent)."""
    import io
    from contextlib import redirect_stdout

    from printsrv.commands.foundation import cmd_init

    out = io.StringIO()
    with redirect_stdout(out):
        cmd_init(argparse.Namespace(dev=True))
    for line in out.getvalue().splitlines():
        console.say(line)


def _station_settings(base: Settings, *, cups_server: str | None) -> Settings:
    """The settings with the demo station configured (the settings object is frozen)."""
    station: dict[str, Any] = {
        "office": OFFICE,
        "profile": "virtual-ipp-card",
        "cups_queue": PRINTER,
        "reader": READER,
        "encoder": "virtual",
        "poll_interval": 0.5,
        "print_timeout": 60.0,
    }
    if cups_server:
        station["cups_server"] = cups_server
    stations = {**base.stations, STATION: station}
    return load_settings(overrides={"stations": stations})


def ensure_records(settings: Settings, count: int, folder: Path,
                   console: _Console) -> int:
    """Import a demo batch of ``count`` records unless an earlier one still has records queued;
    return how many records of the demo office are queued."""
    from sqlalchemy import func, select

    from printsrv.db import unit_of_work
    from printsrv.intake.demo import write_demo_batch
    from printsrv.intake.pipeline import import_batch
    from printsrv.models import Batch, Record, RecordState
    from printsrv.station.claim import office_ids

    def queued_and_batches() -> tuple[int, int]:
        with unit_of_work(settings) as session:
            offices = office_ids(session, OFFICE)
            queued = session.scalar(
                select(func.count()).select_from(Record).where(
                    Record.office_id.in_(offices or [-1]), Record.state == RecordState.QUEUED)
            ) or 0
            batches = session.scalar(
                select(func.count()).select_from(Batch).where(Batch.batch_id.like("DEMO-%"))
            ) or 0
        return queued, batches

    queued, batches = queued_and_batches()
    if queued and batches:
        console.say(f"records: {queued} queued at office {OFFICE} (demo data already imported)")
        return queued
    batch_id = f"DEMO-{batches + 1}"
    out = folder / batch_id
    console.say(f"records: writing demo batch {batch_id} ({count} signed synthetic records)")
    write_demo_batch(settings, count, out, seed=100 + batches, batch_id=batch_id,
                     office_codes=[OFFICE], held=DEMO_HELD if count > 2 * DEMO_HELD else 0)
    result = import_batch(settings, out, actor="demo")
    if not result.accepted:
        raise PrintSrvError(f"demo batch rejected: {result.problems}")
    queued, _ = queued_and_batches()
    console.say(f"records: imported {result.imported} ({result.held} held), {queued} queued")
    return queued


def ensure_stock(settings: Settings, needed: int, console: _Console) -> None:
    """Blanks of each stock type in the station's hopper for the queued cards of that type
    (``needed`` KTP-el cards when none are queued; plus spares), and a loaded ribbon: receive a
    carton and a roll only when they are missing."""
    from sqlalchemy import func, select

    from printers.profiles import get_profile
    from printsrv.db import unit_of_work
    from printsrv.ledger.blanks import load_blanks, receive_blanks
    from printsrv.ledger.models import Blank, BlankState, Consumable, ConsumableKind
    from printsrv.ledger.ribbons import load_consumable, loaded_consumable, receive_consumable
    from printsrv.models import Record, RecordState
    from printsrv.products import DEFAULT_STOCK_TYPE, STOCK_TYPES, product
    from printsrv.station import stock
    from printsrv.station.devices import StationConfig

    config = StationConfig.from_settings(settings, STATION)
    with unit_of_work(settings) as session:
        station = stock.ensure_station(session, config)
        queued: Counter[str] = Counter()
        for card_type, n in session.execute(
            select(Record.card_type, func.count())
            .where(Record.state == RecordState.QUEUED)
            .group_by(Record.card_type)
        ):
            queued[product(card_type).blank_stock] += n
        if not queued:
            queued[DEFAULT_STOCK_TYPE] = needed
        for stock_type in STOCK_TYPES:  # each stock type is its own carton, serials and count
            prefix = BLANK_PREFIXES[stock_type]
            want = queued[stock_type] + SPARES[stock_type]  # spares for spoiled cards
            in_hopper = session.scalar(
                select(func.count()).select_from(Blank).where(
                    Blank.station_id == station.id, Blank.state == BlankState.IN_HOPPER,
                    Blank.stock_type == stock_type)
            ) or 0
            if in_hopper >= want:
                console.say(f"ledger: {in_hopper} {stock_type} blanks already in the hopper of "
                            f"{STATION}")
                continue
            missing = want - in_hopper
            carton = max(CARTON, -(-missing // CARTON) * CARTON)
            last = session.scalar(
                select(func.max(Blank.number)).where(Blank.prefix == prefix)) or 0
            first, end = f"{prefix}{last + 1:06d}", f"{prefix}{last + carton:06d}"
            receive_blanks(session, office_code=OFFICE, first=first, last=end,
                           handover_number=f"BAST-{prefix}{last + 1:06d}", actor="demo",
                           carton=f"{prefix}CARTON-{last // CARTON + 1}", from_party="demo",
                           stock_type=stock_type)
            load_blanks(session, station, actor="demo", count=missing, stock_type=stock_type)
            console.say(f"ledger: received {stock_type} blanks {first}..{end}, loaded {missing} "
                        f"into the hopper of {STATION} ({in_hopper + missing} in the hopper)")
        ribbon = get_profile(config.profile).ribbon
        if loaded_consumable(session, station, ConsumableKind.RIBBON) is None:
            rolls = session.scalar(select(func.count()).select_from(Consumable).where(
                Consumable.serial.like("RIB-DEMO-%"))) or 0
            serial = f"RIB-DEMO-{rolls + 1}"
            receive_consumable(session, kind=ConsumableKind.RIBBON, office_code=OFFICE,
                               serial=serial, type_=ribbon.type,
                               capacity=ribbon.capacity_sets, actor="demo")
            load_consumable(session, station, kind=ConsumableKind.RIBBON, serial=serial,
                            actor="demo")
            console.say(f"ledger: received and loaded ribbon {serial} ({ribbon.type})")
        else:
            console.say("ledger: a ribbon is already loaded")


def _start_devstack(stack: contextlib.ExitStack, log_dir: Path, cards: int,
                    console: _Console) -> str:
    """pcscd + vpcd (the card simulator is started per blank by the station), then cupsd +
    ippeveprinter; both are stopped by ``stack`` in reverse order. Returns the CUPS server."""
    from printsrv.devstack.cups import CupsStack
    from printsrv.devstack.pcsc import LOCK_PATH as PCSC_LOCK
    from printsrv.devstack.pcsc import PcscStack

    pcsc = PcscStack(sim_args=(), log_dir=log_dir, lock_timeout=3600)
    if _lock_busy(PCSC_LOCK):
        console.say(f"devices: another run (a test suite?) holds the PC/SC stack ({PCSC_LOCK}); "
                    "waiting for it to finish")
    console.say("devices: starting pcscd + vpcd")
    pcsc.start()
    stack.callback(_stopped, pcsc.stop, console, "PC/SC stack (pcscd)")
    if not pcsc.owns_pcscd:
        console.say("devices: sharing the pcscd already running")
    cups = CupsStack(printers=[PRINTER], ribbon_cards=max(200, cards * 2),
                     cards=max(500, cards * 2))
    console.say("devices: starting cupsd + ippeveprinter (the card printer)")
    cups.start()
    stack.callback(_stopped, cups.stop, console, "CUPS stack (cupsd, ippeveprinter)")
    console.say(f"devices: CUPS queue {PRINTER} -> {cups.printer(PRINTER).uri}")
    return cups.server


def _lock_busy(path: Path) -> bool:
    """Whether another process holds the flock on ``path`` (tried and released at once)."""
    import fcntl

    try:
        handle = open(path, "ab")  # noqa: SIM115 - closed below
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        handle.close()  # closing drops a lock we may have taken
    return False


def _stopped(stop: Callable[[], None], console: _Console, what: str) -> None:
    stop()
    console.say(f"stopped {what}")


def ensure_demo_user(settings: Settings) -> tuple[str, str]:
    """The demo operator account with a fresh password (shown once on the console)."""
    from sqlalchemy import select

    from printsrv.db import unit_of_work
    from printsrv.models import Role, User
    from printsrv.web.auth_service import create_user, set_password
    from printsrv.web.services import ensure_office

    password = secrets.token_urlsafe(12)
    with unit_of_work(settings) as session:
        user = session.scalar(select(User).where(User.username == DEMO_USER))
        if user is None:
            create_user(session, DEMO_USER, Role.OPERATOR, ensure_office(session, OFFICE),
                        password, full_name="Demo operator", actor="demo")
        else:
            set_password(session, user, password, actor="demo")
            user.failed_logins = 0
            user.active = True
    return DEMO_USER, password


def _port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _start_web(port: int, log_dir: Path, console: _Console) -> subprocess.Popen[bytes]:
    """``run.py serve`` on 127.0.0.1:``port`` as a child; wait until it answers."""
    if _port_answers(port):
        raise PrintSrvError(f"port {port} is in use: choose another with --port")
    console.say(f"web: starting run.py serve on 127.0.0.1:{port}")
    with open(log_dir / "web.log", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "run.py"), "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1", "--threads", "4", "--insecure-cookies"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    deadline = time.monotonic() + 60
    while not _port_answers(port):
        if proc.poll() is not None:
            raise PrintSrvError(f"the web server exited ({proc.returncode}); see "
                               f"{log_dir / 'web.log'}")
        if time.monotonic() > deadline:
            _stop_web(proc, console)
            raise PrintSrvError(f"the web server did not answer on port {port}")
        time.sleep(0.1)
    return proc


def _stop_web(proc: subprocess.Popen[bytes], console: _Console) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    console.say("stopped web server")


def _run_station(settings: Settings, stop: threading.Event, cards_per_minute: float,
                 queued: int, console: _Console) -> list[Any]:
    """Build the demo station and make cards until ``stop`` is set."""
    from printsrv.keys import KeyStore
    from printsrv.station.daemon import CardResult, Station
    from printsrv.station.devices import StationConfig, build_encoder, build_printer

    config = StationConfig.from_settings(settings, STATION)
    printer = build_printer(settings, config)
    encoder = build_encoder(settings, config)
    interval = 60.0 / cards_per_minute if cards_per_minute > 0 else 0.0
    done = [0]

    def left() -> int:
        from sqlalchemy import func, select

        from printsrv.db import unit_of_work
        from printsrv.models import Record, RecordState
        from printsrv.station.claim import office_ids

        with unit_of_work(settings) as session:
            offices = office_ids(session, OFFICE) or [-1]
            return session.scalar(select(func.count()).select_from(Record).where(
                Record.office_id.in_(offices), Record.state == RecordState.QUEUED)) or 0

    def progress(result: CardResult) -> None:
        done[0] += 1
        seconds = sum(result.timings.values())
        queued = left()
        if result.outcome.value == "issued":
            console.say(f"card {done[0]} issued: {result.request_id}, blank "
                        f"{result.blank_serial}, chip UID {result.chip_uid or '-'} "
                        f"({seconds:.1f} s; {queued} left in the queue)")
            _show_sms(settings, result.request_id, console)
        else:
            console.say(f"card {done[0]} {result.outcome.value}"
                        f"{' (' + result.cause + ')' if result.cause else ''}: "
                        f"{result.request_id}, blank {result.blank_serial}: {result.message} "
                        f"({queued} left in the queue)")
        if queued == 0:
            console.say("queue done; the station waits for more records (Ctrl-C to stop)")

    try:
        with KeyStore.open(settings) as keys:
            bind = getattr(encoder, "bind_keys", None)
            if bind is not None:
                bind(keys)
            station = Station(settings, config, printer, encoder, keys=keys)
            station.stop_event = stop
            console.say(f"station {STATION}: printing {queued} queued records")
            return station.run(on_result=progress, card_interval=interval)
    finally:
        close = getattr(encoder, "close", None)
        if close is not None:
            close()
        console.say(f"station {STATION} stopped")


def _show_sms(settings: Settings, request_id: str, console: _Console) -> None:
    """The pickup SMS of an issued card: made from the outbox and sent through the configured
    gateway (the demo's default writes it to <instance>/sms/outgoing.txt), shown here."""
    from printsrv.db import unit_of_work
    from printsrv.notify.sender import collect, for_record, send_due

    try:
        collect(settings)
        send_due(settings)
        with unit_of_work(settings) as session:
            messages = for_record(session, request_id)
    except PrintSrvError as exc:
        console.say(f"  SMS: not sent ({exc})")
        return
    for message in messages[-1:]:
        if message.phone is None:
            console.say(f"  SMS: none ({message.error})")
            continue
        when = {"pending": "waits for 07:00 office time", "sent": "sent",
                "delivered": "delivered"}.get(message.state.value, message.state.value)
        console.say(f"  SMS to {message.phone} ({when}): {message.text}")
