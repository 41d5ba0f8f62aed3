"""Keys: the server's PKCS#11 token (SoftHSM2 in development) and the demo PKI.

The token holds every secret the server uses in operation:

* ``storage-kek`` (AES-256): wraps each record's random data key (AES-GCM inside the token);
  records' photos, signatures and minutiae are encrypted with that data key (envelope encryption).
* ``document-signer`` (EC P-256): signs the chip's EF.SOD; its certificate is issued by the
  country-signing CA (CSCA).
* ``biometric-master`` (AES-128, CMAC): per-card biometric keys are diversified from it.
* ``scp03-master`` (AES-128, CMAC): per-card SCP03 static keys are diversified from it.
* ``audit-signer`` (EC P-256): signs the audit log's checkpoints (:mod:`printsrv.checkpoints`);
  its public key is ``keys/audit-signer.pem``, which auditors keep.
* ``suket-signer`` (EC P-256): signs the QR code of every Surat Keterangan pengganti KTP-el
  (:mod:`printsrv.desk.suket`); its public key ``keys/suket-signer.pem`` checks them offline.
* ``eac-inspection`` (EC P-256): the station's inspection-system key for EAC Terminal
  Authentication (the chip lets DG3 be read only after it); its CV certificate
  ``keys/eac/is.cvcert`` is issued by the demo DV.

``init`` also creates the *demo* PKI outside the token, standing in for parties we do not run:
the registry CA and its batch-signing key (the registry signs batches), the CSCA key (an
offline CA in a real deployment), and the EAC CV PKI's CVCA and document-verifier (DV) keys
(``keys/eac/``; national authorities in a real deployment). Those files live in ``var/keys``
and are for development only.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from printsrv.config import Settings
from printsrv.errors import KeyStoreError

if TYPE_CHECKING:
    from printsrv.models import MediaKind

STORAGE_KEK = "storage-kek"
DOCUMENT_SIGNER = "document-signer"
BIOMETRIC_MASTER = "biometric-master"
SCP03_MASTER = "scp03-master"
AUDIT_SIGNER = "audit-signer"
SUKET_SIGNER = "suket-signer"
#: A kecamatan node's own key (signs its requests to the kabupaten server, unwraps the data
#: keys the server re-wraps for it); made by ``node enroll``.
NODE_KEY = "node-key"
EAC_INSPECTION = "eac-inspection"
CVCA_CERT, DV_CERT, IS_CERT = "cvca.cvcert", "dv.cvcert", "is.cvcert"  # in keys/eac/
CVCA_DAYS, DV_DAYS, IS_DAYS = 3 * 365, 90, 30
_NONCE = 12


def _media_aad(request_id: str, kind: MediaKind | str) -> bytes:
    return f"{request_id}:{kind}".encode()  # a MediaKind is its value as text


def encrypt_media(
    data_key: bytes, request_id: str, kind: MediaKind, plain: bytes
) -> tuple[bytes, bytes]:
    """A record's medium encrypted with its data key: ``(nonce, ciphertext)``, AES-256-GCM,
    the AAD binding the blob to its record and kind."""
    nonce = secrets.token_bytes(_NONCE)
    return nonce, AESGCM(data_key).encrypt(nonce, plain, _media_aad(request_id, kind))


def decrypt_media(
    data_key: bytes, request_id: str, kind: MediaKind | str, nonce: bytes, ct: bytes
) -> bytes:
    """A record's medium decrypted with its data key (written by :func:`encrypt_media`);
    raises ``InvalidTag`` when tampered with. Here, not in intake, so that readers of media
    (render) do not import intake."""
    return AESGCM(data_key).decrypt(nonce, ct, _media_aad(request_id, kind))


def _pkcs11() -> Any:
    import pkcs11  # imported lazily: the CLI must start without a token

    return pkcs11


_loaded_conf: dict[str, Path] = {}


def ensure_softhsm_conf(settings: Settings) -> Path:
    """Write the instance's SoftHSM2 config (unless ``softhsm_conf`` names one) and point
    ``SOFTHSM2_CONF`` at it. An inherited ``SOFTHSM2_CONF`` is ignored on purpose: it may
    belong to another instance (a parent process, an earlier test)."""
    conf = settings.softhsm_conf_path
    if not conf.exists() and settings.softhsm_conf is None:
        tokens = conf.parent / "tokens"
        tokens.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return conf


_TOKEN_FILE = "token.object"
_TOKEN_FILE_SAVED = "token.object.saved"


def _token_files(settings: Settings) -> list[Path]:
    """The token files of the instance's own SoftHSM directory (none for a configuration
    given by ``softhsm_conf``: not ours to mend)."""
    if settings.softhsm_conf is not None:
        return []
    return sorted((settings.softhsm_conf_path.parent / "tokens").glob(f"*/{_TOKEN_FILE}"))


def _save_token_files(settings: Settings) -> None:
    """Copy each token file as ``softhsm2-util`` made it (nothing else uses it yet)."""
    for path in _token_files(settings):
        saved = path.with_name(_TOKEN_FILE_SAVED)
        if not saved.exists():
            saved.write_bytes(path.read_bytes())
            saved.chmod(0o600)


def _mend_token_files(settings: Settings) -> None:
    """SoftHSM rewrites its token file in place at every login (truncate, then write): a
    process killed in between (a station under ``kill -9``, seen in the crash test) leaves it
    empty, and the token is gone. The file holds the token's label, PIN blobs and flags, which
    we never change after creation, so the copy made at creation puts it back."""
    for path in _token_files(settings):
        saved = path.with_name(_TOKEN_FILE_SAVED)
        if path.stat().st_size == 0 and saved.exists():
            mending = path.with_name(f"{_TOKEN_FILE}.mending-{os.getpid()}")
            mending.write_bytes(saved.read_bytes())
            mending.chmod(0o600)
            os.replace(mending, path)


@contextmanager
def _token_guard(settings: Settings) -> Iterator[None]:
    """Hold the instance's token lock (``flock`` next to the SoftHSM config) across processes.

    SoftHSM rewrites ``token.object`` in place at every login (truncate, then write), and a
    process that loads the library meanwhile reads a token with no label: "token not found".
    A node's sync and station processes (the web server and its stations too) open the same
    token at any moment, so loading, mending, finding and logging in are done one process at
    a time. Without a writable folder for the lock it goes on unguarded."""
    path = settings.softhsm_conf_path.parent / "token.flock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _library(settings: Settings) -> Any:
    """The PKCS#11 library, (re)initialised for this instance's token configuration.

    python-pkcs11 keeps one loaded library per module path; SoftHSM reads its config only at
    initialisation, so switching instance in one process needs a re-initialisation.
    """
    conf = ensure_softhsm_conf(settings)
    _mend_token_files(settings)
    lib = _pkcs11().lib(settings.pkcs11_module)
    previous = _loaded_conf.get(settings.pkcs11_module)
    if previous is not None and previous != conf:
        lib.reinitialize()
    _loaded_conf[settings.pkcs11_module] = conf
    return lib


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ktp-printsrv demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    subject: str,
    public_key: Any,
    issuer_name: x509.Name | None,
    issuer_key: Any,
    *,
    ca: bool,
    days: int,
    key_usage: dict[str, bool],
) -> x509.Certificate:
    now = datetime.now(UTC) - timedelta(minutes=5)
    usage = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    usage.update(key_usage)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name or _name(subject))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _write_private(path: Path, key: Any) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def create_demo_registry_pki(keys_dir: Path) -> list[str]:
    """Demo registry CA + batch-signing certificate (the registry's side, for demo batches)."""
    created: list[str] = []
    keys_dir.mkdir(parents=True, exist_ok=True)
    if not (keys_dir / "registry-ca.pem").exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate(
            "DEMO Registry CA (Dukcapil)",
            ca_key.public_key(),
            None,
            ca_key,
            ca=True,
            days=3650,
            key_usage={"key_cert_sign": True, "crl_sign": True},
        )
        signer_key = ec.generate_private_key(ec.SECP256R1())
        signer = _certificate(
            "DEMO SIAK batch signer",
            signer_key.public_key(),
            ca.subject,
            ca_key,
            ca=False,
            days=825,
            key_usage={"digital_signature": True, "content_commitment": True},
        )
        _write_cert(keys_dir / "registry-ca.pem", ca)
        _write_private(keys_dir / "registry-ca-key.pem", ca_key)
        _write_cert(keys_dir / "registry-signer.pem", signer)
        _write_private(keys_dir / "registry-signer-key.pem", signer_key)
        created.append("demo registry CA and batch signer")
    return created


def init_token(settings: Settings, dev: bool = True) -> list[str]:
    """Create the SoftHSM token and its keys when missing; return what was created.

    ``dev``: import the published development SCP03 master (the simulator's). Without it the
    token gets no SCP03 master (``keys import-perso`` brings the production one) and a token
    that holds the development value is refused (:class:`KeyStoreError`)."""
    created: list[str] = []
    keys_dir = settings.keys_dir
    keys_dir.mkdir(parents=True, exist_ok=True)
    pin_file = keys_dir / "token.pin"
    pkcs11 = _pkcs11()
    lib = _library(settings)
    try:
        lib.get_token(token_label=settings.token_label)
    except pkcs11.exceptions.NoSuchToken:
        pin = settings.token_pin or secrets.token_hex(8)
        so_pin = secrets.token_hex(8)
        subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                settings.token_label,
                "--pin",
                pin,
                "--so-pin",
                so_pin,
            ],
            check=True,
            capture_output=True,
        )
        if not settings.token_pin:
            pin_file.write_text(pin + "\n")
            pin_file.chmod(0o600)
        created.append(f"token {settings.token_label!r}")
        _save_token_files(settings)
        lib.reinitialize()
    with KeyStore.open(settings) as store:
        created += store.create_missing_keys(dev=dev)
        if not dev and store.scp03_master_is_development():
            raise KeyStoreError(
                "the token's scp03-master is the published development key: import the "
                "production key ('python run.py keys import-perso --replace'), or use --dev")
    return created


