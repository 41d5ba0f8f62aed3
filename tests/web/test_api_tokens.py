"""API tokens: list, revoke, expiry, a name in use, a client token imports only its own
offices' batches, and the search by request id matches ids (exactly or by their start)."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from printsrv import PROJECT_ROOT
from printsrv.db import unit_of_work
from printsrv.models import Office, Record
from printsrv.web.models import ApiToken, TokenScope
from printsrv.web.services import create_token


def _token(settings: Any, office_key: str, world: Any, name: str = "client1") -> str:
    with unit_of_work(settings) as s:
        office = s.get_one(Office, world.offices[office_key])
        return create_token(s, name, TokenScope.CLIENT, office, actor="test")


def _cli(settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PRINTSRV_INSTANCE_DIR": str(settings.instance_dir),
           "PRINTSRV_DATABASE_URL": settings.sqlalchemy_url, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "run.py", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_list_revoke_and_a_name_in_use(app: Any, settings: Any, world: Any) -> None:
    secret = _token(settings, "own", world)
    headers = {"Authorization": f"Bearer {secret}"}
    client = app.test_client()
    assert client.get("/api/v1/stats", headers=headers).status_code == 200
    again = _cli(settings, "token", "add", "client1", "--scope", "client", "--office", "35.26")
    assert again.returncode == 1 and "a token named 'client1' exists" in again.stderr
    assert "Traceback" not in again.stderr and "IntegrityError" not in again.stderr
    listed = _cli(settings, "token", "list")
    assert listed.returncode == 0 and "client1" in listed.stdout and secret[:12] in listed.stdout
    assert secret not in listed.stdout  # the secret itself is never shown again
    assert _cli(settings, "token", "revoke", "client1").returncode == 0
    assert client.get("/api/v1/stats", headers=headers).status_code == 401


def test_an_expired_token_stops_working(app: Any, settings: Any, world: Any) -> None:
    done = _cli(settings, "token", "add", "short", "--scope", "client", "--office", "35.26.01",
                "--expires", "30d")
    assert done.returncode == 0, done.stderr
    headers = {"Authorization": f"Bearer {done.stdout.strip()}"}
    client = app.test_client()
    assert client.get("/api/v1/stats", headers=headers).status_code == 200
    with unit_of_work(settings) as s:
        s.execute(update(ApiToken).where(ApiToken.name == "short").values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert client.get("/api/v1/stats", headers=headers).status_code == 401
    assert _cli(settings, "token", "add", "x", "--scope", "client", "--office", "35.26.01",
                "--expires", "soon").returncode == 2


def _zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


def test_a_client_token_imports_only_its_offices(app: Any, settings: Any, world: Any,
                                                 tmp_path: Path) -> None:
    from printsrv.intake.demo import write_demo_batch

    batch = write_demo_batch(settings, 3, tmp_path / "b", seed=4, batch_id="SCOPE-1",
                             office_codes=["35.26.01"])
    body = _zip(batch)
    client = app.test_client()
    with unit_of_work(settings) as s:
        before = s.scalar(select(func.count()).select_from(Record))
    other = _token(settings, "other", world, name="other-office")   # 35.27.01
    resp = client.post("/api/v1/batches", data=body, headers={
        "Authorization": f"Bearer {other}", "Content-Type": "application/zip"})
    assert resp.status_code == 403, resp.data[:300]
    assert "outside this client's office 35.27.01" in resp.get_data(as_text=True)
    with unit_of_work(settings) as s:
        assert s.scalar(select(func.count()).select_from(Record)) == before  # nothing imported
    own = _token(settings, "reg_a", world, name="regency")  # 35.26 sees 35.26.01
    resp = client.post("/api/v1/batches", data=body, headers={
        "Authorization": f"Bearer {own}", "Content-Type": "application/zip"})
    assert resp.status_code == 200, resp.data[:300]


def test_search_matches_request_ids_not_names(app: Any, settings: Any, world: Any) -> None:
    secret = _token(settings, "own", world)
    headers = {"Authorization": f"Bearer {secret}"}
    with unit_of_work(settings) as s:
        rec = s.get_one(Record, world.records["own_queued"])
        rid = rec.request_id
        rec.nama = "WARGAXYZ"  # a name that is also a prefix someone might type
    client = app.test_client()
    found = client.post("/api/v1/records/search", json={"request_id": rid}, headers=headers)
    assert [r["request_id"] for r in found.get_json()["records"]] == [rid]
    prefix = client.post("/api/v1/records/search", json={"request_id": rid[:6]},
                         headers=headers).get_json()["records"]
    assert rid in [r["request_id"] for r in prefix]
    by_name = client.post("/api/v1/records/search", json={"request_id": "WARGAXYZ"},
                          headers=headers).get_json()["records"]
    assert by_name == []
