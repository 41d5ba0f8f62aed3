"""Write a valid signed demo batch of synthetic residents (``run.py demo-data``)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from printsrv.config import Settings
from printsrv.errors import ConfigError
from printsrv.intake.pipeline import FORMAT, MANIFEST, RECORDS, SIGNATURE
from printsrv.intake.signature import sign_detached
from printsrv.synthetic import synthetic_residents


def write_demo_batch(
    settings: Settings,
    count: int,
    out: Path,
    *,
    seed: int = 1,
    batch_id: str | None = None,
    office_codes: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    held: int = 0,
) -> Path:
    """Write ``count`` synthetic records as a batch directory (or ``.zip`` if ``out`` ends so),
    signed with the demo registry key from ``init``."""
    keys = settings.keys_dir
    cert, key = keys / "registry-signer.pem", keys / "registry-signer-key.pem"
    if not cert.exists() or not key.exists():
        raise ConfigError(
            f"demo registry signing key not found in {keys}: run 'python run.py init'"
        )
    digests: dict[str, str] = {}
    zf = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) if out.suffix == ".zip" else None
    if zf is not None:
        out.parent.mkdir(parents=True, exist_ok=True)

    def put(name: str, data: bytes) -> None:
        """Write one file as soon as it is made (a batch of any size in bounded memory)."""
        if zf is not None:
            zf.writestr(name, data)
        else:
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    try:
        records = hashlib.sha256()
        lines: list[bytes] = []
        for resident in synthetic_residents(
            count, seed=seed, today=date.today(), office_codes=office_codes, held=held
        ):
            for name, data in resident.files().items():
                digests[name] = hashlib.sha256(data).hexdigest()
                put(name, data)
            line = json.dumps(resident.record, ensure_ascii=False).encode() + b"\n"
            records.update(line)
            lines.append(line)
            if progress:
                progress(1)
        put(RECORDS, b"".join(lines))
        digests[RECORDS] = records.hexdigest()
        del lines
        stamp = datetime.now(UTC)
        manifest = {
            "format": FORMAT,
            "batch_id": batch_id or f"DEMO-{stamp:%Y%m%d-%H%M%S}-{seed}",
            "issuer": "DISDUKCAPIL DEMO",
            "created_at": stamp.isoformat(timespec="seconds"),
            "record_count": count,
            "files": dict(sorted(digests.items())),
        }
        raw = json.dumps(manifest, indent=1).encode()
        put(MANIFEST, raw)
        put(SIGNATURE, sign_detached(raw, cert.read_bytes(), key.read_bytes()))
    finally:
        if zf is not None:
            zf.close()
    return out
