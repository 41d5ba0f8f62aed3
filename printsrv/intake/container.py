"""Reading a batch from a directory or a ``.zip``, refusing anything that escapes the batch.

Refused: ``..`` and absolute paths, links, device files, duplicate names, oversize members and
zip bombs (declared sizes are checked first; actual bytes are counted while reading, so a lying
header cannot get past the limit).
"""

from __future__ import annotations

import os
import stat
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from printsrv.errors import IntakeError

MAX_COMPRESSION_RATIO = 200
#: The most members a batch zip may list: every record has at most four media files.
MAX_MEMBERS = 600_000
#: Compression methods a batch may use (stored, deflate).
METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}


#: A value echoed in a problem is cut to this many characters (a 3 MB field stays out of
#: messages, reports and audit events).
ECHO_LIMIT = 200


def cut(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying so."""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


@dataclass(frozen=True)
class BatchProblem:
    """A problem with the batch as a whole (container, signature, manifest, a file)."""

    where: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "where", cut(self.where))
        object.__setattr__(self, "reason", cut(self.reason))

    def __str__(self) -> str:
        return f"batch: {self.where}: {self.reason}"

    def as_dict(self) -> dict[str, object]:
        return {"scope": "batch", "where": self.where, "reason": self.reason}


def unsafe_path_reason(name: str) -> str | None:
    """The reason ``name`` is not a safe relative path inside the batch, else ``None``."""
    if not name or "\\" in name or "\x00" in name:
        return "invalid file name"
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/"):
        return "absolute path"
    if any(part == ".." for part in path.parts):
        return "path escapes the batch ('..')"
    if len(name) >= 2 and name[1] == ":":
        return "absolute path"
    return None


def _raise(error: OSError) -> None:
    raise error


class BatchContainer:
    """The files of a batch by relative POSIX path; :meth:`read` enforces the size limits."""

    def __init__(self, source: Path, *, max_total_bytes: int, max_file_bytes: int,
                 on_names: Callable[[list[str]], None] | None = None) -> None:
        """``on_names``: a directory's file names go there in chunks as they are found,
        instead of into :attr:`names` (a list of 400,000 names is tens of megabytes)."""
        self.source = source
        self._folder = os.fspath(source)
        self._on_names = on_names
        self.max_total_bytes = max_total_bytes
        self.max_file_bytes = max_file_bytes
        self._zip: zipfile.ZipFile | None = None
        self._zip_infos: dict[str, zipfile.ZipInfo] = {}
        self.names: list[str] = []
        self._read_total = 0
        self._lock = threading.Lock()
        if not source.exists():
            raise IntakeError(f"{source}: no such batch", [BatchProblem(str(source), "not found")])
        if source.is_dir():
            self._scan_directory()
        elif zipfile.is_zipfile(source):
            self._scan_zip()
        else:
            raise IntakeError(
                f"{source}: not a batch directory or zip file",
                [BatchProblem(str(source), "not a directory or zip file")],
            )

    def __enter__(self) -> BatchContainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def _fail(self, problems: list[BatchProblem]) -> None:
        if problems:
            self.close()
            raise IntakeError(f"{self.source}: unsafe batch container", problems)

    def _scan_directory(self) -> None:
        """Walk the folder without following any link; every link is refused, so every
        regular file found lies inside the batch."""
        problems: list[BatchProblem] = []
        found: list[str] = []
        base = str(self.source)

        def flush() -> None:
            if self._on_names is not None:
                self._on_names(found[:])
                found.clear()

        for folder, dirs, files in os.walk(base, onerror=_raise):
            rel_folder = os.path.relpath(folder, base)
            prefix = "" if rel_folder == "." else PurePosixPath(Path(rel_folder)).as_posix() + "/"
            for name in sorted(dirs + files):
                rel = prefix + name
                mode = os.lstat(os.path.join(folder, name)).st_mode
                if stat.S_ISLNK(mode):
                    problems.append(BatchProblem(rel, "links are not allowed in a batch"))
                elif stat.S_ISDIR(mode):
                    continue
                elif not stat.S_ISREG(mode):
                    problems.append(BatchProblem(rel, "not a regular file"))
                else:
                    found.append(rel)
                    if len(found) >= 10_000:
                        flush()
        if self._on_names is None:
            self.names = sorted(found)
        else:
            flush()
        self._fail(sorted(problems, key=lambda p: p.where))

    def _declared_members(self) -> int:
        """The member count of the zip's end record, read before ``zipfile`` builds an object
        per member (a million members would take hundreds of megabytes first)."""
        size = self.source.stat().st_size
        with open(self.source, "rb") as fh:
            fh.seek(max(0, size - 65_557))
            tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) < at + 22:
            return 0  # zipfile will say what is wrong
        count = struct.unpack_from("<H", tail, at + 10)[0]
        locator = tail.rfind(b"PK\x06\x07", 0, at)
        if count == 0xFFFF and locator >= 0:  # ZIP64: the count is in the ZIP64 end record
            with open(self.source, "rb") as fh:
                fh.seek(struct.unpack_from("<Q", tail, locator + 8)[0])
                record = fh.read(56)
            if record[:4] == b"PK\x06\x06":
                count = struct.unpack_from("<Q", record, 32)[0]
        return int(count)

    def _scan_zip(self) -> None:
        problems: list[BatchProblem] = []
        members = self._declared_members()
        if members > MAX_MEMBERS:
            raise IntakeError(
                f"{self.source}: {members} zip members",
                [BatchProblem(str(self.source), f"{members} members (at most {MAX_MEMBERS})")],
            )
        try:
            self._zip = zipfile.ZipFile(self.source)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise IntakeError(
                f"{self.source}: broken zip", [BatchProblem(str(self.source), f"broken zip: {exc}")]
            ) from exc
        declared_total = 0
        for info in infos:
            name = info.filename
            unix_mode = info.external_attr >> 16
            if info.is_dir():
                if reason := unsafe_path_reason(name.rstrip("/")):
                    problems.append(BatchProblem(name, reason))
                continue
            if reason := unsafe_path_reason(name):
                problems.append(BatchProblem(name, reason))
                continue
            if stat.S_ISLNK(unix_mode):
                problems.append(BatchProblem(name, "links are not allowed in a batch"))
                continue
            if stat.S_IFMT(unix_mode) and not stat.S_ISREG(unix_mode):
                problems.append(BatchProblem(name, "not a regular file"))
                continue
            if name in self._zip_infos:
                problems.append(BatchProblem(name, "duplicate entry in zip"))
                continue
            if info.flag_bits & 0x1:
                problems.append(BatchProblem(name, "encrypted zip member (not allowed)"))
                continue
            if info.compress_type not in METHODS:
                problems.append(BatchProblem(
                    name, f"compression method {info.compress_type} not supported "
                    "(stored or deflate only)"))
                continue
            if info.file_size > self.max_file_bytes:
                problems.append(
                    BatchProblem(name, f"{info.file_size} bytes exceeds {self.max_file_bytes}")
                )
                continue
            if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
                problems.append(BatchProblem(name, "compression ratio too high (zip bomb)"))
                continue
            declared_total += info.file_size
            self._zip_infos[name] = info
            self.names.append(name)
        if declared_total > self.max_total_bytes:
            problems.append(
                BatchProblem(str(self.source), "uncompressed size exceeds the limit (zip bomb)")
            )
        self._fail(problems)

    def blocks(self, name: str, max_bytes: int | None = None,
               block: int = 1 << 20) -> Iterator[bytes]:
        """The bytes of member ``name`` in blocks (a file of any size in bounded memory), with
        the limits of :meth:`read`: :class:`IntakeError` once past them."""
        max_bytes = min(max_bytes or self.max_file_bytes, self.max_file_bytes)
        seen = 0
        try:
            if self._zip is not None:
                info = self._zip_infos[name]
                fh: Any = self._zip.open(info)
            else:
                info = None
                fh = open(self.source / name, "rb")  # noqa: SIM115
            with fh:
                while data := fh.read(block):
                    seen += len(data)
                    if seen > max_bytes:
                        raise IntakeError(f"{name}: larger than {max_bytes} bytes",
                                          [BatchProblem(name, f"larger than {max_bytes} bytes")])
                    with self._lock:
                        self._read_total += len(data)
                        total = self._read_total
                    if total > self.max_total_bytes:
                        raise IntakeError("batch larger than the limit", [BatchProblem(
                            name, "batch exceeds the uncompressed size limit (zip bomb)")])
                    yield data
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError,
                NotImplementedError) as exc:
            raise IntakeError(f"{name}: broken zip member",
                              [BatchProblem(name, f"broken zip member: {exc}")]) from exc
        if info is not None and seen != info.file_size:
            raise IntakeError(f"{name}: size differs from its header", [BatchProblem(
                name, f"{seen} bytes, its zip header says {info.file_size}")])

    def read(self, name: str, max_bytes: int | None = None) -> bytes:
        """The bytes of member ``name``; raises :class:`IntakeError` past the size limits."""
        max_bytes = min(max_bytes or self.max_file_bytes, self.max_file_bytes)
        limit = max_bytes + 1
        if self._zip is not None:
            info = self._zip_infos[name]
            try:
                with self._zip.open(info) as fh:
                    data = fh.read(limit)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
                    NotImplementedError, ValueError) as exc:
                raise IntakeError(f"{name}: broken zip member",
                                  [BatchProblem(name, f"broken zip member: {exc}")]) from exc
            if len(data) <= max_bytes and len(data) != info.file_size:
                raise IntakeError(f"{name}: size differs from its header", [BatchProblem(
                    name, f"{len(data)} bytes, its zip header says {info.file_size}")])
        else:
            # os.path.join: a Path per medium was a tenth of reading it
            with open(os.path.join(self._folder, name), "rb", buffering=0) as fh:
                data = fh.read(limit)
        if len(data) > max_bytes:
            raise IntakeError(
                f"{name}: larger than {max_bytes} bytes",
                [BatchProblem(name, f"larger than {max_bytes} bytes")],
            )
        with self._lock:  # media are read in threads
            self._read_total += len(data)
            total = self._read_total
        if total > self.max_total_bytes:
            raise IntakeError(
                "batch larger than the limit",
                [BatchProblem(name, "batch exceeds the uncompressed size limit (zip bomb)")],
            )
        return data