class KeyStore:
    """An open session on the server's token."""

    def __init__(self, settings: Settings, session: Any) -> None:
        self.settings = settings
        self._session = session
        self._cache: dict[str, Any] = {}

    @classmethod
    @contextmanager
    def open(cls, settings: Settings) -> Iterator[KeyStore]:
        """Open a logged-in session; raises :class:`KeyStoreError` if the token is unusable."""
        pkcs11 = _pkcs11()
        try:
            with _token_guard(settings):
                lib = _library(settings)
                token = lib.get_token(token_label=settings.token_label)
                session = token.open(rw=True, user_pin=settings.resolved_token_pin())
        except pkcs11.exceptions.NoSuchToken as exc:
            raise KeyStoreError(
                f"token {settings.token_label!r} not found: run 'python run.py init'"
            ) from exc
        except (pkcs11.exceptions.PKCS11Error, RuntimeError, OSError) as exc:
            raise KeyStoreError(f"cannot open token {settings.token_label!r}: {exc!r}") from exc
        try:
            yield cls(settings, session)
        finally:
            with _token_guard(settings):
                session.close()

    # --- keys -------------------------------------------------------------------------------
    def _secret(self, label: str) -> Any:
        pkcs11 = _pkcs11()
        if label not in self._cache:
            try:
                self._cache[label] = self._session.get_key(
                    object_class=pkcs11.ObjectClass.SECRET_KEY, label=label
                )
            except pkcs11.exceptions.NoSuchKey as exc:
                raise KeyStoreError(f"key {label!r} missing in the token: run init") from exc
        return self._cache[label]

    def _has(self, label: str, object_class: Any) -> bool:
        return bool(
            list(
                self._session.get_objects(
                    {_pkcs11().Attribute.LABEL: label, _pkcs11().Attribute.CLASS: object_class}
                )
            )
        )

    def missing_keys(self) -> list[str]:
        """Labels of the keys the server needs that the token lacks (``doctor``)."""
        pkcs11 = _pkcs11()
        wanted = {
            STORAGE_KEK: pkcs11.ObjectClass.SECRET_KEY,
            BIOMETRIC_MASTER: pkcs11.ObjectClass.SECRET_KEY,
            SCP03_MASTER: pkcs11.ObjectClass.SECRET_KEY,
            DOCUMENT_SIGNER: pkcs11.ObjectClass.PRIVATE_KEY,
            AUDIT_SIGNER: pkcs11.ObjectClass.PRIVATE_KEY,
            SUKET_SIGNER: pkcs11.ObjectClass.PRIVATE_KEY,
        }
        return [label for label, kind in wanted.items() if not self._has(label, kind)]

    def create_missing_keys(self, dev: bool = True) -> list[str]:
        """Generate or import every key the server needs that the token lacks (the SCP03
        master only with ``dev``: the published development value)."""
        pkcs11 = _pkcs11()
        attr, created = pkcs11.Attribute, []
        secret_template = {attr.SENSITIVE: True, attr.EXTRACTABLE: False, attr.TOKEN: True}
        if not self._has(STORAGE_KEK, pkcs11.ObjectClass.SECRET_KEY):
            self._session.generate_key(
                pkcs11.KeyType.AES,
                256,
                label=STORAGE_KEK,
                store=True,
                capabilities=pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT,
                template=secret_template,
            )
            created.append(STORAGE_KEK)
        if not self._has(BIOMETRIC_MASTER, pkcs11.ObjectClass.SECRET_KEY):
            self._session.generate_key(
                pkcs11.KeyType.AES,
                128,
                label=BIOMETRIC_MASTER,
                store=True,
                capabilities=pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY,
                template=secret_template,
            )
            created.append(BIOMETRIC_MASTER)
        if dev and not self._has(SCP03_MASTER, pkcs11.ObjectClass.SECRET_KEY):
            # Development only: the simulator derives the same card keys from this known value.
            self._store_scp03_master(_demo_scp03_master(self.settings))
            created.append(SCP03_MASTER + " (development value)")
        if not self._has(DOCUMENT_SIGNER, pkcs11.ObjectClass.PRIVATE_KEY):
            created += self._create_document_signer()
        if not self._has(AUDIT_SIGNER, pkcs11.ObjectClass.PRIVATE_KEY):
            public = self._ec_keypair(AUDIT_SIGNER)
            path = self.settings.keys_dir / "audit-signer.pem"
            path.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo))
            created.append(AUDIT_SIGNER)
        created += self.create_missing_cv_pki()
        if not self._has(SUKET_SIGNER, pkcs11.ObjectClass.PRIVATE_KEY):
            public = self._ec_keypair(SUKET_SIGNER)
            path = self.settings.keys_dir / "suket-signer.pem"
            path.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo))
            created.append(SUKET_SIGNER)
        return created

    def _store_scp03_master(self, value: bytes) -> None:
        pkcs11 = _pkcs11()
        attr = pkcs11.Attribute
        self._session.create_object({
            attr.CLASS: pkcs11.ObjectClass.SECRET_KEY, attr.KEY_TYPE: pkcs11.KeyType.AES,
            attr.LABEL: SCP03_MASTER, attr.VALUE: value, attr.SIGN: True, attr.VERIFY: True,
            attr.TOKEN: True, attr.SENSITIVE: True, attr.EXTRACTABLE: False,
        })
        self._cache.pop(SCP03_MASTER, None)

    def scp03_master_is_development(self) -> bool:
        """True when the token's SCP03 master is the published development key (compared by
        a CMAC over a fixed probe, the key never leaves the token)."""
        from chip.scp03 import aes_cmac
        from chip.softkeys import DEMO_SCP03_MASTER_HEX

        if not self._has(SCP03_MASTER, _pkcs11().ObjectClass.SECRET_KEY):
            return False
        probe = b"ktp-printsrv development key probe"
        return hmac.compare_digest(self.scp03_master().cmac(probe),
                                   aes_cmac(bytes.fromhex(DEMO_SCP03_MASTER_HEX), probe))

    def import_scp03_master(self, value: bytes, replace: bool = False) -> None:
        """Import the production SCP03 master (assembled from key components)."""
        from chip.softkeys import DEMO_SCP03_MASTER_HEX

        pkcs11 = _pkcs11()
        if len(value) != 16:
            raise KeyStoreError("the SCP03 master must be an AES-128 key (16 bytes)")
        if value == bytes.fromhex(DEMO_SCP03_MASTER_HEX):
            raise KeyStoreError("refused: that is the published development key")
        existing = list(self._session.get_objects({
            pkcs11.Attribute.LABEL: SCP03_MASTER,
            pkcs11.Attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY}))
        if existing and not replace:
            raise KeyStoreError("the token already holds scp03-master: use --replace")
        for obj in existing:
            obj.destroy()
        self._store_scp03_master(value)

    def _ec_keypair(self, label: str) -> Any:
        """A P-256 key pair made in the token (the private half never leaves it); the public
        key as a ``cryptography`` object."""
        pkcs11 = _pkcs11()
        from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

        params = self._session.create_domain_parameters(
            pkcs11.KeyType.EC,
            {pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            local=True,
        )
        public, _private = params.generate_keypair(
            store=True,
            label=label,
            private_template={
                pkcs11.Attribute.SENSITIVE: True,
                pkcs11.Attribute.EXTRACTABLE: False,
            },
        )
        return serialization.load_der_public_key(encode_ec_public_key(public))

    def _create_document_signer(self) -> list[str]:
        from chip import pki
        from chip.softkeys import DEMO_CRL_URL
        keys_dir = self.settings.keys_dir
        created = []
        if not (keys_dir / "csca.pem").exists():
            csca_key = ec.generate_private_key(ec.SECP256R1())
            csca = pki.csca_certificate(csca_key, _name("DEMO CSCA Indonesia"), DEMO_CRL_URL,
                                        datetime.now(UTC) - timedelta(minutes=5))
            _write_private(keys_dir / "csca-key.pem", csca_key)
            _write_cert(keys_dir / "csca.pem", csca)
            created.append("demo CSCA")
        self._issue_document_signer(pki.DS_USAGE_DAYS)
        created.append(DOCUMENT_SIGNER)
        if not (keys_dir / CRL_FILE).exists():
            issue_crl(self.settings)
            created.append("CSCA CRL")
        return created

    def _issue_document_signer(self, usage_days: int) -> x509.Certificate:
        """A new DS key pair in the token and its certificate from the (demo, file) CSCA."""
        from chip import pki
        keys_dir = self.settings.keys_dir
        csca_key, csca = _csca(self.settings)
        ds_public = self._ec_keypair(DOCUMENT_SIGNER)
        ds_cert = pki.document_signer_certificate(
            ds_public, _name("DEMO Document Signer e-KTP"), csca, csca_key,
            datetime.now(UTC) - timedelta(minutes=5), usage_days=usage_days)
        _write_cert(keys_dir / "document-signer.pem", ds_cert)
        archive = keys_dir / DS_ARCHIVE
        archive.mkdir(exist_ok=True)
        _write_cert(archive / f"{ds_cert.serial_number:x}.pem", ds_cert)
        return ds_cert

    def rotate_document_signer(self, usage_days: int | None = None) -> tuple[
            x509.Certificate | None, x509.Certificate]:
        """Retire the current DS key (relabelled ``document-signer-retired-<serial>``, never
        used again) and issue a new one; returns (old certificate or None, new certificate).
        The old certificate stays in ``keys/document-signers/``: cards it signed still verify."""
        from chip import pki
        pkcs11 = _pkcs11()
        path = self.settings.keys_dir / "document-signer.pem"
        old = x509.load_pem_x509_certificate(path.read_bytes()) if path.exists() else None
        retired = f"{DOCUMENT_SIGNER}-retired-{old.serial_number:x}" if old else (
            f"{DOCUMENT_SIGNER}-retired-{secrets.token_hex(4)}")
        for kind in (pkcs11.ObjectClass.PRIVATE_KEY, pkcs11.ObjectClass.PUBLIC_KEY):
            for obj in self._session.get_objects({pkcs11.Attribute.LABEL: DOCUMENT_SIGNER,
                                                  pkcs11.Attribute.CLASS: kind}):
                obj[pkcs11.Attribute.LABEL] = retired
        return old, self._issue_document_signer(
            pki.DS_USAGE_DAYS if usage_days is None else usage_days)

    # --- EAC: the CV PKI (CVCA → DV as demo files, the inspection-system key in the token) ----
    def create_missing_cv_pki(self) -> list[str]:
        """The demo CVCA and DV (files) and the station's IS key (token) with their CV
        certificates, where missing; returns what was made."""
        created = []
        eac_dir = _eac_dir(self.settings)
        if not (eac_dir / CVCA_CERT).exists():
            _new_cvca(self.settings, None)
            created.append("EAC CVCA (demo)")
        if not (eac_dir / DV_CERT).exists():
            _new_dv(self.settings)
            created.append("EAC document verifier (demo)")
        if not (eac_dir / IS_CERT).exists() or not self._has(
                EAC_INSPECTION, _pkcs11().ObjectClass.PRIVATE_KEY):
            self.rotate_inspection_system()
            created.append(EAC_INSPECTION)
        return created

    def rotate_inspection_system(self, days: int = IS_DAYS) -> str:
        """A new IS key in the token (the old one relabelled ``eac-inspection-retired-…``)
        and its CV certificate from the current DV; returns the new CHR."""
        from chip import cvc

        pkcs11 = _pkcs11()
        stamp = secrets.token_hex(4)
        for kind in (pkcs11.ObjectClass.PRIVATE_KEY, pkcs11.ObjectClass.PUBLIC_KEY):
            for obj in self._session.get_objects({pkcs11.Attribute.LABEL: EAC_INSPECTION,
                                                  pkcs11.Attribute.CLASS: kind}):
                obj[pkcs11.Attribute.LABEL] = f"{EAC_INSPECTION}-retired-{stamp}"
        public = self._ec_keypair(EAC_INSPECTION)
        dv_key, dv = _cv_authority(self.settings, "dv")
        chr_ = _next_chr(self.settings, "IS")
        today = datetime.now(UTC).date()
        cert = cvc.issue(_SoftSigner(dv_key), dv.chr, chr_, public, cvc.Role.IS, cvc.READ_DG3,
                         today, today + timedelta(days=days))
        (_eac_dir(self.settings) / IS_CERT).write_bytes(cert.raw)
        return chr_

    def inspection_system(self) -> Any:
        """The station as an EAC inspection system (:class:`chip.eac.InspectionSystem`):
        link certificates, DV and IS certificates, the token's IS key. None without a CV PKI."""
        from chip import cvc, eac

        eac_dir = _eac_dir(self.settings)
        if not (eac_dir / IS_CERT).exists():
            return None
        pkcs11 = _pkcs11()
        try:
            key = self._session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY,
                                        label=EAC_INSPECTION)
        except pkcs11.exceptions.NoSuchKey as exc:
            raise KeyStoreError("eac-inspection key missing: run 'keys eac-init'") from exc
        chain = [cvc.parse_cv_certificate(p.read_bytes()) for p in _link_paths(self.settings)]
        chain += [cvc.parse_cv_certificate((eac_dir / DV_CERT).read_bytes()),
                  cvc.parse_cv_certificate((eac_dir / IS_CERT).read_bytes())]
        return eac.InspectionSystem(chain, TokenDocumentSigner(key, b""))

    def cvca_certificate(self) -> bytes | None:
        """The current CVCA certificate (the trust point new cards get), None without one."""
        path = _eac_dir(self.settings) / CVCA_CERT
        return path.read_bytes() if path.exists() else None

    # --- envelope encryption of record media ---------------------------------------------------
    def wrap_data_key(self, data_key: bytes, record_ref: bytes) -> bytes:
        """Encrypt a record's data key inside the token (AES-GCM, AAD = record reference)."""
        pkcs11 = _pkcs11()
        nonce = secrets.token_bytes(_NONCE)
        ct = self._secret(STORAGE_KEK).encrypt(
            data_key,
            mechanism=pkcs11.Mechanism.AES_GCM,
            mechanism_param=pkcs11.GCMParams(nonce, record_ref, 128),
        )
        return nonce + bytes(ct)

    def unwrap_data_key(self, wrapped: bytes, record_ref: bytes) -> bytes:
        """Decrypt a wrapped data key; raises :class:`KeyStoreError` if it was tampered with."""
        pkcs11 = _pkcs11()
        try:
            return bytes(
                self._secret(STORAGE_KEK).decrypt(
                    wrapped[_NONCE:],
                    mechanism=pkcs11.Mechanism.AES_GCM,
                    mechanism_param=pkcs11.GCMParams(wrapped[:_NONCE], record_ref, 128),
                )
            )
        except pkcs11.exceptions.PKCS11Error as exc:
            raise KeyStoreError("data key does not decrypt (wrong key or tampered)") from exc

    # --- chip ports ----------------------------------------------------------------------------
    def document_signer(self) -> TokenDocumentSigner:
        from chip import pki
        pkcs11 = _pkcs11()
        try:
            key = self._session.get_key(
                object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=DOCUMENT_SIGNER
            )
        except pkcs11.exceptions.NoSuchKey as exc:
            raise KeyStoreError("document-signer key missing: run init") from exc
        cert = x509.load_pem_x509_certificate(
            (self.settings.keys_dir / "document-signer.pem").read_bytes()
        )
        period = pki.private_key_usage_period(cert)
        signer = TokenDocumentSigner(key, cert.public_bytes(serialization.Encoding.DER),
                                     period[1] if period else None)
        signer.check_usage_period()
        return signer

    def document_signer_version(self) -> int:
        """Changes when ``keys rotate-ds`` issues a new document signer (a long-running
        station asks before each card and takes the new one)."""
        try:
            return (self.settings.keys_dir / "document-signer.pem").stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def audit_signer(self) -> TokenDocumentSigner:
        """The checkpoint signer: ECDSA P-256 in the token, DER signatures."""
        pkcs11 = _pkcs11()
        try:
            key = self._session.get_key(
                object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=AUDIT_SIGNER
            )
        except pkcs11.exceptions.NoSuchKey as exc:
            raise KeyStoreError("audit-signer key missing: run init") from exc
        return TokenDocumentSigner(key, b"")

    def suket_signer(self) -> TokenDocumentSigner:
        """The signer of the QR codes on Surat Keterangan (ECDSA P-256 in the token); its public
        key ``keys/suket-signer.pem`` lets anyone check a Suket offline."""
        pkcs11 = _pkcs11()
        try:
            key = self._session.get_key(
                object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=SUKET_SIGNER
            )
        except pkcs11.exceptions.NoSuchKey as exc:
            raise KeyStoreError("suket-signer key missing: run init") from exc
        return TokenDocumentSigner(key, b"")

    # --- a kecamatan node's key -----------------------------------------------------------------
    def node_public_key(self, *, create: bool = False) -> ec.EllipticCurvePublicKey:
        """The public half of the node key (P-256, private half in the token); made when
        ``create`` is set and the token has none. :class:`KeyStoreError` when missing."""
        pkcs11 = _pkcs11()
        from pkcs11.util.ec import encode_ec_public_key

        try:
            public = self._session.get_key(
                object_class=pkcs11.ObjectClass.PUBLIC_KEY, label=NODE_KEY)
        except pkcs11.exceptions.NoSuchKey as exc:
            if not create:
                raise KeyStoreError("node-key missing: run 'python run.py node enroll'") from exc
            key = self._ec_keypair(NODE_KEY)
            assert isinstance(key, ec.EllipticCurvePublicKey)
            return key
        key = serialization.load_der_public_key(encode_ec_public_key(public))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return key

    def node_signer(self) -> TokenDocumentSigner:
        """The node key as a signer (DER ECDSA over SHA-256)."""
        pkcs11 = _pkcs11()
        try:
            key = self._session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=NODE_KEY)
        except pkcs11.exceptions.NoSuchKey as exc:
            raise KeyStoreError("node-key missing: run 'python run.py node enroll'") from exc
        return TokenDocumentSigner(key, b"")

    def node_agree(self, peer_point: bytes) -> bytes:
        """ECDH of the node key with ``peer_point`` (an uncompressed P-256 point), inside the
        token; returns the shared secret (the caller derives a key from it and drops it)."""
        pkcs11 = _pkcs11()
        try:
            key = self._session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=NODE_KEY)
            secret = key.derive_key(
                pkcs11.KeyType.GENERIC_SECRET, 256,
                mechanism_param=(pkcs11.KDF.NULL, None, peer_point),
                template={pkcs11.Attribute.SENSITIVE: False, pkcs11.Attribute.EXTRACTABLE: True},
            )
            return bytes(secret[pkcs11.Attribute.VALUE])
        except pkcs11.exceptions.NoSuchKey as exc:
            raise KeyStoreError("node-key missing: run 'python run.py node enroll'") from exc
        except pkcs11.exceptions.PKCS11Error as exc:
            raise KeyStoreError(f"node key agreement failed: {exc!r}") from exc

    def biometric_master(self) -> TokenDiversifier:
        return TokenDiversifier(self._secret(BIOMETRIC_MASTER))

    def scp03_master(self) -> TokenDiversifier:
        return TokenDiversifier(self._secret(SCP03_MASTER))

    def csca_certificate_der(self) -> bytes:
        cert = x509.load_pem_x509_certificate((self.settings.keys_dir / "csca.pem").read_bytes())
        return cert.public_bytes(serialization.Encoding.DER)

    def csca_crl_der(self) -> bytes | None:
        """The CSCA's latest CRL (``keys/csca.crl``), or None before ``keys crl``."""
        path = self.settings.keys_dir / CRL_FILE
        return path.read_bytes() if path.exists() else None


