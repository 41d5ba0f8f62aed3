"""The instance folder: the database, its WAL, the token, keys, rejection reports and card
files. It holds personal data and key material, so it is private to the service user: the
folder 0700, every file 0600 (the CLI runs under umask 077, the systemd units under
``UMask=0077``; ``init`` tightens whatever an older version or a hand left looser)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from printsrv.config import Settings

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def secure_instance(settings: Settings) -> list[str]:
    """Make the instance folder and everything in it private; return what was changed."""
    root = settings.instance_dir
    changed: list[str] = []
    if not root.is_dir():
        return changed
    paths = [root, *_files_of(root)]
    sqlite = settings.sqlalchemy_url.split("///", 1)[-1] if not settings.is_postgres else ""
    if sqlite:
        db = Path(sqlite)
        paths += [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
    for path in dict.fromkeys(paths):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        wanted = PRIVATE_DIR if stat.S_ISDIR(mode) else PRIVATE_FILE
        if stat.S_IMODE(mode) & 0o077:
            path.chmod(stat.S_IMODE(mode) & ~0o077 & 0o777 | (wanted & 0o700))
            changed.append(str(path.relative_to(root)) if path.is_relative_to(root)
                           else str(path))
    return changed


def _files_of(root: Path) -> list[Path]:
    out: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        out += [here / d for d in dirs] + [here / f for f in files]
    return out
