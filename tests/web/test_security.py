"""Sign-in, lockout, TOTP, CSRF on every form, security headers, no personal data in URLs."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select

from printsrv import audit
from printsrv.config import Settings
from printsrv.db import session_factory, unit_of_work
from printsrv.models import AuditEvent, User
from tests.web.conftest import PASSWORD, World, sign_in

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def _csrf(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF token in form"
    return m.group(1) or m.group(2)


def _login(client, username: str, password: str = PASSWORD):
    token = _csrf(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def test_operator_logs_in_with_password(app: Flask, world: World) -> None:
    client = app.test_client()
    resp = _login(client, "operator_own")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/")
    assert client.get("/queue").status_code == 200


def test_wrong_password_then_lockout(app: Flask, settings: Settings, world: World) -> None:
    client = app.test_client()
    for _ in range(4):
        assert _login(client, "operator_own", "wrong password!").status_code == 401
    resp = _login(client, "operator_own", "wrong password!")
    assert resp.status_code == 401 and "dikunci" in resp.get_data(as_text=True)
    # even the right password is refused while locked
    resp = _login(client, "operator_own")
    assert resp.status_code == 401 and "dikunci" in resp.get_data(as_text=True)
    with unit_of_work(settings) as s:
        user = s.query(User).filter_by(username="operator_own").one()
        assert user.locked_until is not None
        tags = [e.tag for e in s.query(AuditEvent).order_by(AuditEvent.seq)]
    assert tags.count("web:session:login_failed") == 6 and "web:session:locked" in tags


def test_unknown_user_is_a_plain_failure(app: Flask, world: World) -> None:
    resp = _login(app.test_client(), "nobody")
    assert resp.status_code == 401 and "salah" in resp.get_data(as_text=True)


def test_supervisor_must_enrol_totp_then_use_it(app: Flask, settings: Settings,
                                                world: World) -> None:
    client = app.test_client()
    resp = _login(client, "supervisor_own")
    assert resp.headers["Location"].endswith("/login/enrol")
    assert client.get("/queue").status_code == 302  # not signed in until enrolled
    page = client.get("/login/enrol").get_data(as_text=True)
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
    bad = client.post("/login/enrol", data={"code": "000000", "csrf_token": _csrf(page)})
    assert "Kode salah" in bad.get_data(as_text=True)
    ok = client.post(
        "/login/enrol", data={"code": pyotp.TOTP(secret).now(), "csrf_token": _csrf(page)}
    )
    assert ok.status_code == 302 and client.get("/queue").status_code == 200
    # next time: password, then TOTP
    client2 = app.test_client()
    resp = _login(client2, "supervisor_own")
    assert resp.headers["Location"].endswith("/login/totp")
    page = client2.get("/login/totp").get_data(as_text=True)
    assert client2.post("/login/totp", data={"code": "123456", "csrf_token": _csrf(page)}
                        ).status_code == 401
    # The enrolment used this step's code; a code is good once, so the next step's code.
    next_code = pyotp.TOTP(secret).at(time.time() + 30)
    resp = client2.post("/login/totp", data={"code": next_code, "csrf_token": _csrf(page)})
    assert resp.status_code == 302 and client2.get("/queue").status_code == 200


def test_optional_totp_for_operator(app: Flask, settings: Settings, world: World) -> None:
    secret = pyotp.random_base32()
    with unit_of_work(settings) as s:
        s.query(User).filter_by(username="operator_own").one().totp_secret = secret
    client = app.test_client()
    assert _login(client, "operator_own").headers["Location"].endswith("/login/totp")
    assert client.get("/queue").status_code == 302


def test_logout_needs_post_with_csrf(app: Flask, settings: Settings, world: World) -> None:
    client = app.test_client()
    _login(client, "operator_own")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no CSRF token
    page = client.get("/queue").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": _csrf(page)}).status_code == 302
    assert client.get("/queue").status_code == 302


def _forms(html: str) -> list[str]:
    return re.findall(r"<form\b.*?</form>", html, flags=re.S)


@pytest.mark.parametrize("username", ["operator_own", "supervisor_own", "auditor_own"])
def test_every_form_has_csrf(app: Flask, settings: Settings, world: World, username: str) -> None:
    client = app.test_client()
    sign_in(client, settings, username)
    pages = ["/queue", "/held", "/audit", "/approvals",
             f"/records/{world.records['own_held']}", f"/records/{world.records['own_issued']}"]
    seen = 0
    for page in pages:
        resp = client.get(page)
        if resp.status_code != 200:
            continue
        for form in _forms(resp.get_data(as_text=True)):
            seen += 1
            if 'method="post"' in form:
                assert 'name="csrf_token"' in form, form[:200]
            assert 'method="get"' not in form.lower()  # no form leaks its fields into a URL
    assert seen


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/records/{held}/release", {"note": "x"}),
        ("/records/{held}/reject", {"note": "x"}),
        ("/records/{issued}/reprint", {"reason": "x"}),
        ("/queue", {"q": "3526014508000001"}),
        ("/lang", {"lang": "en"}),
    ],
)
def test_posts_without_csrf_are_refused(app: Flask, settings: Settings, world: World,
                                        path: str, data: dict[str, str]) -> None:
    client = app.test_client()
    sign_in(client, settings, "supervisor_own")
    url = path.format(held=world.records["own_held"], issued=world.records["own_issued"])
    resp = client.post(url, data=data)
    assert resp.status_code == 400


def test_security_headers(app: Flask, settings: Settings, world: World) -> None:
    client = app.test_client()
    sign_in(client, settings, "operator_own")
    for path in ("/login", "/queue", "/api/openapi.json"):
        h = client.get(path).headers
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert "script-src 'self'" in h["Content-Security-Policy"]
        assert h["X-Frame-Options"] == "DENY"
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "no-referrer"
        assert h["Cache-Control"] == "no-store"


def test_session_cookie_flags(settings: Settings, world: World) -> None:
    from printsrv.web import create_app

    app = create_app(settings, {"TESTING": True})  # production defaults
    client = app.test_client()
    resp = _login(client, "operator_own")
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("__Host-printsrv=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie


def test_no_personal_data_in_urls_or_logs(app: Flask, settings: Settings, world: World,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """Search is a POST; links carry only internal ids and states; nothing logs a NIK."""
    client = app.test_client()
    sign_in(client, settings, "supervisor_own")
    with session_factory(settings)() as s:
        niks = [r.nik for r in s.query(__import__("printsrv.models").models.Record)]
        names = [r.nama for r in s.query(__import__("printsrv.models").models.Record)]
    page = client.get("/queue").get_data(as_text=True)
    page += client.post("/queue", data={"q": niks[0], "csrf_token": _csrf(page)}).get_data(
        as_text=True
    )
    page += client.get(f"/records/{world.records['own_held']}").get_data(as_text=True)
    urls = re.findall(r'(?:href|action|formaction|src)="([^"]*)"', page)
    assert urls
    for url in urls:
        for secret in niks + names:
            assert secret not in url and secret.replace(" ", "+") not in url
    for record in caplog.records:
        for nik in niks:
            assert nik not in record.getMessage()


def test_views_are_audited(app: Flask, settings: Settings, world: World) -> None:
    client = app.test_client()
    sign_in(client, settings, "supervisor_own")
    client.get("/queue")
    client.get(f"/records/{world.records['own_held']}")
    client.get("/audit")
    with unit_of_work(settings) as s:
        events = {e.tag: e for e in s.query(AuditEvent)}
        assert events["web:queue:view"].actor == "supervisor_own"
        assert events["web:record:view"].subject == "PC-35260101-000002".replace("0101", "01")
        assert "web:audit:view" in events
        assert audit.verify(s).ok


def test_each_users_views_go_to_their_own_chain(app: Flask, settings: Settings,
                                                world: World) -> None:
    for username in ("supervisor_own", "operator_own", "supervisor_own"):
        client = app.test_client()
        sign_in(client, settings, username)
        assert client.get("/queue").status_code == 200
    with unit_of_work(settings) as s:
        views = s.execute(select(AuditEvent.chain, AuditEvent.chain_seq, AuditEvent.actor)
                          .where(AuditEvent.tag == "web:queue:view")
                          .order_by(AuditEvent.seq)).all()
        assert [tuple(v) for v in views] == [
            ("user:supervisor_own", 1, "supervisor_own"),
            ("user:operator_own", 1, "operator_own"),
            ("user:supervisor_own", 2, "supervisor_own"),
        ]
        assert audit.verify(s).ok


def test_audit_page_shows_chain_status(app: Flask, settings: Settings, world: World) -> None:
    client = app.test_client()
    sign_in(client, settings, "auditor_own")
    assert "Rantai hash utuh" in client.get("/audit").get_data(as_text=True)
    with unit_of_work(settings) as s:
        ev = s.query(AuditEvent).order_by(AuditEvent.seq).first()
        ev.actor = "tampered"
    assert "RUSAK" in client.get("/audit").get_data(as_text=True)


def test_english_is_selectable(app: Flask, settings: Settings, world: World) -> None:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert "Masuk" in page
    client.post("/lang", data={"lang": "en", "next": "/login", "csrf_token": _csrf(page)})
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in" in page and 'lang="en"' in page