# --- CSCA: revocation list (demo: the CSCA key is a file; a real CSCA is offline) ---------
CRL_FILE = "csca.crl"
_REVOKED_FILE = "csca-revoked.json"
DS_ARCHIVE = "document-signers"


def _csca(settings: Settings) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    keys_dir = settings.keys_dir
    try:
        key = serialization.load_pem_private_key((keys_dir / "csca-key.pem").read_bytes(), None)
        cert = x509.load_pem_x509_certificate((keys_dir / "csca.pem").read_bytes())
    except FileNotFoundError as exc:
        raise KeyStoreError(f"CSCA missing ({exc.filename}): run 'python run.py init'") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyStoreError(f"{keys_dir / 'csca-key.pem'}: the demo CSCA key is not an EC key")
    return key, cert


def revoke_document_signer(settings: Settings, serial: int,
                           reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise) -> bool:
    """Put a DS serial number on the CSCA's revocation list (issue the CRL afterwards);
    False when it was there already. The serial must be one of our document signers."""
    known = {x509.load_pem_x509_certificate(p.read_bytes()).serial_number
             for p in (settings.keys_dir / DS_ARCHIVE).glob("*.pem")}
    if serial not in known:
        raise KeyStoreError(f"no document signer with serial {serial:x} in keys/{DS_ARCHIVE}")
    path = settings.keys_dir / _REVOKED_FILE
    state: dict[str, Any] = (json.loads(path.read_text()) if path.exists()
                             else {"number": 0, "revoked": []})
    if any(int(r["serial"], 16) == serial for r in state["revoked"]):
        return False
    state["revoked"].append({"serial": f"{serial:x}", "reason": reason.value,
                             "revoked_at": datetime.now(UTC).isoformat()})
    path.write_text(json.dumps(state, indent=1) + "\n")
    return True


