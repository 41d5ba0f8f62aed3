"""Sign-in and sessions (issue 14): the second factor respects the lockout and counts on the
server, sign-out and account changes end sessions, a TOTP code works once, enrolment never
replaces a secret, the enrolment page shows a QR code, names are unique without case."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from printsrv import PROJECT_ROOT
from printsrv.db import unit_of_work
from printsrv.models import AuditEvent, Role, User
from tests.web.conftest import PASSWORD
from tests.web.test_security import _csrf, _login


def _with_secret(settings: Any, name: str) -> str:
    secret = pyotp.random_base32()
    with unit_of_work(settings) as s:
        s.scalars(select(User).where(User.username == name)).one().totp_secret = secret
    return secret


def _user(settings: Any, name: str) -> User:
    with unit_of_work(settings) as s:
        user = s.scalars(select(User).where(User.username == name)).one()
        s.expunge(user)
        return user


def test_totp_guesses_stop_at_the_lock_even_with_a_replayed_cookie(
    app: Any, settings: Any, world: Any
) -> None:
    secret = _with_secret(settings, "supervisor_own")
    client = app.test_client()
    assert _login(client, "supervisor_own").headers["Location"].endswith("/login/totp")
    page = client.get("/login/totp").get_data(as_text=True)
    token = _csrf(page)
    saved = client.get_cookie("printsrv").value  # the cookie after the password step
    statuses = []
    for _ in range(8):
        client.set_cookie("printsrv", saved)  # replay it: it must not reset the count
        statuses.append(client.post("/login/totp", data={"code": "000000",
                                                         "csrf_token": token}).status_code)
    assert _user(settings, "supervisor_own").locked_until is not None
    # The right code, through the replayed cookie, while locked: refused.
    client.set_cookie("printsrv", saved)
    right = client.post("/login/totp", data={"code": pyotp.TOTP(secret).now(),
                                             "csrf_token": token})
    assert right.status_code == 401 and "dikunci" in right.get_data(as_text=True)
    assert client.get("/queue").status_code == 302
    with unit_of_work(settings) as s:
        failures = s.scalars(select(AuditEvent).where(
            AuditEvent.tag == "web:session:login_failed",
            AuditEvent.actor == "supervisor_own")).all()
    counted = [e for e in failures if e.details.get("reason") == "totp"]
    assert len(counted) == 5, "no more than five guesses before the lock"


def test_a_totp_code_works_once(app: Any, settings: Any, world: Any) -> None:
    secret = _with_secret(settings, "operator_own")
    code = pyotp.TOTP(secret).now()
    first = app.test_client()
    _login(first, "operator_own")
    page = first.get("/login/totp").get_data(as_text=True)
    assert first.post("/login/totp", data={"code": code,
                                           "csrf_token": _csrf(page)}).status_code == 302
    second = app.test_client()
    _login(second, "operator_own")
    page = second.get("/login/totp").get_data(as_text=True)
    again = second.post("/login/totp", data={"code": code, "csrf_token": _csrf(page)})
    assert again.status_code == 401 and second.get("/queue").status_code == 302


def test_logout_ends_the_session_for_a_saved_cookie(app: Any, settings: Any,
                                                    world: Any) -> None:
    client = app.test_client()
    _login(client, "operator_own")
    assert client.get("/queue").status_code == 200
    saved = client.get_cookie("printsrv").value
    page = client.get("/queue").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": _csrf(page)}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("printsrv", saved)
    assert thief.get("/queue").status_code == 302  # back to the sign-in page


@pytest.mark.parametrize("change", ["passwd", "role", "sign-out", "reset-totp"])
def test_account_changes_end_every_session(app: Any, settings: Any, world: Any,
                                           change: str) -> None:
    clients = [app.test_client(), app.test_client()]
    for c in clients:
        _login(c, "operator_own")
        assert c.get("/queue").status_code == 200
    args = {"passwd": ["passwd", "operator_own"], "role": ["role", "operator_own", "auditor"],
            "sign-out": ["sign-out", "operator_own"],
            "reset-totp": ["reset-totp", "operator_own"]}[change]
    env = {"PRINTSRV_INSTANCE_DIR": str(settings.instance_dir),
           "PRINTSRV_DATABASE_URL": settings.sqlalchemy_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "run.py", "user", *args, "--actor", "admin1"],
                          input="another long password\n", cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for c in clients:
        assert c.get("/queue").status_code == 302
    with unit_of_work(settings) as s:
        ended = s.scalars(select(AuditEvent).where(
            AuditEvent.tag == "admin:user:sessions_end")).all()
    assert ended and ended[-1].details["sessions"] == 2 and ended[-1].actor == "admin1"


def test_enrolment_never_replaces_a_secret(app: Any, settings: Any, world: Any) -> None:
    client = app.test_client()
    _login(client, "supervisor_own")
    page = client.get("/login/enrol").get_data(as_text=True)
    assert "<svg" in page  # the QR code of the otpauth URI
    stale_cookie = client.get_cookie("printsrv").value
    secret = page.split('<code class="secret">')[1].split("<")[0]
    assert client.post("/login/enrol", data={"code": pyotp.TOTP(secret).now(),
                                             "csrf_token": _csrf(page)}).status_code == 302
    enrolled = _user(settings, "supervisor_own").totp_secret
    assert enrolled is not None and enrolled.startswith("enc1:") and secret not in enrolled
    # The stale enrolment cookie (another secret in it, say an attacker's) changes nothing.
    attacker = app.test_client()
    attacker.set_cookie("printsrv", stale_cookie)
    other = pyotp.random_base32()
    with attacker.session_transaction() as sess:
        sess["enrol_secret"] = other
    attacker.post("/login/enrol", data={"code": pyotp.TOTP(other).now(),
                                        "csrf_token": _csrf(page)})
    assert _user(settings, "supervisor_own").totp_secret == enrolled


def test_a_secret_found_in_clear_is_sealed_at_its_next_use(app: Any, settings: Any,
                                                           world: Any) -> None:
    secret = _with_secret(settings, "operator_own")  # as an older version stored it
    client = app.test_client()
    _login(client, "operator_own")
    page = client.get("/login/totp").get_data(as_text=True)
    assert client.post("/login/totp", data={"code": pyotp.TOTP(secret).now(),
                                            "csrf_token": _csrf(page)}).status_code == 302
    stored = _user(settings, "operator_own").totp_secret
    assert stored is not None and stored.startswith("enc1:") and secret not in stored


def test_user_names_are_unique_without_case(app: Any, settings: Any, world: Any) -> None:
    from printsrv.web.auth_service import create_user

    with unit_of_work(settings) as s:
        office = s.scalars(select(User).where(User.username == "operator_own")).one().office
        with pytest.raises(ValueError, match="exists"):
            create_user(s, "Operator_Own", Role.OPERATOR, office, PASSWORD)
    # Signing in does not depend on the case typed.
    client = app.test_client()
    assert _login(client, "OPERATOR_OWN").status_code == 302
    assert client.get("/queue").status_code == 200


def test_next_steps_code_still_signs_in(app: Any, settings: Any, world: Any) -> None:
    secret = _with_secret(settings, "operator_own")
    client = app.test_client()
    _login(client, "operator_own")
    page = client.get("/login/totp").get_data(as_text=True)
    code = pyotp.TOTP(secret).at(time.time() + 30)  # a fast phone clock: one step ahead
    assert client.post("/login/totp", data={"code": code,
                                            "csrf_token": _csrf(page)}).status_code == 302
