"""EF.SOD: CMS SignedData over the LDSSecurityObject (ICAO Doc 9303-10/-12).

Built with asn1crypto. The signature covers the signed attributes encoded as a universal SET
(tag 31), not their ``[0] IMPLICIT`` form inside SignerInfo. The file on the chip is the
ContentInfo wrapped in ``[APPLICATION 23]`` (tag 77).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from asn1crypto import algos, cms, core, x509
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from chip import pki
from chip.api import DocumentSigner
from chip.errors import MalformedError, VerificationError
from chip.tlv import tlv, unwrap

LDS_SECURITY_OBJECT_OID = "2.23.136.1.1.1"
cms.ContentType._map[LDS_SECURITY_OBJECT_OID] = "ldsSecurityObject"
# asn1crypto builds the name -> OID map once, on first use: if anything used a content type by
# name before this module was imported, that map exists already and lacks our name.
if cms.ContentType._reverse_map is not None:
    cms.ContentType._reverse_map["ldsSecurityObject"] = LDS_SECURITY_OBJECT_OID


class DataGroupHash(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("data_group_number", core.Integer),
        ("data_group_hash_value", core.OctetString),
    ]


class DataGroupHashValues(core.SequenceOf):  # type: ignore[misc]
    _child_spec = DataGroupHash


class LDSVersionInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("lds_version", core.PrintableString),
        ("unicode_version", core.PrintableString),
    ]


class LDSSecurityObject(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashValues),
        ("lds_version_info", LDSVersionInfo, {"optional": True}),
    ]


def lds_security_object(dg_hashes: dict[int, bytes]) -> bytes:
    """DER of an LDSSecurityObject v0 with SHA-256 hashes, data groups in ascending order."""
    lso = LDSSecurityObject({
        "version": 0,
        "hash_algorithm": {"algorithm": "sha256"},
        "data_group_hash_values": [
            {"data_group_number": n, "data_group_hash_value": h}
            for n, h in sorted(dg_hashes.items())
        ],
    })
    der: bytes = lso.dump()
    return der


def build_sod(data_groups: dict[int, bytes], signer: DocumentSigner,
              signing_time: dt.datetime | None = None) -> bytes:
    """EF.SOD (tag 77) over the exact bytes of each data group written to the chip."""
    econtent = lds_security_object(
        {n: hashlib.sha256(raw).digest() for n, raw in data_groups.items()}
    )
    cert = x509.Certificate.load(signer.certificate_der)
    signed_attrs = cms.CMSAttributes([
        {"type": "content_type", "values": ["ldsSecurityObject"]},
        {"type": "signing_time",
         "values": [cms.Time({"utc_time": signing_time or dt.datetime.now(dt.UTC)})]},
        {"type": "message_digest", "values": [hashlib.sha256(econtent).digest()]},
    ])
    signature = signer.sign(signed_attrs.dump())  # universal SET (31), as the standard says
    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({
            "issuer_and_serial_number": cms.IssuerAndSerialNumber({
                "issuer": cert.issuer, "serial_number": cert.serial_number,
            })
        }),
        "digest_algorithm": {"algorithm": "sha256"},
        "signed_attrs": signed_attrs,
        "signature_algorithm": {"algorithm": "sha256_ecdsa"},
        "signature": signature,
    })
    signed_data = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {
            "content_type": "ldsSecurityObject",
            "content": core.ParsableOctetString(econtent),
        },
        "certificates": [cert],
        "signer_infos": [signer_info],
    })
    info = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    return tlv(0x77, info.dump())


@dataclass(frozen=True)
class SodContents:
    """What EF.SOD says, before any check."""

    content_info_der: bytes
    signed_data: cms.SignedData
    dg_hashes: dict[int, bytes]
    hash_algorithm: str
    signer_certificate_der: bytes


def parse_sod(raw: bytes) -> SodContents:
    """Parse EF.SOD; :class:`VerificationError` when it is not a well-formed SOD."""
    try:
        der = unwrap(raw, 0x77)
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise MalformedError("not SignedData")
        sd = info["content"]
        encap = sd["encap_content_info"]
        if encap["content_type"].dotted != LDS_SECURITY_OBJECT_OID:
            raise MalformedError("eContentType is not ldsSecurityObject")
        lso = LDSSecurityObject.load(encap["content"].contents)
        algo = lso["hash_algorithm"]["algorithm"].native
        hashes_ = {int(i["data_group_number"].native): i["data_group_hash_value"].native
                   for i in lso["data_group_hash_values"]}
        certs = [c.chosen for c in sd["certificates"]]
        if not certs:
            raise MalformedError("no document-signer certificate")
        return SodContents(der, sd, hashes_, algo, certs[0].dump())
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"EF.SOD malformed: {exc}") from exc


_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512,
           "sha1": hashlib.sha1, "sha224": hashlib.sha224}


_CRYPTO_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | hashes.SHA1
                                | hashes.SHA224]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
    "sha1": hashes.SHA1, "sha224": hashes.SHA224,
}


def _verify_with(cert: cx509.Certificate, signature: bytes, data: bytes,
                 algo: hashes.HashAlgorithm, pss: bool = False) -> None:
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(algo))
    elif isinstance(key, rsa.RSAPublicKey):
        pad: padding.AsymmetricPadding = (
            padding.PSS(padding.MGF1(algo), padding.PSS.AUTO) if pss else padding.PKCS1v15()
        )
        key.verify(signature, data, pad, algo)
    else:
        raise VerificationError("unsupported signer key type")


@dataclass(frozen=True)
class PassiveAuthentication:
    """Result of passive authentication: every field True means the document is genuine."""

    signature_valid: bool
    chain_valid: bool
    dg_hashes_valid: dict[int, bool]
    signer_subject: str
    chain: pki.ChainCheck | None = None  # the chain-model details (None without a CSCA)

    @property
    def ok(self) -> bool:
        return (self.signature_valid and self.chain_valid and bool(self.dg_hashes_valid)
                and all(self.dg_hashes_valid.values()))


def signing_time(sod: SodContents) -> dt.datetime | None:
    """The signingTime signed attribute of EF.SOD's signer, in UTC, or None."""
    for attr in sod.signed_data["signer_infos"][0]["signed_attrs"]:
        if attr["type"].native == "signing_time":
            value = attr["values"][0].native
            if isinstance(value, dt.datetime):
                return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None


