"""ICAO 9303-12 certificate profiles, CRLs and the chain model (verification at signing time),
also checked with openssl."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chip import pki
from chip.sod import build_sod, parse_sod, passive_authentication, signing_time
from chip.softkeys import DEMO_CRL_URL, DemoPki, make_demo_pki

NOW = dt.datetime.now(dt.UTC)
GROUPS = {1: b"\x61\x03\x5f\x1f\x00", 2: b"\x75\x01\x00"}


def _ds(p: DemoPki) -> x509.Certificate:
    return x509.load_der_x509_certificate(p.signer.certificate_der)


def test_document_signer_profile(pki_: DemoPki) -> None:
    ds, csca = _ds(pki_), pki_.csca_certificate
    ext = ds.extensions
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.key_cert_sign and not usage.value.content_commitment
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski_csca = csca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski_csca.digest
    assert ext.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    start, end = pki.private_key_usage_period(ds)  # type: ignore[misc]
    assert start is not None and end is not None and end - start == dt.timedelta(days=90)
    assert ds.not_valid_after_utc == end + dt.timedelta(days=pki.LONGEST_DOCUMENT_DAYS)
    assert pki.document_types(ds) == ["ID"]
    assert not ext.get_extension_for_oid(pki.DOCUMENT_TYPE_LIST_OID).critical
    points = csca.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name[0].value == DEMO_CRL_URL  # type: ignore[index]
    basic = csca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    csca_usage = csca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert csca_usage.key_cert_sign and csca_usage.crl_sign


@pytest.fixture
def pki_() -> DemoPki:
    return make_demo_pki()


def test_lifetime_document_verifies_after_every_certificate_expired(pki_: DemoPki) -> None:
    sod = parse_sod(build_sod(GROUPS, pki_.signer))
    assert signing_time(sod) is not None
    in_2045 = dt.datetime(2045, 6, 1, tzinfo=dt.UTC)
    assert _ds(pki_).not_valid_after_utc < in_2045
    assert pki_.csca_certificate.not_valid_after_utc < in_2045
    pa = passive_authentication(sod, GROUPS, pki_.csca_certificate_der, at=in_2045)
    assert pa.ok and pa.chain is not None and pa.chain.problems == []


def test_signed_outside_the_private_key_usage_period(pki_: DemoPki) -> None:
    late = NOW + dt.timedelta(days=120)  # after the 90-day usage period, before expiry
    sod = parse_sod(build_sod(GROUPS, pki_.signer, signing_time=late))
    pa = passive_authentication(sod, GROUPS, pki_.csca_certificate_der, at=late)
    assert not pa.chain_valid
    assert pa.chain is not None and "private key usage period" in pa.chain.problems[0]


def test_signing_time_in_the_future_fails(pki_: DemoPki) -> None:
    sod = parse_sod(build_sod(GROUPS, pki_.signer, signing_time=NOW + dt.timedelta(days=10)))
    assert not passive_authentication(sod, GROUPS, pki_.csca_certificate_der).chain_valid


def _crl(p: DemoPki, revoked: list[int], number: int = 1) -> bytes:
    crl = pki.issue_crl(p.csca_certificate, p.csca_key,
                        [pki.Revocation(s, NOW - dt.timedelta(hours=1)) for s in revoked],
                        number, NOW - dt.timedelta(minutes=5))
    return crl.public_bytes(serialization.Encoding.DER)


def test_crl_revokes_a_document_signer(pki_: DemoPki) -> None:
    sod = parse_sod(build_sod(GROUPS, pki_.signer))
    csca = pki_.csca_certificate_der
    clean = passive_authentication(sod, GROUPS, csca, crl_der=_crl(pki_, [12345]))
    assert clean.ok and clean.chain is not None and clean.chain.revocation_checked
    crl = _crl(pki_, [_ds(pki_).serial_number])
    revoked = passive_authentication(sod, GROUPS, csca, crl_der=crl)
    assert not revoked.chain_valid and revoked.chain is not None and revoked.chain.revoked
    # ... even long after, in the chain model: a revoked DS invalidates what it signed
    in_2045 = dt.datetime(2045, 6, 1, tzinfo=dt.UTC)
    assert not passive_authentication(sod, GROUPS, csca, at=in_2045,
                                      crl_der=_crl(pki_, [_ds(pki_).serial_number])).chain_valid
    forged = passive_authentication(sod, GROUPS, csca, crl_der=_crl(make_demo_pki(), []))
    assert not forged.chain_valid and forged.chain is not None
    assert forged.chain.problems == ["CRL not signed by this CSCA"]


def _pem(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_openssl_reads_the_profile_and_honours_the_crl(pki_: DemoPki, tmp_path: Path) -> None:
    pem = serialization.Encoding.PEM
    ds_pem = _pem(tmp_path / "ds.pem", _ds(pki_).public_bytes(pem))
    csca_pem = _pem(tmp_path / "csca.pem", pki_.csca_certificate.public_bytes(pem))
    text = subprocess.run(["openssl", "x509", "-in", ds_pem, "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    for needle in ("X509v3 Key Usage: critical", "Digital Signature",
                   "X509v3 Authority Key Identifier", "X509v3 Subject Key Identifier",
                   "X509v3 Private Key Usage Period", "2.23.136.1.1.6.2",
                   "X509v3 CRL Distribution Points", DEMO_CRL_URL):
        assert needle in text, needle
    text = subprocess.run(["openssl", "x509", "-in", csca_pem, "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "CA:TRUE" in text and "Certificate Sign, CRL Sign" in text and DEMO_CRL_URL in text

    def verify(revoked: list[int]) -> subprocess.CompletedProcess[str]:
        crl = x509.load_der_x509_crl(_crl(pki_, revoked))
        crl_pem = _pem(tmp_path / "crl.pem", crl.public_bytes(pem))
        return subprocess.run(["openssl", "verify", "-crl_check", "-CAfile", csca_pem,
                               "-CRLfile", crl_pem, ds_pem], capture_output=True, text=True,
                              check=False)

    ok = verify([])
    assert ok.returncode == 0 and ds_pem + ": OK" in ok.stdout, ok.stdout + ok.stderr
    bad = verify([_ds(pki_).serial_number])
    assert bad.returncode != 0 and "certificate revoked" in bad.stdout + bad.stderr


def test_document_signer_for_passports_cannot_sign_an_id_card(
        make_card: Any, holder: Any, scp03_master: Any, bio_master: Any) -> None:
    from chip.personalization import PersonalizationKeys, personalize
    from chip.simulator.card import SimulatedChannel
    from chip.verification import verify_card

    passports = make_demo_pki(document_types=("P",))
    card = make_card()
    personalize(SimulatedChannel(card), holder,
                PersonalizationKeys(passports.signer, scp03_master, bio_master))
    from chip.bac import BacKey
    from chip.lds import td1_mrz

    report = verify_card(SimulatedChannel(card), passports.csca_certificate_der, bio_master,
                         access=BacKey.from_mrz(td1_mrz(holder)))
    assert not report.ok
    assert report.problems == ["the document signer may sign ['P'], not a document of type 'ID'"]
