"""The eMRTD PKI of ICAO Doc 9303-12: CSCA and document-signer certificate profiles, CRLs, and
the chain-model check of a document signer at the time it signed.

A document valid for life outlives every certificate above it, so a verifier checks each
signature against the certificates *as they stood when it was made* (chain model): the DS key
signed within its private-key usage period, the DS certificate was valid then, the CSCA was
valid when it issued the DS certificate; and the DS is not on the CSCA's CRL. Nothing here
depends on today's date except a CRL's freshness, which is reported, not enforced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from asn1crypto import core
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import NameOID

#: id-icao-mrtd-security-extensions-documentTypeList (ICAO 9303-12 §7.1.1.3).
DOCUMENT_TYPE_LIST_OID = x509.ObjectIdentifier("2.23.136.1.1.6.2")
#: How long a DS private key signs documents (9303-12: typically ≤ 3 months).
DS_USAGE_DAYS = 90
#: The longest validity of a *dated* document we issue (WNA cards); lifetime cards rely on
#: the chain model.
LONGEST_DOCUMENT_DAYS = 10 * 365
#: CSCA certificate validity (its key signs for a shorter period; a demo keeps it simple).
CSCA_DAYS = 15 * 365
#: CRLs are issued at least every 90 days (9303-12 §7.1.4).
CRL_DAYS = 90


class _DocumentTypes(core.SetOf):  # type: ignore[misc]
    _child_spec = core.PrintableString


class DocumentTypeListSyntax(core.Sequence):  # type: ignore[misc]
    """``DocumentTypeListSyntax ::= SEQUENCE { version INTEGER (v0), docTypeList SET OF
    DocumentType }``, ``DocumentType ::= PrintableString (SIZE (1..2))``."""

    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("version", core.Integer), ("doc_type_list", _DocumentTypes)]


def document_type_list(types: Iterable[str]) -> bytes:
    der: bytes = DocumentTypeListSyntax({"version": 0, "doc_type_list": list(types)}).dump()
    return der


def name(common_name: str, organization: str = "ktp-printsrv demo") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _usage(**flags: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: flags.get(n, False) for n in names})


def _crl_points(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints([x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None,
        crl_issuer=None)])


def csca_certificate(key: CertificateIssuerPrivateKeyTypes, subject: x509.Name, crl_url: str,
                     not_before: dt.datetime, days: int = CSCA_DAYS) -> x509.Certificate:
    """Self-signed CSCA: CA, keyCertSign + cRLSign, SKI, a CRL distribution point."""
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_before + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.PrivateKeyUsagePeriod(not_before, not_before + dt.timedelta(
            days=days // 3)), critical=False)
        .add_extension(_crl_points(crl_url), critical=False)
        .sign(key, hashes.SHA256())
    )


def document_signer_certificate(
        public_key: CertificatePublicKeyTypes, subject: x509.Name, csca: x509.Certificate,
        csca_key: CertificateIssuerPrivateKeyTypes, not_before: dt.datetime,
        usage_days: int = DS_USAGE_DAYS, document_days: int = LONGEST_DOCUMENT_DAYS,
        document_types: Iterable[str] = ("ID",)) -> x509.Certificate:
    """DS certificate per ICAO 9303-12: keyUsage digitalSignature (critical), AKI, SKI,
    PrivateKeyUsagePeriod of ``usage_days``, documentTypeList, the CSCA's CRL distribution
    point; validity = usage period + the longest document validity."""
    usage_end = not_before + dt.timedelta(days=usage_days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(csca.subject).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(usage_end + dt.timedelta(days=document_days))
        .add_extension(_usage(digital_signature=True), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            csca.public_key()), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.PrivateKeyUsagePeriod(not_before, usage_end), critical=False)
        .add_extension(x509.UnrecognizedExtension(
            DOCUMENT_TYPE_LIST_OID, document_type_list(document_types)), critical=False)
    )
    try:
        points = csca.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        builder = builder.add_extension(points, critical=False)
    except x509.ExtensionNotFound:
        pass
    return builder.sign(csca_key, hashes.SHA256())


@dataclass(frozen=True)
class Revocation:
    serial_number: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def issue_crl(csca: x509.Certificate, csca_key: CertificateIssuerPrivateKeyTypes,
              revoked: Iterable[Revocation], number: int, this_update: dt.datetime,
              days: int = CRL_DAYS) -> x509.CertificateRevocationList:
    """A CRL of the CSCA (AKI, CRL number), valid ``days``."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(csca.subject)
        .last_update(this_update).next_update(this_update + dt.timedelta(days=days))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            csca.public_key()), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for r in revoked:
        entry = (x509.RevokedCertificateBuilder().serial_number(r.serial_number)
                 .revocation_date(r.revoked_at))
        if r.reason is not x509.ReasonFlags.unspecified:
            entry = entry.add_extension(x509.CRLReason(r.reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(csca_key, hashes.SHA256())


def private_key_usage_period(cert: x509.Certificate) -> tuple[dt.datetime | None,
                                                               dt.datetime | None] | None:
    """(notBefore, notAfter) of the PrivateKeyUsagePeriod extension, in UTC, or None."""
    try:
        period = cert.extensions.get_extension_for_class(x509.PrivateKeyUsagePeriod).value
    except x509.ExtensionNotFound:
        return None

    def utc(t: dt.datetime | None) -> dt.datetime | None:
        return None if t is None else (t if t.tzinfo else t.replace(tzinfo=dt.UTC))

    return utc(period.not_before), utc(period.not_after)


def document_types(cert: x509.Certificate) -> list[str]:
    """The documentTypeList of a DS certificate ([] when absent)."""
    try:
        ext = cert.extensions.get_extension_for_oid(DOCUMENT_TYPE_LIST_OID).value
    except x509.ExtensionNotFound:
        return []
    raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
    return [str(t) for t in DocumentTypeListSyntax.load(raw)["doc_type_list"].native]


@dataclass
class ChainCheck:
    """The chain-model verdict on one document signer; ``ok`` when ``problems`` is empty."""

    signing_time: dt.datetime | None
    revocation_checked: bool = False
    revoked: bool = False
    crl_next_update: dt.datetime | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_chain(ds: x509.Certificate, csca: x509.Certificate, signing_time: dt.datetime | None,
                now: dt.datetime, crl_der: bytes | None = None,
                document_type: str | None = None) -> ChainCheck:
    """Chain model: the DS certificate was issued by ``csca`` while the CSCA was valid, the
    document was signed (``signing_time``, the SOD's signingTime) within the DS certificate's
    validity and private-key usage period, not after ``now``; the DS is not revoked on
    ``crl_der`` (a CRL of ``csca``); the DS may sign ``document_type``. Without a signing time
    the shell model is used: every certificate valid at ``now``."""
    check = ChainCheck(signing_time)
    try:
        ds.verify_directly_issued_by(csca)
    except (InvalidSignature, ValueError, TypeError) as exc:
        check.problems.append(f"document signer not issued by this CSCA: {exc or 'bad signature'}")
        return check
    if signing_time is None:
        check.notes.append("EF.SOD has no signingTime: certificates checked at the current time")
        for label, cert in (("document signer", ds), ("CSCA", csca)):
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                check.problems.append(f"{label} certificate not valid at {now:%Y-%m-%d}")
    else:
        when = f"{signing_time:%Y-%m-%d %H:%M} UTC"
        if signing_time > now + dt.timedelta(minutes=5):
            check.problems.append(f"signing time {when} is in the future")
        if not ds.not_valid_before_utc <= signing_time <= ds.not_valid_after_utc:
            check.problems.append(f"document signer certificate not valid at signing time {when}")
        period = private_key_usage_period(ds)
        if period is not None:
            start, end = period
            if (start and signing_time < start) or (end and signing_time > end):
                check.problems.append(
                    f"signed at {when}, outside the document signer's private key usage period")
        if not csca.not_valid_before_utc <= ds.not_valid_before_utc <= csca.not_valid_after_utc:
            check.problems.append("CSCA was not valid when it issued the document signer")
    if document_type is not None:
        types = document_types(ds)
        if types and document_type not in types:
            check.problems.append(f"document signer may sign {types}, not {document_type!r}")
    if crl_der is not None:
        _check_crl(check, ds, csca, crl_der, now)
    return check


def _check_crl(check: ChainCheck, ds: x509.Certificate, csca: x509.Certificate,
               crl_der: bytes, now: dt.datetime) -> None:
    try:
        crl = (x509.load_pem_x509_crl(crl_der) if crl_der.startswith(b"-----")
               else x509.load_der_x509_crl(crl_der))
    except ValueError as exc:
        check.problems.append(f"CRL unreadable: {exc}")
        return
    if crl.issuer != csca.subject or not crl.is_signature_valid(
            csca.public_key()):  # type: ignore[arg-type]
        check.problems.append("CRL not signed by this CSCA")
        return
    check.revocation_checked = True
    check.crl_next_update = crl.next_update_utc
    if check.crl_next_update is not None and check.crl_next_update < now:
        check.notes.append(f"CRL out of date since {check.crl_next_update:%Y-%m-%d}")
    entry = crl.get_revoked_certificate_by_serial_number(ds.serial_number)
    if entry is not None:
        check.revoked = True
        check.problems.append(
            f"document signer {ds.serial_number:x} revoked on "
            f"{entry.revocation_date_utc:%Y-%m-%d}")
