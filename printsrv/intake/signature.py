"""Verifying the registry's detached CMS signature over ``manifest.json``, and making one.

Equivalent to ``openssl cms -verify -binary -inform DER -in manifest.sig -content manifest.json
-CAfile registry-ca.pem -purpose any``: the signer certificate must chain to a configured
registry CA, be valid now, and its signature (over the signed attributes, with a matching
message digest) must verify.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.utils import CryptographyDeprecationWarning

_DIGESTS = {
    "sha256": (hashlib.sha256, hashes.SHA256),
    "sha384": (hashlib.sha384, hashes.SHA384),
    "sha512": (hashlib.sha512, hashes.SHA512),
}


class SignatureInvalid(Exception):
    """The manifest signature or its certificate chain does not verify."""


def load_trusted_cas(paths: Sequence[Path]) -> list[x509.Certificate]:
    """Every certificate in the given PEM files."""
    cas: list[x509.Certificate] = []
    for path in paths:
        try:
            cas += x509.load_pem_x509_certificates(path.read_bytes())
        except FileNotFoundError as exc:
            raise SignatureInvalid(
                f"registry CA file {path} not found (setting registry_ca)"
            ) from exc
        except ValueError as exc:
            raise SignatureInvalid(f"registry CA file {path} is not PEM certificates") from exc
    if not cas:
        raise SignatureInvalid("no registry CA configured (setting registry_ca)")
    return cas


def _verify_signature(cert: x509.Certificate, signature: bytes, data: bytes, digest: str) -> None:
    key = cert.public_key()
    hash_cls = _DIGESTS[digest][1]()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(hash_cls))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), hash_cls)
    else:
        raise SignatureInvalid("unsupported signer key type")


def _chain_to_trust(
    signer: x509.Certificate, pool: list[x509.Certificate], trusted: list[x509.Certificate]
) -> list[x509.Certificate]:
    """Find a path signer → (intermediates from the CMS) → trusted CA, checking each link."""
    now = datetime.now(UTC)
    chain, current = [signer], signer
    intermediates = 0
    for _ in range(5):
        if not (current.not_valid_before_utc <= now <= current.not_valid_after_utc):
            raise SignatureInvalid(
                f"certificate {current.subject.rfc4514_string()} is not valid now"
            )
        for ca in trusted:
            if ca.subject == current.issuer:
                try:
                    current.verify_directly_issued_by(ca)
                except (ValueError, TypeError, InvalidSignature):
                    continue
                if not (ca.not_valid_before_utc <= now <= ca.not_valid_after_utc):
                    raise SignatureInvalid("registry CA certificate is not valid now")
                _may_issue(ca, intermediates)
                return [*chain, ca]
        for cand in pool:
            if cand.subject == current.issuer and cand != current:
                try:
                    current.verify_directly_issued_by(cand)
                    basic = cand.extensions.get_extension_for_class(x509.BasicConstraints).value
                except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
                    continue
                if basic.ca:
                    _may_issue(cand, intermediates)
                    chain.append(cand)
                    current = cand
                    intermediates += 1
                    break
        else:
            break
    raise SignatureInvalid(
        f"signer {signer.subject.rfc4514_string()} does not chain to a trusted registry CA"
    )


def _may_issue(ca: x509.Certificate, below: int) -> None:
    """``ca`` may sign the certificate under it, with ``below`` CA certificates between it and
    the signer: a CA, keyCertSign in its key usage when it has one, and its path length
    constraint not exceeded (RFC 5280 4.2.1.3, 4.2.1.9; what OpenSSL enforces)."""
    name = ca.subject.rfc4514_string()
    try:
        basic = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as exc:
        raise SignatureInvalid(f"CA {name} has no basicConstraints") from exc
    if not basic.ca:
        raise SignatureInvalid(f"{name} is not a CA certificate")
    try:
        usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        raise SignatureInvalid(f"CA {name} lacks keyCertSign in its key usage")
    if basic.path_length is not None and below > basic.path_length:
        raise SignatureInvalid(
            f"CA {name} allows {basic.path_length} CA certificate(s) below it, found {below}"
        )


def verify_detached(
    content: bytes, signature_der: bytes, trusted: list[x509.Certificate]
) -> x509.Certificate:
    """Verify a detached CMS SignedData over ``content``; return the signer certificate.

    Anything malformed in the structure (ASN.1 that asn1crypto parses lazily, in the signed
    attributes or the signer id) is a :class:`SignatureInvalid` that names it, never another
    exception."""
    try:
        with warnings.catch_warnings():
            # A certificate RFC 5280 forbids (a negative serial) is malformed here, not a
            # warning in the log.
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            return _verify_detached(content, signature_der, trusted)
    except SignatureInvalid:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
            UnicodeDecodeError, UnsupportedAlgorithm, x509.InvalidVersion,
            CryptographyDeprecationWarning) as exc:
        raise SignatureInvalid(f"malformed CMS signature: {str(exc)[:200]}") from exc


def _verify_detached(
    content: bytes, signature_der: bytes, trusted: list[x509.Certificate]
) -> x509.Certificate:
    try:
        info = cms.ContentInfo.load(signature_der, strict=True)
        if info["content_type"].native != "signed_data":
            raise SignatureInvalid("not a CMS SignedData")
        signed = info["content"]
        if signed["encap_content_info"]["content"].native is not None:
            raise SignatureInvalid("signature is not detached")
        signer_infos = list(signed["signer_infos"])
        if len(signer_infos) != 1:
            raise SignatureInvalid(f"expected one signer, found {len(signer_infos)}")
        si = signer_infos[0]
        pool = [
            x509.load_der_x509_certificate(c.chosen.dump())
            for c in signed["certificates"] or []
            if c.name == "certificate"
        ]
    except (ValueError, TypeError, KeyError) as exc:
        raise SignatureInvalid(f"malformed CMS signature: {exc}") from exc

    sid = si["sid"]
    signer = None
    for cert in pool:
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            if cert.serial_number == ias["serial_number"].native and (
                cert.issuer.public_bytes() == ias["issuer"].dump()
            ):
                signer = cert
        else:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            except x509.ExtensionNotFound:
                continue
            if ski.digest == sid.chosen.native:
                signer = cert
    if signer is None:
        raise SignatureInvalid("signer certificate not included in the signature")

    digest = si["digest_algorithm"]["algorithm"].native
    if digest not in _DIGESTS:
        raise SignatureInvalid(f"digest algorithm {digest} not accepted")
    content_digest = _DIGESTS[digest][0](content).digest()
    signed_attrs = si["signed_attrs"]
    try:
        if signed_attrs.native is not None and len(signed_attrs):
            attrs = {a["type"].native: a["values"] for a in signed_attrs}
            # RFC 5652 5.3: with signed attributes, content-type must be one of them, and name
            # the encapsulated content's type (OpenSSL refuses it otherwise).
            if "content_type" not in attrs:
                raise SignatureInvalid("signed attributes without a content-type attribute")
            econtent_type = signed["encap_content_info"]["content_type"].native
            if attrs["content_type"][0].native != econtent_type:
                raise SignatureInvalid("the content-type attribute does not name the content")
            if "message_digest" not in attrs or attrs["message_digest"][0].native != content_digest:
                raise SignatureInvalid("manifest.json does not match the signed digest (tampered)")
            # The signature covers the attributes as a universal SET (tag 31), not [0] IMPLICIT.
            to_verify = b"\x31" + signed_attrs.dump()[1:]
        else:
            to_verify = content
        _verify_signature(signer, si["signature"].native, to_verify, digest)
    except InvalidSignature as exc:
        raise SignatureInvalid("signature does not verify (tampered or wrong key)") from exc
    _chain_to_trust(signer, pool, trusted)
    return signer


def sign_detached(content: bytes, cert_pem: bytes, key_pem: bytes) -> bytes:
    """Make a detached DER CMS signature (what the registry does; used for demo batches)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, None)
    builder = (
        pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(cert, key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return builder.sign(
        serialization.Encoding.DER,
        [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
    )
