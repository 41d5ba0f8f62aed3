"""``run.py serve --workers 2``: gunicorn with two pre-forked workers serves the app, and writes
from both workers (sign-ins are audit events) go through on SQLite."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from printsrv.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_serve_with_gunicorn_workers(sqlite_settings: Settings, tmp_path: Path) -> None:
    pytest.importorskip("gunicorn", reason="gunicorn is not installed (requirements.txt)")
    import requests

    from printsrv.db import unit_of_work
    from printsrv.models import Role
    from printsrv.web.auth_service import create_user
    from printsrv.web.services import ensure_office

    with unit_of_work(sqlite_settings) as s:
        create_user(s, "op1", Role.OPERATOR, ensure_office(s, "35.26.01"), "kata sandi panjang",
                    actor="test")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTSRV_")}
    env["PRINTSRV_INSTANCE_DIR"] = str(sqlite_settings.instance_dir)
    env["PRINTSRV_DATABASE_URL"] = sqlite_settings.sqlalchemy_url
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "run.py", "serve", "--port", str(port), "--workers", "2", "--threads",
         "2", "--insecure-cookies"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(base + "/login", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        for _ in range(6):  # new connections: both workers take some
            with requests.Session() as client:
                page = client.get(base + "/login").text
                token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
                token = token or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
                assert token
                resp = client.post(base + "/login", allow_redirects=False, data={
                    "username": "op1", "password": "kata sandi panjang",
                    "csrf_token": token.group(1)})
                assert resp.status_code == 302
                assert client.get(base + "/queue").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    assert "gunicorn workers" in (tmp_path / "serve.log").read_text()
