"""Batch builders: a valid demo batch and ways to alter and re-sign it."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from printsrv.config import Settings
from printsrv.intake.demo import write_demo_batch
from printsrv.intake.signature import sign_detached


def resign(batch: Path, keys_dir: Path, *, cert: str = "registry-signer") -> None:
    """Recompute every hash in the manifest and sign it again (a well-formed batch)."""
    manifest = json.loads((batch / "manifest.json").read_text())
    files = {}
    for path in sorted(batch.rglob("*")):
        rel = path.relative_to(batch).as_posix()
        if (
            path.is_file()
            and not path.is_symlink()
            and rel not in {"manifest.json", "manifest.sig"}
        ):
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest["files"] = files
    raw = json.dumps(manifest, indent=1).encode()
    (batch / "manifest.json").write_bytes(raw)
    (batch / "manifest.sig").write_bytes(
        sign_detached(
            raw,
            (keys_dir / f"{cert}.pem").read_bytes(),
            (keys_dir / f"{cert}-key.pem").read_bytes(),
        )
    )


def edit_records(batch: Path, edit: Callable[[list[dict[str, Any]]], None]) -> None:
    lines = [json.loads(x) for x in (batch / "records.jsonl").read_text().splitlines() if x]
    edit(lines)
    (batch / "records.jsonl").write_text(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
    )
    manifest = json.loads((batch / "manifest.json").read_text())
    manifest["record_count"] = len(lines)
    (batch / "manifest.json").write_text(json.dumps(manifest))


def zip_dir(batch: Path, out: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(batch.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(batch).as_posix())
        for info, data in extra:
            zf.writestr(info, data)
    return out


@pytest.fixture(scope="session")
def pristine_batch(tmp_path_factory: pytest.TempPathFactory, instance_dir: Path) -> Path:
    from printsrv.config import load_settings

    out = tmp_path_factory.mktemp("pristine") / "batch"
    write_demo_batch(
        load_settings(overrides={"instance_dir": instance_dir}),
        6,
        out,
        seed=7,
        batch_id="TEST-0001",
    )
    return out


@pytest.fixture
def batch(pristine_batch: Path, tmp_path: Path) -> Path:
    """A fresh, valid, writable copy of the demo batch."""
    return Path(shutil.copytree(pristine_batch, tmp_path / "batch"))


@pytest.fixture
def keys_dir(settings: Settings) -> Path:
    return settings.keys_dir
