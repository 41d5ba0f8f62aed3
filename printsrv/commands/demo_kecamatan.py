"""``demo --kecamatan``: a kabupaten server, one kecamatan node with its virtual station, and a
link between them that drops for a while; the node keeps printing and catches up.

    python run.py demo --kecamatan [--count N] [--offline-seconds S] [--sqlite] [--keep]

Everything lives in a scratch folder (removed at the end unless ``--keep``, or when something
failed: its logs stay): the server's instance and token (``init --dev``), on a scratch
PostgreSQL database created on 127.0.0.1:5432 and dropped at the end when one answers there
(else SQLite; ``--sqlite`` forces it), and the node's instance and token on SQLite. The server
(``run.py serve``), the node's web app (``run.py serve``, which runs the node's sync beside it)
and the node's station (``run.py station``, directory printer, fake encoder) are processes of
their own; the link is a TCP proxy in this process (:class:`printsrv.sync.linkproxy.LinkProxy`).
The enrolment's pairing code is approved automatically (an admin types it in real life).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

from printsrv import PROJECT_ROOT
from printsrv.commands.demo import OFFICE, STATION, DemoStopped, _Console, _die_with_parent
from printsrv.config import Settings, load_settings
from printsrv.errors import PrintSrvError

#: Where the demo looks for PostgreSQL (trust authentication, as in development).
POSTGRES_ADMIN: Final = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
#: Seconds between the node's exchanges in the demo (a real node: 60).
SYNC_INTERVAL: Final = 0.5
#: Longest the demo waits for any one step.
STEP_TIMEOUT: Final = 120.0


@dataclass
class _Instance:
    """One instance of the demo (the server or the node): its folder, settings file and
    database, and the environment its commands run in (nothing inherited from the caller's
    PRINTSRV_* variables)."""

    name: str
    folder: Path
    database_url: str
    stations: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.folder / "printsrv.toml"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTSRV_")}
        env.update(PRINTSRV_INSTANCE_DIR=str(self.folder), PRINTSRV_DATABASE_URL=self.database_url,
                   PRINTSRV_CONFIG=str(self.config))
        return env

    def settings(self) -> Settings:
        return load_settings(self.config, overrides={
            "instance_dir": self.folder, "database_url": self.database_url,
            "stations": self.stations})

    def run(self, *argv: str) -> str:
        """``run.py ARGV`` for this instance; its output (an error names the log)."""
        done = subprocess.run([sys.executable, str(PROJECT_ROOT / "run.py"), *argv],
                              env=self.env, capture_output=True, text=True,
                              timeout=STEP_TIMEOUT)
        with (self.folder / "commands.log").open("a") as log:
            log.write(f"$ run.py {' '.join(argv)}\n{done.stdout}{done.stderr}\n")
        if done.returncode != 0:
            raise PrintSrvError(f"{self.name}: run.py {argv[0]} failed: "
                                f"{(done.stderr or done.stdout).strip()[-500:]}")
        return done.stdout

    def spawn(self, *argv: str, log: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        """``run.py ARGV`` in the background, in a session of its own (stopped as a group:
        the node's web app has its sync process beside it), dying with this process."""
        with (self.folder / log).open("ab") as out:
            return subprocess.Popen(
                [sys.executable, str(PROJECT_ROOT / "run.py"), *argv], env=env or self.env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        with socket.socket() as sock:
            sock.settimeout(0.3)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            raise PrintSrvError(f"{what} exited ({proc.returncode})")
        if time.monotonic() > deadline:
            raise PrintSrvError(f"{what} did not answer on port {port}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started by :meth:`_Instance.spawn` and everything in its session."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    # what is left of its session (the node's sync beside its web app) goes too, and is
    # waited for: "every process stopped" must be true when the demo says it
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)


def _postgres_reachable() -> bool:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(POSTGRES_ADMIN, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # anything: fall back to SQLite
        return False


@contextlib.contextmanager
def _scratch_postgres() -> Iterator[str]:
    """A new PostgreSQL database for the demo's server, dropped afterwards."""
    from sqlalchemy import create_engine, text

    from printsrv.db import engine_for

    name = f"ktp_demo_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _wait_for(what: str, check: Callable[[], bool], stop: threading.Event,
              timeout: float = STEP_TIMEOUT) -> float:
    """Poll ``check`` until true; the seconds it took."""
    started = time.monotonic()
    while not check():
        if stop.is_set():
            raise DemoStopped
        if time.monotonic() - started > timeout:
            raise PrintSrvError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def _counts(settings: Settings) -> dict[str, int]:
    from sqlalchemy import func, select

    from printsrv.db import unit_of_work
    from printsrv.models import Record

    with unit_of_work(settings) as session:
        return {state.value: int(n) for state, n in session.execute(
            select(Record.state, func.count()).group_by(Record.state))}


def _banner(port: int) -> str | None:
    """The offline banner of the node's web app, as a visitor reads it."""
    import requests

    try:
        page = requests.get(f"http://127.0.0.1:{port}/login", timeout=5).text
    except requests.RequestException:
        return None
    found = re.search(r'<div class="offline-banner"[^>]*>(.*?)</div>', page, re.S)
    if not found:
        return None
    return " ".join(re.sub(r"<[^>]+>", " ", found[1]).split())


def run_kecamatan(args: argparse.Namespace) -> int:
    """The whole kecamatan demo; 0 when the node caught up and everything was cleaned up."""
    console = _Console()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        console.say("stopping: cleaning up what was started")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    scratch = Path(tempfile.mkdtemp(prefix="ktp-kecamatan-demo-"))
    console.say(f"scratch folder {scratch}")
    failed = False
    try:
        with contextlib.ExitStack() as stack:
            _kecamatan(args, console, stop, scratch, stack)
    except DemoStopped:
        console.say("stopped before the end")
        failed = True
        return 130
    except (PrintSrvError, OSError, subprocess.SubprocessError) as exc:
        console.say(f"error: {exc}")
        failed = True
        return 1
    finally:
        if args.keep or failed:
            console.say(f"kept the scratch folder {scratch} (logs: */*.log)")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
            console.say("cleaned up: every process stopped, scratch folder removed")
    return 0


def _kecamatan(args: argparse.Namespace, console: _Console, stop: threading.Event,
               scratch: Path, stack: contextlib.ExitStack) -> None:
    from printsrv.commands.demo import ensure_stock
    from printsrv.db import unit_of_work
    from printsrv.sync import node, server
    from printsrv.sync.linkproxy import LinkProxy

    def check() -> None:
        if stop.is_set():
            raise DemoStopped

    say = console.say
    # -- the two instances ---------------------------------------------------------------
    if not args.sqlite and _postgres_reachable():
        server_url = stack.enter_context(_scratch_postgres())
        say(f"kabupaten server database: PostgreSQL, scratch database "
            f"{server_url.rsplit('/', 1)[1]} on 127.0.0.1:5432 (dropped at the end)")
        stack.callback(say, "dropped the scratch PostgreSQL database")
    else:
        server_url = f"sqlite:///{scratch / 'server' / 'printsrv.db'}"
        say("kabupaten server database: SQLite (" + ("--sqlite" if args.sqlite else
            "no PostgreSQL answers on 127.0.0.1:5432") + ")")
    srv = _Instance("server", scratch / "server", server_url)
    kec = _Instance("node", scratch / "node", f"sqlite:///{scratch / 'node' / 'printsrv.db'}")
    kec.stations = {STATION: {
        "office": OFFICE, "profile": "virtual-ipp-card", "printer": "directory",
        "directory": str(scratch / "node" / "cards"), "encoder": "fake",
        "print_seconds": args.print_seconds, "poll_interval": 0.2}}
    for inst in (srv, kec):
        inst.folder.mkdir(parents=True)
    kec.config.write_text(
        f"node_sync_interval = {SYNC_INTERVAL}\n\n[stations.{STATION}]\n" + "".join(
            f"{k} = {v!r}\n".replace("'", '"') for k, v in kec.stations[STATION].items()))
    srv.config.write_text("")
    say("init: database schema and development keys of the server and the node (each its own "
        "SoftHSM token)")
    for inst in (srv, kec):
        inst.run("init", "--dev")
    check()

    # -- the server, its records, the link --------------------------------------------------
    batch = scratch / "batch"
    srv.run("demo-data", "--count", str(args.count), "--out", str(batch), "--office", OFFICE,
            "--seed", "16", "--batch-id", "KEC-DEMO-1")
    srv.run("import", str(batch))
    queued = _counts(srv.settings()).get("queued", 0)
    say(f"server: imported {args.count} signed records for kecamatan office {OFFICE} "
        f"({queued} queued)")
    port = _free_port()
    web = srv.spawn("serve", "--workers", "1", "--port", str(port), "--insecure-cookies",
                    log="serve.log")
    stack.callback(say, "stopped the kabupaten server")
    stack.callback(_stop, web)
    _wait_port(port, web, "the kabupaten server")
    say(f"server: run.py serve on http://127.0.0.1:{port}/")
    link = stack.enter_context(LinkProxy(("127.0.0.1", port)))
    stack.callback(say, "stopped the link")
    say(f"link: a TCP proxy 127.0.0.1:{link.port} -> the server (it will drop for a while)")
    check()

    # -- the node ------------------------------------------------------------------------
    out = kec.run("node", "enroll", "--server", link.url, "--office", OFFICE,
                  "--name", "Kecamatan demo")
    found_id, found_code = (re.search(r"node id: (\S+)", out), re.search(r"pairing code: (\S+)",
                                                                          out))
    if not found_id or not found_code:
        raise PrintSrvError(f"node enroll said: {out}")
    node_id = found_id[1]
    with unit_of_work(srv.settings()) as session:
        server.approve(session, node_id, found_code[1], actor="demo-admin")
    say(f"node: enrolled as {node_id}; pairing code {found_code[1]} approved at the server "
        "(automatically, for the demo)")
    node_port = _free_port()
    node_web = kec.spawn("serve", "--workers", "1", "--port", str(node_port),
                         "--insecure-cookies", log="serve.log")
    stack.callback(say, "stopped the node's web app and its sync")
    stack.callback(_stop, node_web)
    _wait_port(node_port, node_web, "the node's web app")
    settings = kec.settings()
    say(f"node: web app on http://127.0.0.1:{node_port}/, syncing every {SYNC_INTERVAL:g} s")
    took = _wait_for("the records to come down",
                     lambda: sum(_counts(settings).values()) >= queued, stop)
    down = sum(_counts(settings).values())
    say(f"link up: {down} records handed down to the node ({took:.1f} s), their media still "
        "encrypted, the data keys re-wrapped for its token")
    ensure_stock(settings, queued, console)
    check()

    # -- the link drops; the node prints -------------------------------------------------
    link.go_down()
    down_at = time.monotonic()
    say("link DOWN: the kabupaten server cannot be reached")
    _wait_for("the node to notice", lambda: node.status(settings).offline_since is not None,
              stop)
    banner = _banner(node_port)
    say(f"node web app says: {banner or '(no banner)'}")
    station = kec.spawn("station", STATION, "--until-empty", log="station.log")
    stack.callback(_stop, station)
    say(f"node: station {STATION} prints offline (directory printer, fake chip encoder)")
    _wait_for("the station to print the queue", lambda: station.poll() is not None, stop)
    if station.returncode != 0:
        raise PrintSrvError(f"the node's station exited {station.returncode}")
    printed = _counts(settings).get("issued", 0)
    waiting = node.status(settings).events_pending_up
    at_server = _counts(srv.settings())
    say(f"offline: {printed} cards printed at the node; {waiting} events pending up (card "
        f"fates, blank and ribbon movements); the server still sees "
        f"{at_server.get('queued', 0)} queued, {at_server.get('issued', 0)} issued")
    rest = args.offline_seconds - (time.monotonic() - down_at)
    if rest >= 1:
        say(f"link stays down {rest:.0f} s more")
        _wait_for("the outage", lambda: time.monotonic() - down_at >= args.offline_seconds,
                  stop, timeout=args.offline_seconds + 5)

    # -- the link returns; the node catches up -------------------------------------------
    link.come_up()
    up_at = time.monotonic()
    say(f"link UP again after {up_at - down_at:.0f} s")

    def caught_up() -> bool:
        st = node.status(settings)
        return (st.offline_since is None and st.events_pending_up == 0
                and _counts(srv.settings()).get("issued", 0) >= printed)

    _wait_for("the node to catch up", caught_up, stop)
    at_server = _counts(srv.settings())
    with unit_of_work(srv.settings()) as session:
        applied = next(n.up_applied for n in server.status(session) if n.node_id == node_id)
    say(f"caught up in {time.monotonic() - up_at:.1f} s: the server applied the node's events "
        f"(through node sequence {applied}); it sees {at_server.get('issued', 0)} issued, "
        f"{at_server.get('queued', 0)} queued; 0 events pending up")
    banner = _banner(node_port)
    say(f"node web app: {'offline banner gone' if banner is None else banner}")
    say(f"summary: records down {down}, cards printed offline {printed}, events pending "
        f"while offline {waiting}, caught up: yes")