def passive_authentication(sod: SodContents, files: dict[int, bytes],
                           csca_der: bytes | None,
                           at: dt.datetime | None = None,
                           crl_der: bytes | None = None) -> PassiveAuthentication:
    """Check the SOD signature, the DS certificate against the CSCA by the chain model
    (:func:`chip.pki.check_chain`: at the SOD's signing time; revocation on ``crl_der``), and
    each DG hash. ``at`` is the verifier's clock (default now)."""
    sd = sod.signed_data
    signer_info = sd["signer_infos"][0]
    ds = cx509.load_der_x509_certificate(sod.signer_certificate_der)
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    hash_cls = _CRYPTO_HASHES.get(digest_name)
    sig_ok = False
    if hash_cls is not None:
        econtent = sd["encap_content_info"]["content"].contents
        attrs = signer_info["signed_attrs"]
        digest_ok = True
        if len(attrs):
            md = next((a["values"][0].native for a in attrs
                       if a["type"].native == "message_digest"), None)
            digest_ok = md is not None and hmac.compare_digest(
                md, _HASHES[digest_name](econtent).digest())
            signed_bytes = b"\x31" + attrs.dump()[1:]  # original bytes, universal SET tag
        else:
            signed_bytes = econtent
        sig_algo = signer_info["signature_algorithm"]["algorithm"].native
        try:
            _verify_with(ds, signer_info["signature"].native, signed_bytes, hash_cls(),
                         pss="pss" in sig_algo)
            sig_ok = digest_ok
        except (InvalidSignature, ValueError):
            sig_ok = False
    chain: pki.ChainCheck | None = None
    if csca_der is not None:
        csca = cx509.load_der_x509_certificate(csca_der)
        chain = pki.check_chain(ds, csca, signing_time(sod), at or dt.datetime.now(dt.UTC), crl_der)
    hasher = _HASHES.get(sod.hash_algorithm)
    dg_ok = {
        n: hasher is not None and n in files
        and hmac.compare_digest(hasher(files[n]).digest(), h)
        for n, h in sod.dg_hashes.items()
    }
    return PassiveAuthentication(sig_ok, chain is not None and chain.ok, dg_ok,
                                 ds.subject.rfc4514_string(), chain)
