"""Personalization keys in production: ``init`` without ``--dev`` never imports the published
development key and refuses a token that holds it; ``keys import-perso`` assembles the SCP03
master from key components in the SoftHSM token, printing each KCV."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chip.scp03 import aes_cmac, key_check_value
from chip.softkeys import DEMO_SCP03_MASTER_HEX
from printsrv import PROJECT_ROOT
from printsrv.config import load_settings
from printsrv.keys import SCP03_MASTER, KeyStore

C1 = "404142434445464748494A4B4C4D4E4F"  # GlobalPlatformPro's KCV vector: 504A77
C2 = "00112233445566778899AABBCCDDEEFF"
C3 = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"


def _run(instance: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(instance)}
    env.pop("PRINTSRV_DATABASE_URL", None)
    env.pop("PRINTSRV_CONFIG", None)
    return subprocess.run([sys.executable, "run.py", *args], cwd=PROJECT_ROOT, env=env,
                          input=stdin, capture_output=True, text=True, timeout=300)


def _xor(*parts: str) -> bytes:
    out = bytes(16)
    for p in parts:
        out = bytes(a ^ b for a, b in zip(out, bytes.fromhex(p), strict=True))
    return out


def test_production_init_and_key_ceremony(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    done = _run(instance, "init")
    assert done.returncode == 0, done.stderr
    assert "keys import-perso" in done.stdout
    settings = load_settings(overrides={"instance_dir": instance})
    with KeyStore.open(settings) as store:
        assert SCP03_MASTER in store.missing_keys()  # no development key slipped in

    # a mistyped component is caught by its KCV before anything is imported
    bad = _run(instance, "keys", "import-perso", stdin=f"{C1}:504A77\n{C2}:000000\n{C3}\n")
    assert bad.returncode == 1 and "component 2 KCV" in bad.stderr

    done = _run(instance, "keys", "import-perso", stdin=f"{C1}:504a77\n{C2}\n{C3}\n")
    assert done.returncode == 0, done.stderr
    master = _xor(C1, C2, C3)
    lines = done.stdout.splitlines()
    assert lines[0] == "component 1 KCV 504A77"
    assert lines[1] == f"component 2 KCV {key_check_value(bytes.fromhex(C2)).hex().upper()}"
    assert lines[2] == f"component 3 KCV {key_check_value(bytes.fromhex(C3)).hex().upper()}"
    assert lines[3] == f"{SCP03_MASTER} KCV {key_check_value(master).hex().upper()} imported" \
        " into the token"
    with KeyStore.open(settings) as store:
        assert store.scp03_master().cmac(b"probe") == aes_cmac(master, b"probe")
        assert not store.scp03_master_is_development()

    again = _run(instance, "keys", "import-perso", "--components", "2", stdin=f"{C1}\n{C2}\n")
    assert again.returncode == 1 and "--replace" in again.stderr
    # components that add up to the published development key are refused
    dev_part = _xor(DEMO_SCP03_MASTER_HEX, C1).hex()
    refused = _run(instance, "keys", "import-perso", "--components", "2", "--replace",
                   stdin=f"{C1}\n{dev_part}\n")
    assert refused.returncode == 1 and "development key" in refused.stderr
    assert _run(instance, "init").returncode == 0  # a production token stays acceptable


def test_init_refuses_the_development_key_outside_dev(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    assert _run(instance, "init", "--dev").returncode == 0
    assert _run(instance, "init", "--dev").returncode == 0
    refused = _run(instance, "init")
    assert refused.returncode == 1
    assert "published development key" in refused.stderr
    fixed = _run(instance, "keys", "import-perso", "--replace", stdin=f"{C1}\n{C2}\n{C3}\n")
    assert fixed.returncode == 0, fixed.stderr
    assert _run(instance, "init").returncode == 0
