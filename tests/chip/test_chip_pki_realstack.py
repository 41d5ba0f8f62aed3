"""The document-signer life cycle through the app's token and the real PC/SC stack:
``keys crl``, ``keys rotate-ds``, ``chip verify`` at signing time (in 2045) and with the CRL,
and openssl on the certificates and the CRL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

pytestmark = pytest.mark.realstack
REPO = Path(__file__).resolve().parents[2]


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def test_rotate_revoke_and_verify_in_2045(pcsc_stack: Any, tmp_path: Path) -> None:
    env = os.environ | {"PRINTSRV_INSTANCE_DIR": str(tmp_path / "instance")}
    env.pop("PRINTSRV_CONFIG", None)
    keys_dir = tmp_path / "instance" / "keys"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "run.py", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, check=False, timeout=120)

    card_of: dict[str, str] = {}  # reader → the record on its card (BAC from its MRZ)

    def verify(reader: str, *extra: str) -> dict[str, Any]:
        proc = run("chip", "verify", "--reader", reader, "--json",
                   "--request-id", card_of[reader], *extra)
        report: dict[str, Any] = json.loads(proc.stdout)
        assert (proc.returncode == 0) == report["ok"], proc.stderr
        return report

    assert run("init", "--dev").returncode == 0
    assert (keys_dir / "csca.crl").exists()  # init issues the first, empty CRL
    assert run("demo-data", "--count", "8", "--out", str(tmp_path / "batch")).returncode == 0
    assert run("import", str(tmp_path / "batch")).returncode == 0
    records = [json.loads(line)
               for line in (tmp_path / "batch" / "records.jsonl").read_text().splitlines()]
    lifetime = [r["request_id"] for r in records if r.get("berlaku_hingga") == "SEUMUR HIDUP"]
    assert lifetime, "the synthetic batch has no lifetime card"
    ids = [lifetime[0], next(r["request_id"] for r in records
                             if r["request_id"] != lifetime[0])]

    # openssl: the 9303-12 profile and a clean CRL check
    ds_pem, csca_pem, crl_pem = (str(keys_dir / n) for n in
                                 ("document-signer.pem", "csca.pem", "csca-crl.pem"))
    text = _openssl("x509", "-in", ds_pem, "-noout", "-text").stdout
    for needle in ("X509v3 Key Usage: critical", "Digital Signature",
                   "X509v3 Authority Key Identifier", "X509v3 Subject Key Identifier",
                   "X509v3 Private Key Usage Period", "2.23.136.1.1.6.2",
                   "X509v3 CRL Distribution Points"):
        assert needle in text, needle
    assert "X509v3 CRL Distribution Points" in _openssl("x509", "-in", csca_pem, "-noout",
                                                        "-text").stdout
    ok = _openssl("verify", "-crl_check", "-CAfile", csca_pem, "-CRLfile", crl_pem, ds_pem)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    pcsc_stack.restart_simulator(0)
    pcsc_stack.restart_simulator(1)
    first, second = pcsc_stack.reader_name(0), pcsc_stack.reader_name(1)
    proc = run("chip", "personalize", "--reader", first, "--request-id", ids[0], "--json")
    card_of[first] = ids[0]
    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = verify(first, "--dump", str(tmp_path / "dump"))
    assert report["ok"], report["problems"]
    assert report["mrz"][38:45] == "9912315"  # SEUMUR HIDUP
    # the synthetic photo carries its request id in a JPEG comment: not on the chip
    assert ids[0].encode() not in (tmp_path / "dump" / "DG2.der").read_bytes()
    assert report["passive_authentication"]["revocation_checked"]
    assert report["passive_authentication"]["signing_time"]

    # 2045: the DS and the CSCA certificates have both expired; the card still verifies
    old_ds = x509.load_pem_x509_certificate((keys_dir / "document-signer.pem").read_bytes())
    csca = x509.load_pem_x509_certificate((keys_dir / "csca.pem").read_bytes())
    assert old_ds.not_valid_after_utc.year < 2045 and csca.not_valid_after_utc.year < 2045
    report = verify(first, "--at", "2045-06-01T12:00:00")
    assert report["ok"], report["problems"]
    assert any("CRL out of date" in n for n in report["notes"])

    # rotation: a new DS signs the next card; cards of the old one still verify
    proc = run("keys", "rotate-ds", "--usage-days", "90")
    assert proc.returncode == 0, proc.stderr
    new_ds = x509.load_pem_x509_certificate((keys_dir / "document-signer.pem").read_bytes())
    assert new_ds.serial_number != old_ds.serial_number
    assert f"{old_ds.serial_number:x} retired" in proc.stdout
    proc = run("chip", "personalize", "--reader", second, "--request-id", ids[1], "--json")
    card_of[second] = ids[1]
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert verify(second)["ok"] and verify(first)["ok"]

    # revocation of the old DS: its card fails, the new DS's card does not
    proc = run("keys", "crl", "--revoke", f"{old_ds.serial_number:x}")
    assert proc.returncode == 0, proc.stderr
    assert "CRL 2: 1 revoked" in proc.stdout
    report = verify(first)
    assert not report["ok"] and not report["passive_authentication"]["chain_valid"]
    assert any("revoked" in p for p in report["problems"]), report["problems"]
    assert not verify(first, "--at", "2045-06-01")["ok"]
    assert verify(second)["ok"]
    old_pem = str(keys_dir / "document-signers" / f"{old_ds.serial_number:x}.pem")
    bad = _openssl("verify", "-crl_check", "-CAfile", csca_pem, "-CRLfile", crl_pem, old_pem)
    assert bad.returncode != 0 and "certificate revoked" in bad.stdout + bad.stderr
    assert run("keys", "crl", "--revoke", "abcdef").returncode == 1  # not one of ours
