"""Two local PostgreSQL clusters, a primary and its streaming replica (``pg_basebackup``),
for the failover test. Synchronous replication: a commit returns only once the replica has
it, so promoting the replica loses no committed card fate (the documented production set-up:
Patroni's ``synchronous_mode``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> str | None:
    """Why the pair cannot run here, or ``None``."""
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL server binaries in {PG_BIN}"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser missing"
    return None


class PostgresPair:
    """``start()`` → primary on :attr:`primary_port`, replica on :attr:`replica_port`."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="printsrv-pgpair-"))
        self.root.chmod(0o755)
        self.primary_port, self.replica_port = free_port(), free_port()
        self.primary, self.replica = self.root / "primary", self.root / "replica"

    def _pg(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(PG_BIN / argv[0]), *argv[1:]]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {result.stdout}{result.stderr}")
        return result

    def _own(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    def start(self) -> None:
        self._own()
        self._pg("initdb", "-D", str(self.primary), "-U", "postgres", "--auth=trust",
                 "--no-sync")
        with open(self.primary / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.primary_port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nwal_level = replica\n"
                "max_wal_senders = 4\nsynchronous_standby_names = '*'\n"
                "fsync = off\nfull_page_writes = on\n"
            )
        with open(self.primary / "pg_hba.conf", "a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        self._pg("pg_ctl", "-D", str(self.primary), "-l", str(self.root / "primary.log"),
                 "-w", "start")
        self._pg("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port),
                 "-U", "postgres", "-D", str(self.replica), "-R", "-X", "stream")
        with open(self.replica / "postgresql.conf", "a") as conf:
            # Promoted, it stands alone: it must not wait for a standby of its own (Patroni
            # turns synchronous mode off the same way when no standby is left).
            conf.write(f"port = {self.replica_port}\nsynchronous_standby_names = ''\n")
        self._pg("pg_ctl", "-D", str(self.replica), "-l", str(self.root / "replica.log"),
                 "-w", "start")
        self.wait_streaming()

    def wait_streaming(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.psql(self.primary_port,
                            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
            if out.strip() == "1":
                return
            time.sleep(0.2)
        raise RuntimeError("the replica never started streaming")

    def psql(self, port: int, sql: str, db: str = "postgres") -> str:
        return self._pg("psql", "-h", "127.0.0.1",
                        "-p", str(port), "-U", "postgres", "-d", db, "-Atc", sql).stdout

    def url(self, db: str) -> str:
        """A libpq multi-host URL: both hosts, connect only to the one that accepts writes."""
        return (f"postgresql+psycopg://postgres@/{db}?host=127.0.0.1:{self.primary_port}"
                f"&host=127.0.0.1:{self.replica_port}&target_session_attrs=read-write"
                "&connect_timeout=2")

    def crash_primary(self) -> None:
        """The primary dies: ``pg_ctl stop -m immediate`` (no shutdown checkpoint)."""
        self._pg("pg_ctl", "-D", str(self.primary), "-m", "immediate", "stop")

    def promote_replica(self) -> None:
        self._pg("pg_ctl", "-D", str(self.replica), "-w", "promote")

    def stop(self) -> None:
        for data in (self.primary, self.replica):
            if (data / "postmaster.pid").exists():
                self._pg("pg_ctl", "-D", str(data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