def issue_crl(
    settings: Settings, days: int | None = None
) -> x509.CertificateRevocationList:
    """Issue the CSCA's next CRL (number + 1) to ``keys/csca.crl`` (DER) and
    ``keys/csca-crl.pem``."""
    from chip import pki
    csca_key, csca = _csca(settings)
    path = settings.keys_dir / _REVOKED_FILE
    state: dict[str, Any] = (json.loads(path.read_text()) if path.exists()
                             else {"number": 0, "revoked": []})
    state["number"] += 1
    crl = pki.issue_crl(csca, csca_key, [
        pki.Revocation(int(r["serial"], 16), datetime.fromisoformat(r["revoked_at"]),
                       x509.ReasonFlags(r["reason"])) for r in state["revoked"]
    ], state["number"], datetime.now(UTC) - timedelta(minutes=5),
        pki.CRL_DAYS if days is None else days)
    path.write_text(json.dumps(state, indent=1) + "\n")
    (settings.keys_dir / CRL_FILE).write_bytes(crl.public_bytes(serialization.Encoding.DER))
    (settings.keys_dir / "csca-crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return crl


# --- EAC CV PKI files (demo: CVCA and DV keys are files; real ones are national authorities) --
_CV_STATE = "sequence.json"


def _eac_dir(settings: Settings) -> Path:
    path = settings.keys_dir / "eac"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _next_chr(settings: Settings, kind: str) -> str:
    """ID + mnemonic + a 5-digit sequence number, one counter per kind (CVCA, DV, IS)."""
    path = _eac_dir(settings) / _CV_STATE
    state: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
    state[kind] = state.get(kind, 0) + 1
    path.write_text(json.dumps(state) + "\n")
    return f"ID{kind}KTP{state[kind]:05d}"


@dataclass
class _SoftSigner:
    key: ec.EllipticCurvePrivateKey

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))


