"""Settings precedence and strictness; the token's keys do what the server relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from printsrv.config import load_settings
from printsrv.errors import ConfigError, KeyStoreError
from printsrv.keys import KeyStore


def test_precedence_file_then_env_then_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "s.toml"
    conf.write_text('database_url = "sqlite:///from-file.db"\nmax_image_pixels = 123\n')
    s = load_settings(conf)
    assert s.database_url == "sqlite:///from-file.db" and s.max_image_pixels == 123
    monkeypatch.setenv("PRINTSRV_MAX_IMAGE_PIXELS", "456")
    assert load_settings(conf).max_image_pixels == 456
    assert load_settings(conf, overrides={"max_image_pixels": 789}).max_image_pixels == 789


def test_unknown_key_and_bad_value_are_errors(tmp_path: Path) -> None:
    conf = tmp_path / "s.toml"
    conf.write_text('databse_url = "x"\n')
    with pytest.raises(ConfigError, match="unknown key 'databse_url'"):
        load_settings(conf)
    conf.write_text('max_image_pixels = "lots"\n')
    with pytest.raises(ConfigError, match="max_image_pixels"):
        load_settings(conf)


def test_reprint_window_from_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRINTSRV_REPRINT_WINDOW_DAYS", raising=False)
    monkeypatch.delenv("PRINTSRV_CONFIG", raising=False)
    assert load_settings(overrides={"instance_dir": tmp_path}).reprint_window_days == 0
    conf = tmp_path / "s.toml"
    conf.write_text("reprint_window_days = 30\n")
    assert load_settings(conf).reprint_window_days == 30
    monkeypatch.setenv("PRINTSRV_REPRINT_WINDOW_DAYS", "14")
    assert load_settings(conf).reprint_window_days == 14
    monkeypatch.setenv("PRINTSRV_REPRINT_WINDOW_DAYS", "-1")
    with pytest.raises(ConfigError, match="reprint_window_days"):
        load_settings(conf)
    monkeypatch.delenv("PRINTSRV_REPRINT_WINDOW_DAYS")
    for bad in ("1.5", "true", '"a month"'):
        conf.write_text(f"reprint_window_days = {bad}\n")
        with pytest.raises(ConfigError, match="reprint_window_days"):
            load_settings(conf)


def test_pin_never_in_repr(tmp_path: Path) -> None:
    s = load_settings(overrides={"instance_dir": tmp_path, "token_pin": "s3cret-pin"})
    assert "s3cret-pin" not in repr(s)


def test_data_key_wrap_is_bound_to_its_record(instance_dir: Path) -> None:
    s = load_settings(overrides={"instance_dir": instance_dir})
    with KeyStore.open(s) as keys:
        wrapped = keys.wrap_data_key(b"k" * 32, b"REQ-1")
        assert b"k" * 32 not in wrapped
        assert keys.unwrap_data_key(wrapped, b"REQ-1") == b"k" * 32
        with pytest.raises(KeyStoreError):
            keys.unwrap_data_key(wrapped, b"REQ-2")
        tampered = wrapped[:-1] + bytes([wrapped[-1] ^ 1])
        with pytest.raises(KeyStoreError):
            keys.unwrap_data_key(tampered, b"REQ-1")


def test_document_signer_chains_to_csca(instance_dir: Path) -> None:
    s = load_settings(overrides={"instance_dir": instance_dir})
    with KeyStore.open(s) as keys:
        signer = keys.document_signer()
        cert = x509.load_der_x509_certificate(signer.certificate_der)
        signature = signer.sign(b"data groups")
        cert.public_key().verify(signature, b"data groups", ec.ECDSA(hashes.SHA256()))
        csca = x509.load_der_x509_certificate(keys.csca_certificate_der())
        cert.verify_directly_issued_by(csca)
        a, b = keys.biometric_master().cmac(b"card-1"), keys.biometric_master().cmac(b"card-2")
        assert len(a) == 16 and a != b


def test_wrong_pin_is_a_clear_error(instance_dir: Path) -> None:
    s = load_settings(overrides={"instance_dir": instance_dir, "token_pin": "0000"})
    with pytest.raises(KeyStoreError, match="cannot open token"), KeyStore.open(s):
        pass


def test_token_file_emptied_by_a_kill_is_mended(tmp_path: Path) -> None:
    """SoftHSM rewrites its token file at every login; a process killed in that instant leaves
    it empty (seen under the station crash test). The next opening puts back the copy made at
    creation, and the keys are all there."""
    from printsrv.keys import init_token

    s = load_settings(overrides={"instance_dir": tmp_path / "instance"})
    init_token(s)
    with KeyStore.open(s) as keys:
        wrapped = keys.wrap_data_key(b"k" * 32, b"REQ-1")
    (token_file,) = (s.softhsm_conf_path.parent / "tokens").glob("*/token.object")
    token_file.write_bytes(b"")
    with KeyStore.open(s) as keys:
        assert keys.unwrap_data_key(wrapped, b"REQ-1") == b"k" * 32
    assert token_file.stat().st_size > 0
    # Without the copy, the emptied file is the end of the token: the mending is what works.
    token_file.write_bytes(b"")
    token_file.with_name("token.object.saved").unlink()
    with pytest.raises(KeyStoreError), KeyStore.open(s):
        pass
