"""The document signer in the SoftHSM token: rotation retires the old key, and a key whose
private-key usage period has ended signs nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509

from chip import pki
from printsrv.config import load_settings
from printsrv.errors import KeyStoreError
from printsrv.keys import DOCUMENT_SIGNER, KeyStore, init_token


def test_rotation_and_the_end_of_the_usage_period(tmp_path: Path) -> None:
    settings = load_settings(overrides={"instance_dir": tmp_path / "instance"})
    init_token(settings)
    keys_dir = settings.keys_dir
    with KeyStore.open(settings) as store:
        cached = store.document_signer()  # what a long-running station holds
        first = x509.load_der_x509_certificate(cached.certificate_der)
        assert cached.sign(b"x")
        version = store.document_signer_version()
        old, new = store.rotate_document_signer(usage_days=0)  # ends as it begins
        assert store.document_signer_version() != version  # the station takes the new one
        cached.usage_end = datetime.now(UTC) - timedelta(seconds=1)
        with pytest.raises(KeyStoreError, match="usage period ended"):
            cached.sign(b"x")  # a signer held past its period signs nothing
        assert old is not None and old.serial_number == first.serial_number
        period = pki.private_key_usage_period(new)
        assert period is not None and period[0] == period[1]
        with pytest.raises(KeyStoreError, match="usage period ended"):
            store.document_signer()
        old2, newest = store.rotate_document_signer()
        assert old2 is not None and old2.serial_number == new.serial_number
        signer = store.document_signer()
        assert x509.load_der_x509_certificate(signer.certificate_der) == newest
        assert store.missing_keys() == []
        labels = {o.label for o in store._session.get_objects(
            {pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY})}
    assert {f"{DOCUMENT_SIGNER}-retired-{first.serial_number:x}",
            f"{DOCUMENT_SIGNER}-retired-{new.serial_number:x}", DOCUMENT_SIGNER} <= labels
    archived = {p.stem for p in (keys_dir / "document-signers").glob("*.pem")}
    assert archived == {f"{c.serial_number:x}" for c in (first, new, newest)}
