"""``audit export``: what an auditor needs to verify a copy of the audit log offline.

The folder holds ``events.jsonl`` (every event, exactly the fields its hash covers, and the
hash), ``checkpoints.jsonl`` (every signed checkpoint: the file outside the database, plus any
the database holds that the file lacks), ``audit-signer.pem`` (the public key of the token's
checkpoint key) and a ``README.txt``. ``scripts/verify_audit_export.py`` checks it without
this project: Python 3 and the ``cryptography`` package.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv import checkpoints
from printsrv.audit import _content
from printsrv.config import Settings
from printsrv.errors import PrintSrvError
from printsrv.models import AuditCheckpoint, AuditEvent

README = """ktp-printsrv audit export

events.jsonl       every audit event: the fields its SHA-256 covers, and the hash
checkpoints.jsonl  signed checkpoints: {"body": <signed JSON>, "signature": <base64 DER>}
audit-signer.pem   the public key that signs the checkpoints (keep your own copy)

Verify offline:  python3 verify_audit_export.py THIS_FOLDER
(the script is scripts/verify_audit_export.py in the ktp-printsrv sources; it needs only
Python 3 and the 'cryptography' package)
"""


def _line(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def export_audit(session: Session, settings: Settings, out: Path) -> dict[str, int]:
    """Write the export folder ``out`` (it must not exist); return the counts written."""
    if out.exists():
        raise PrintSrvError(f"{out} exists: give a new folder")
    out.mkdir(parents=True, mode=0o700)
    events = 0
    with (out / "events.jsonl").open("w", encoding="utf-8") as fh:
        last = 0
        while True:
            rows = session.scalars(select(AuditEvent).where(AuditEvent.seq > last)
                                   .order_by(AuditEvent.seq).limit(5000)).all()
            if not rows:
                break
            for ev in rows:
                content = _content(ev.chain, ev.chain_seq, ev.at, ev.tag, ev.actor,
                                   ev.office_code, ev.subject, ev.details, ev.prev_hash)
                fh.write(_line({**content, "hash": ev.hash}))
            events += len(rows)
            last = rows[-1].seq
            session.expunge_all()
    seen: set[int] = set()
    lines: list[str] = []
    anchor = checkpoints.anchor_file(settings)
    if anchor.exists():
        for raw in anchor.read_text(encoding="utf-8").splitlines():
            try:
                number = json.loads(json.loads(raw)["body"])["checkpoint"]
            except (ValueError, KeyError, TypeError):
                lines.append(raw + "\n")  # kept as found: the verifier reports it
                continue
            seen.add(number)
            lines.append(raw + "\n")
    for row in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)):
        if row.id not in seen:
            lines.append(_line({"body": row.body, "signature": row.signature}))
    (out / "checkpoints.jsonl").write_text("".join(lines), encoding="utf-8")
    shutil.copyfile(checkpoints.public_key_file(settings), out / "audit-signer.pem")
    (out / "README.txt").write_text(README, encoding="utf-8")
    return {"events": events, "checkpoints": len(lines)}
