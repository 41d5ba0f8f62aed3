"""The web app: application factory, per-request database session, security headers, i18n
(re-exported lazily by :mod:`printsrv.web`)."""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, request, session
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session

from printsrv.config import Settings, load_settings

LANGUAGES = ("id", "en")
csrf = CSRFProtect()
babel = Babel()

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)


def _secret_key(settings: Settings) -> str:
    """``Settings.secret_key`` or a random key kept in the instance's key folder."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.keys_dir / "web-secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def select_locale() -> str:
    lang = session.get("lang")
    return lang if lang in LANGUAGES else "id"


_SQLITE_WRITE_LOCK = threading.Lock()
_LOCK_FILES: dict[tuple[int, str], int] = {}


def _process_lock_fd(settings: Settings) -> int:
    """This process's descriptor of the instance's web write-lock file (opened after a fork:
    flock locks belong to the open file description, which a forked worker must not share)."""
    key = (os.getpid(), str(settings.instance_dir))
    fd = _LOCK_FILES.get(key)
    if fd is None:
        settings.instance_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(settings.instance_dir / "web-write.lock", os.O_RDWR | os.O_CREAT, 0o600)
        _LOCK_FILES[key] = fd
    return fd


def db() -> Session:
    """The request's read-write session; its transaction commits after a successful request.
    On SQLite the writers queue on a lock instead of SQLite's sleeping busy handler (which
    backs off up to 100 ms a try and makes tail latency): a thread lock within the process,
    and an ``flock`` on a file in the instance folder between the processes of a pre-forked
    server (``serve --workers N``)."""
    if "db" not in g:
        from printsrv.db import session_factory

        settings: Settings = current_app.config["PRINTSRV_SETTINGS"]
        if not settings.is_postgres:
            _SQLITE_WRITE_LOCK.acquire()
            g.db_locked = True
            try:
                fd = _process_lock_fd(settings)
                fcntl.flock(fd, fcntl.LOCK_EX)
                g.db_flock = fd
            except BaseException:
                _release_write_lock()
                raise
        g.db = session_factory(settings)()
        g.db.begin()
    return g.db


@lru_cache(maxsize=8)
def _read_engine(url: str) -> Engine:
    """SQLite: an engine with deferred transactions, so readers never wait for the write lock
    (WAL). PostgreSQL: the shared engine."""
    from printsrv.db import _sqlite_pragmas, engine_for

    if not url.startswith("sqlite"):
        return engine_for(url)
    engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def read_db() -> Session:
    """A session for the request's reads (pages that only show data). On PostgreSQL the
    request's one session (:func:`db`): readers never wait there, and one transaction costs
    fewer round trips than two; on SQLite a second connection that does not take the write
    lock."""
    settings: Settings = current_app.config["PRINTSRV_SETTINGS"]
    if settings.is_postgres:
        return db()
    if "rdb" not in g:
        g.rdb = Session(bind=_read_engine(settings.sqlalchemy_url), expire_on_commit=False)
    return g.rdb


def _release_write_lock() -> None:
    fd = g.pop("db_flock", None)
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    if g.pop("db_locked", False):
        _SQLITE_WRITE_LOCK.release()


def local_time(moment: Any, office: str | None = None, seconds: bool = True) -> str:
    """Jinja filter ``{{ e.at | local(e.office_code) }}``: the office's local time with its
    zone name (WIB, WITA, WIT); the signed-in user's office when the row names none."""
    from printsrv.localtime import office_zone
    from printsrv.web.guard import current_user

    if moment is None:
        return ""
    if not office:
        user = current_user()
        office = user.office.code if user is not None else "35"
    return office_zone(office).format(moment, seconds=seconds)


def create_app(
    settings: Settings | None = None, test_config: dict[str, Any] | None = None
) -> Flask:
    """Build the web app for ``settings`` (loaded from the environment when omitted)."""
    import printsrv.web.models  # noqa: F401  (register tables)

    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=_secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_NAME="__Host-printsrv",
        PERMANENT_SESSION_LIFETIME=8 * 3600,
        MAX_CONTENT_LENGTH=min(settings.max_batch_bytes, 512 * 1024 * 1024),
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        BABEL_DEFAULT_LOCALE="id",
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        PRINTSRV_SETTINGS=settings,
    )
    if test_config:
        app.config.update(test_config)
    if not app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_NAME"].startswith(
        "__Host-"
    ):
        app.config["SESSION_COOKIE_NAME"] = "printsrv"

    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)

    from printsrv.web import (
        api,
        auth,
        desk_views,
        ledger_views,
        node_views,
        stock_views,
        sync_api,
        views,
    )

    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(desk_views.bp)
    app.register_blueprint(desk_views.public)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    app.register_blueprint(ledger_views.bp)
    app.register_blueprint(stock_views.bp)
    app.register_blueprint(node_views.bp)
    app.register_blueprint(sync_api.bp)
    csrf.exempt(sync_api.bp)
    views.register_error_handlers(app)

    from printsrv.web.guard import current_user
    from printsrv.web.labels import (
        card_result,
        event_kind,
        event_sentence,
        label,
        pause_reason,
        record_state,
    )
    from printsrv.web.node_banner import offline_banner
    from printsrv.web.services import can
    from printsrv.web.views import queue_rows_html

    app.jinja_env.globals.update(
        current_user=current_user,
        offline_banner=offline_banner,
        can=can,
        get_locale=select_locale,
        queue_rows_html=queue_rows_html,
        label=label,
        card_result=card_result,
        event_sentence=event_sentence,
        event_kind=event_kind,
        record_state=record_state,
        pause_reason=lambda reason: pause_reason(reason, select_locale()),
    )
    app.jinja_env.filters["local"] = local_time

    @app.after_request
    def _commit_and_headers(response: Any) -> Any:
        session_db = g.pop("db", None)
        if session_db is not None:
            try:
                if response.status_code < 400 or getattr(g, "commit_on_error", False):
                    session_db.commit()
                else:
                    session_db.rollback()
            finally:
                session_db.close()
                _release_write_lock()
        read = g.pop("rdb", None)
        if read is not None:
            read.close()
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h["X-Frame-Options"] = "DENY"
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"
        h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), usb=()"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        h["Cross-Origin-Resource-Policy"] = "same-origin"
        if app.config["SESSION_COOKIE_SECURE"]:
            h["Strict-Transport-Security"] = "max-age=31536000"
        if not request.path.startswith("/static/"):
            h["Cache-Control"] = "no-store"
        return response

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        session_db = g.pop("db", None)
        if session_db is not None:
            session_db.rollback()
            session_db.close()
        _release_write_lock()
        read = g.pop("rdb", None)
        if read is not None:
            read.close()

    logging.getLogger("waitress").setLevel(logging.INFO)
    return app
