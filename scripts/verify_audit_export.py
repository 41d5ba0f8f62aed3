#!/usr/bin/env python3
"""Verify a ktp-printsrv audit export offline, without the project.

    python3 verify_audit_export.py EXPORT_FOLDER

Needs Python 3.9+ and the ``cryptography`` package. Checks, and says where it fails:

1. every chain is numbered 1, 2, 3, … with no gap, each event links to the hash of the one
   before it (the first to 64 zeros), and each event's SHA-256 is that of its content: the
   canonical JSON (keys sorted, no spaces, UTF-8) of chain, seq, at, tag, actor, office_code,
   subject, details and prev_hash;
2. every checkpoint's ECDSA P-256 / SHA-256 signature verifies with audit-signer.pem;
3. every chain a checkpoint names is there, reaches at least the checkpoint's sequence, and
   has exactly the checkpoint's hash at that sequence.

Exit status 0 when all holds, 1 otherwise.
"""

import base64
import hashlib
import json
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

GENESIS = "0" * 64
HASHED = ("actor", "at", "chain", "details", "office_code", "prev_hash", "seq", "subject", "tag")


def canonical(data):
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def main(folder):
    problems = []
    chains = {}
    with open(folder / "events.jsonl", encoding="utf-8") as fh:
        for line in fh:
            event = json.loads(line)
            chains.setdefault(event["chain"], []).append(event)
    for chain, events in sorted(chains.items()):
        events.sort(key=lambda e: e["seq"])
        previous = GENESIS
        for expected, event in enumerate(events, 1):
            where = f"chain {chain} event {event['seq']}"
            if event["seq"] != expected:
                problems.append(f"{where}: expected sequence {expected} (events missing)")
            if event["prev_hash"] != previous:
                problems.append(f"{where}: does not link to the event before it")
            digest = hashlib.sha256(canonical({k: event[k] for k in HASHED})).hexdigest()
            if digest != event["hash"]:
                problems.append(f"{where}: content does not match its hash (edited)")
            previous = event["hash"]
    key = serialization.load_pem_public_key((folder / "audit-signer.pem").read_bytes())
    checkpoints = 0
    with open(folder / "checkpoints.jsonl", encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            try:
                entry = json.loads(line)
                key.verify(base64.b64decode(entry["signature"]), entry["body"].encode(),
                           ec.ECDSA(hashes.SHA256()))
            except (ValueError, KeyError, InvalidSignature):
                problems.append(f"checkpoints.jsonl line {number}: signature does not verify")
                continue
            checkpoints += 1
            body = json.loads(entry["body"])
            for chain, head in sorted(body["heads"].items()):
                events = {e["seq"]: e for e in chains.get(chain, [])}
                where = f"checkpoint {body['checkpoint']}, chain {chain}"
                if not events:
                    problems.append(f"{where}: chain missing (it had {head['seq']} events)")
                elif head["seq"] not in events:
                    problems.append(f"{where}: shorter than signed ({max(events)} events, "
                                    f"signed {head['seq']})")
                elif events[head["seq"]]["hash"] != head["hash"]:
                    problems.append(f"{where}: event {head['seq']} differs from the signed hash")
    for problem in problems:
        print(problem)
    total = sum(len(e) for e in chains.values())
    print(f"{'OK' if not problems else 'BROKEN'}: {total} events in {len(chains)} chains, "
          f"{checkpoints} signed checkpoints")
    return 0 if not problems else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1])))
