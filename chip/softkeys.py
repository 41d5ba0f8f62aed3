"""Software implementations of the key ports, for tests, the simulator and the benchmark.

Production keys live in the PKCS#11 token (see :mod:`printsrv.keys`); these use
:mod:`cryptography` in memory. ``DEMO_SCP03_MASTER_HEX`` is a published development constant:
never use it for real cards.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chip import cvc
from chip.eac import InspectionSystem
from chip.errors import MalformedError
from chip.scp03 import aes_cmac

# Development-only SCP03 master key (AES-128); the simulator falls back to it when
# var/keys/scp03-demo-master.hex does not exist, and `run.py init` imports the same value.
DEMO_SCP03_MASTER_HEX = "4b54502d454c2d4445562d5343503033"  # "KTP-EL-DEV-SCP03"
# Development-only biometric master key for tests and the benchmark.
DEMO_BIOMETRIC_MASTER_HEX = "4b54502d454c2d4445562d42494f4d31"  # "KTP-EL-DEV-BIOM1"
DEFAULT_SCP03_MASTER_FILE = Path("var/keys/scp03-demo-master.hex")


class SoftKeyDiversifier:
    """AES-CMAC with a master key held in memory."""

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise MalformedError("AES master key must be 16, 24 or 32 bytes")
        self._key = key

    @classmethod
    def from_hex(cls, text: str) -> SoftKeyDiversifier:
        return cls(bytes.fromhex(text.strip()))

    def cmac(self, data: bytes) -> bytes:
        return aes_cmac(self._key, data)


def load_scp03_master(path: Path | None = None) -> SoftKeyDiversifier:
    """The demo SCP03 master: from ``path`` (or the default file if present), else the constant."""
    candidate = path or DEFAULT_SCP03_MASTER_FILE
    if path is not None or candidate.exists():
        return SoftKeyDiversifier.from_hex(candidate.read_text())
    return SoftKeyDiversifier.from_hex(DEMO_SCP03_MASTER_HEX)


class SoftDocumentSigner:
    """An EC P-256 document signer with its certificate, in memory."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self._key = key
        self._cert = certificate

    @property
    def certificate_der(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.DER)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))


@dataclass(frozen=True)
class DemoPki:
    """A demo country-signing CA and one document signer it issued."""

    csca_key: ec.EllipticCurvePrivateKey
    csca_certificate: x509.Certificate
    signer: SoftDocumentSigner

    @property
    def csca_certificate_der(self) -> bytes:
        return self.csca_certificate.public_bytes(serialization.Encoding.DER)


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ktp-printsrv demo"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


#: Where the demo CSCA says its CRL is published.
DEMO_CRL_URL = "http://pkd.ktp-printsrv.invalid/csca-id.crl"


def make_demo_pki(now: dt.datetime | None = None, usage_days: int = 90,
                  document_types: tuple[str, ...] = ("ID",)) -> DemoPki:
    """Generate a fresh demo CSCA and document signer (EC P-256, ICAO 9303-12 profiles; the
    DS key signs for ``usage_days``)."""
    from chip import pki
    now = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=1)
    csca_key = ec.generate_private_key(ec.SECP256R1())
    csca = pki.csca_certificate(csca_key, _name("Demo CSCA Indonesia"), DEMO_CRL_URL, now)
    ds_key = ec.generate_private_key(ec.SECP256R1())
    ds = pki.document_signer_certificate(ds_key.public_key(), _name("Demo Document Signer 1"),
                                         csca, csca_key, now, usage_days=usage_days,
                                         document_types=document_types)
    return DemoPki(csca_key, csca, SoftDocumentSigner(ds_key, ds))


class SoftCvSigner:
    """A CV PKI key (ECDSA P-256) in memory: :class:`chip.cvc.CvSigner`."""

    def __init__(self, key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.key = key or ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.key.public_key()

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))


@dataclass(frozen=True)
class DemoCvPki:
    """A demo EAC PKI: CVCA → DV → inspection system, CV certificates and software keys."""

    cvca: SoftCvSigner
    cvca_certificate: bytes
    dv: SoftCvSigner
    dv_certificate: bytes
    inspection_key: SoftCvSigner
    is_certificate: bytes

    def inspection(self) -> InspectionSystem:
        """The inspection system for TA (DV then IS certificate)."""
        return InspectionSystem([cvc.parse_cv_certificate(self.dv_certificate),
                                     cvc.parse_cv_certificate(self.is_certificate)],
                                    self.inspection_key)


def make_demo_cv_pki(today: dt.date | None = None, *, country: str = "ID",
                     is_rights: int | None = None, is_days: int = 30,
                     is_effective: dt.date | None = None) -> DemoCvPki:
    """A fresh CVCA (3 years), a domestic DV (90 days) and an IS (``is_days``; CHAT read-DG3
    unless ``is_rights`` says otherwise), all effective ``today`` (default: yesterday UTC)."""
    today = today or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    cvca, dv, inspection = SoftCvSigner(), SoftCvSigner(), SoftCvSigner()
    cvca_chr, dv_chr, is_chr = f"{country}CVCAKTP00001", f"{country}DVKTP00001", \
        f"{country}ISKTP00001"
    all_rights = cvc.READ_DG3 | cvc.READ_DG4
    cvca_cert = cvc.issue(cvca, cvca_chr, cvca_chr, cvca.public_key, cvc.Role.CVCA, all_rights,
                          today, today + dt.timedelta(days=3 * 365))
    dv_cert = cvc.issue(cvca, cvca_chr, dv_chr, dv.public_key, cvc.Role.DV_DOMESTIC, all_rights,
                        today, today + dt.timedelta(days=90))
    start = is_effective or today
    is_cert = cvc.issue(dv, dv_chr, is_chr, inspection.public_key, cvc.Role.IS,
                        cvc.READ_DG3 if is_rights is None else is_rights,
                        start, start + dt.timedelta(days=is_days))
    return DemoCvPki(cvca, cvca_cert.raw, dv, dv_cert.raw, inspection, is_cert.raw)