def _cv_authority(settings: Settings, name: str) -> tuple[ec.EllipticCurvePrivateKey, Any]:
    from chip import cvc

    eac_dir = _eac_dir(settings)
    try:
        key = serialization.load_pem_private_key((eac_dir / f"{name}-key.pem").read_bytes(), None)
        cert = cvc.parse_cv_certificate((eac_dir / f"{name}.cvcert").read_bytes())
    except FileNotFoundError as exc:
        raise KeyStoreError(f"EAC {name.upper()} missing ({exc.filename}): run "
                            "'python run.py keys eac-init'") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyStoreError(f"EAC {name.upper()} key is not an EC key")
    return key, cert


def _link_paths(settings: Settings) -> list[Path]:
    """The CVCA link certificates, oldest first (named by sequence)."""
    return sorted((_eac_dir(settings) / "links").glob("*.cvcert"))


def _new_cvca(settings: Settings, previous: tuple[ec.EllipticCurvePrivateKey, Any] | None,
              days: int = CVCA_DAYS) -> str:
    """A new CVCA key and self-signed certificate; with ``previous``, also the link
    certificate (the new key certified by the old one) cards that trust the old CVCA accept."""
    from chip import cvc

    eac_dir = _eac_dir(settings)
    key = ec.generate_private_key(ec.SECP256R1())
    chr_ = _next_chr(settings, "CVCA")
    today = datetime.now(UTC).date()
    rights = cvc.READ_DG3 | cvc.READ_DG4
    cert = cvc.issue(_SoftSigner(key), chr_, chr_, key.public_key(), cvc.Role.CVCA, rights,
                     today, today + timedelta(days=days))
    if previous is not None:
        old_key, old = previous
        link = cvc.issue(_SoftSigner(old_key), old.chr, chr_, key.public_key(), cvc.Role.CVCA,
                         rights, today, today + timedelta(days=days))
        (eac_dir / "links").mkdir(exist_ok=True)
        (eac_dir / "links" / f"{chr_}.cvcert").write_bytes(link.raw)
        (eac_dir / "archive").mkdir(exist_ok=True)
        (eac_dir / "archive" / f"{old.chr}.cvcert").write_bytes(old.raw)
    _write_private(eac_dir / "cvca-key.pem", key)
    (eac_dir / CVCA_CERT).write_bytes(cert.raw)
    return chr_


def _new_dv(settings: Settings, days: int = DV_DAYS) -> str:
    """A new DV key (file) and its certificate from the current CVCA."""
    from chip import cvc

    cvca_key, cvca = _cv_authority(settings, "cvca")
    key = ec.generate_private_key(ec.SECP256R1())
    chr_ = _next_chr(settings, "DV")
    today = datetime.now(UTC).date()
    cert = cvc.issue(_SoftSigner(cvca_key), cvca.chr, chr_, key.public_key(),
                     cvc.Role.DV_DOMESTIC, cvc.READ_DG3 | cvc.READ_DG4, today,
                     today + timedelta(days=days))
    _write_private(_eac_dir(settings) / "dv-key.pem", key)
    (_eac_dir(settings) / DV_CERT).write_bytes(cert.raw)
    return chr_


def rotate_cv_authority(store: KeyStore, level: str, days: int | None = None) -> list[str]:
    """Roll the CV PKI at ``level`` ("cvca", "dv" or "is") and everything below it; returns
    the new CHRs. A CVCA rollover leaves a link certificate for cards that trust the old one."""
    settings = store.settings
    made = []
    if level == "cvca":
        made.append(_new_cvca(settings, _cv_authority(settings, "cvca"), days or CVCA_DAYS))
    if level in ("cvca", "dv"):
        made.append(_new_dv(settings, days or DV_DAYS if level == "dv" else DV_DAYS))
    made.append(store.rotate_inspection_system(days or IS_DAYS if level == "is" else IS_DAYS))
    return made


def _demo_scp03_master(settings: Settings) -> bytes:
    path = settings.keys_dir / "scp03-demo-master.hex"
    if not path.exists():
        from chip.softkeys import DEMO_SCP03_MASTER_HEX

        path.write_text(DEMO_SCP03_MASTER_HEX + "\n")
    return bytes.fromhex(path.read_text().strip())


@dataclass
class TokenDocumentSigner:
    """``chip.api.DocumentSigner`` backed by the token's EC key (SoftHSM has no
    CKM_ECDSA_SHA256: hash here, sign raw, DER-encode r‖s)."""

    _key: Any
    _certificate_der: bytes
    usage_end: datetime | None = None  # the certificate's PrivateKeyUsagePeriod notAfter

    @property
    def certificate_der(self) -> bytes:
        return self._certificate_der

    def check_usage_period(self) -> None:
        """:class:`KeyStoreError` once the private-key usage period is over."""
        if self.usage_end is not None and datetime.now(UTC) > self.usage_end:
            raise KeyStoreError(
                f"the document signer's private key usage period ended on "
                f"{self.usage_end:%Y-%m-%d}: run 'python run.py keys rotate-ds'")

    def sign(self, data: bytes) -> bytes:
        self.check_usage_period()
        pkcs11 = _pkcs11()
        raw = bytes(self._key.sign(hashlib.sha256(data).digest(), mechanism=pkcs11.Mechanism.ECDSA))
        half = len(raw) // 2
        return encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )


@dataclass
class TokenDiversifier:
    """``chip.api.KeyDiversifier``: AES-CMAC computed inside the token."""

    _key: Any

    def cmac(self, data: bytes) -> bytes:
        return bytes(self._key.sign(data, mechanism=_pkcs11().Mechanism.AES_CMAC))
