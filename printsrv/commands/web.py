"""``serve``, ``user add`` and ``token add``: the web app's commands."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from printsrv.config import load_settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the web app and the API (gunicorn, one worker per CPU up to 4; "
        "waitress with --workers 1)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--threads", type=int, help="threads per process (16 waitress, 8 gunicorn)")
    p.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="worker processes (default: one per CPU, up to 4); more than 1 serves with "
        "gunicorn (pre-fork, threaded workers), 1 with waitress",
    )
    p.add_argument(
        "--insecure-cookies",
        action="store_true",
        help="allow the session cookie over plain HTTP (development without TLS only)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("user", help="user accounts")
    user_sub = p.add_subparsers(dest="user_command", required=True)
    a = user_sub.add_parser(
        "add", help="create an account; the password is read from standard input or a prompt"
    )
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=["admin", "supervisor", "operator", "auditor"])
    a.add_argument("--office", required=True, help="office code PP.KK or PP.KK.CC")
    a.add_argument("--full-name", default="")
    a.set_defaults(func=cmd_user_add)
    a = user_sub.add_parser("passwd", help="set a new password (standard input or a prompt); "
                            "every session of the user ends")
    a.add_argument("name")
    a.set_defaults(func=cmd_user_change, change="password")
    a = user_sub.add_parser("role", help="change a user's role; every session of the user ends")
    a.add_argument("name")
    a.add_argument("role", choices=["admin", "supervisor", "operator", "auditor"])
    a.set_defaults(func=cmd_user_change, change="role")
    a = user_sub.add_parser("sign-out", help="sign a user out everywhere (every session ends)")
    a.add_argument("name")
    a.set_defaults(func=cmd_user_change, change="sign-out")
    a = user_sub.add_parser("reset-totp", help="clear a user's TOTP secret (a lost phone): the "
                            "user enrols again at the next sign-in; audited")
    a.add_argument("name")
    a.set_defaults(func=cmd_user_change, change="reset-totp")
    for sub_parser in user_sub.choices.values():
        sub_parser.add_argument("--actor", default="cli", help="who does it (audit log)")

    p = sub.add_parser("token", help="API tokens")
    token_sub = p.add_subparsers(dest="token_command", required=True)
    t = token_sub.add_parser("add", help="create an API token (printed once)")
    t.add_argument("name")
    t.add_argument("--scope", required=True, choices=["station", "client"])
    t.add_argument("--office", required=True, help="a client token imports only batches of "
                   "this office and its kecamatan")
    t.add_argument("--expires", type=_expiry,
                   help="when it stops working: YYYY-MM-DD (office local midnight UTC) or "
                   "a number of days, e.g. 90d")
    t.set_defaults(func=cmd_token_add)
    t = token_sub.add_parser("list", help="every token: scope, office, use, expiry, revocation")
    t.set_defaults(func=cmd_token_list)
    t = token_sub.add_parser("revoke", help="revoke a token (it stops working at once)")
    t.add_argument("name")
    t.add_argument("--actor", default="cli")
    t.set_defaults(func=cmd_token_revoke)


def default_workers() -> int:
    """One server process per CPU, up to 4: one Python process serves one core (the GIL), and
    the queue page's goal (p95 ≤ 150 ms, 20 clients) needs both cores of a 2-core office PC."""
    return max(1, min(os.cpu_count() or 1, 4))


def cmd_serve(args: argparse.Namespace) -> int:
    from printsrv.web import create_app

    settings = load_settings()
    config = {"SESSION_COOKIE_SECURE": False} if args.insecure_cookies else None
    app = create_app(settings, config)
    syncing = _start_node_sync(settings)
    try:
        if args.workers > 1:
            args.threads = args.threads or 8
            return _serve_gunicorn(app, args)
        from waitress import serve

        args.threads = args.threads or 16

        print(f"serving on http://{args.host}:{args.port}", file=sys.stderr)
        serve(app, host=args.host, port=args.port, threads=args.threads, ident="printsrv")
        return 0
    finally:
        if syncing is not None:
            _stop_node_sync(syncing)


def _start_node_sync(settings: Any) -> Any:
    """On a kecamatan node: ``run.py node sync`` beside the web app (its own process: its own
    token session, no thread across gunicorn's fork), every ``node_sync_interval`` seconds with
    backoff after failures; it dies with this process. ``None`` on a server or when the setting
    is 0."""
    import subprocess

    from printsrv import PROJECT_ROOT
    from printsrv.commands.demo import _die_with_parent
    from printsrv.db import engine_for
    from printsrv.sync.node import is_node

    if settings.node_sync_interval <= 0:
        return None
    enrolled = is_node(settings)
    # gunicorn forks its workers from this process: they must not share its connections
    engine_for(settings.sqlalchemy_url).dispose()
    if not enrolled:
        return None
    print(f"node: syncing with the server every {settings.node_sync_interval:g} s",
          file=sys.stderr)
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "run.py"), "node", "sync", "--interval",
         f"{settings.node_sync_interval:g}"],
        stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)


def _stop_node_sync(proc: Any) -> None:
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _serve_gunicorn(app: Any, args: argparse.Namespace) -> int:
    """Serve ``app`` with gunicorn: ``args.workers`` pre-forked processes of ``args.threads``
    threads each (``gthread``). The app is built once before the fork; database engines are
    created lazily, so every worker opens its own connections."""
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        print("error: --workers needs gunicorn (pip install gunicorn==27.0.1)", file=sys.stderr)
        return 2

    options = {
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        "worker_class": "gthread",
        "threads": args.threads,
        "preload_app": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "printsrv",
        "timeout": 120,
        "keepalive": 5,
    }

    class _Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    print(f"serving on http://{args.host}:{args.port} ({args.workers} gunicorn workers)",
          file=sys.stderr)
    _Server().run()
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat password: "):
            raise SystemExit("error: passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_user_add(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.models import Role
    from printsrv.web.auth_service import create_user
    from printsrv.web.services import ensure_office

    settings = load_settings()
    password = _read_password()
    try:
        with unit_of_work(settings) as session:
            office = ensure_office(session, args.office)
            create_user(
                session, args.name, Role(args.role), office, password, full_name=args.full_name
            )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"user {args.name} ({args.role}, {args.office}) created")
    return 0


def cmd_user_change(args: argparse.Namespace) -> int:
    """``user passwd|role|sign-out|reset-totp NAME``: each ends every session of the user."""
    from printsrv.db import unit_of_work
    from printsrv.models import Role
    from printsrv.web import auth_service as svc

    password = _read_password() if args.change == "password" else ""
    with unit_of_work(load_settings()) as session:
        user = svc.user_by_name(session, args.name)
        if user is None:
            print(f"error: no user {args.name!r}", file=sys.stderr)
            return 1
        if args.change == "password":
            try:
                svc.set_password(session, user, password, actor=args.actor)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
        elif args.change == "role":
            svc.set_role(session, user, Role(args.role), actor=args.actor)
        elif args.change == "reset-totp":
            svc.reset_totp(session, user, actor=args.actor)
        else:
            svc.end_all_sessions(session, user, reason="sign_out_everywhere", actor=args.actor)
        name = user.username
    print(f"user {name}: {args.change} done; every session of the user ended")
    return 0


def _expiry(text: str) -> Any:
    """``90d`` (days from now) or ``YYYY-MM-DD`` (the start of that day, UTC)."""
    from datetime import UTC, date, datetime, timedelta

    try:
        if text.endswith("d") and text[:-1].isdigit():
            return datetime.now(UTC) + timedelta(days=int(text[:-1]))
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: give YYYY-MM-DD or a number of days "
                                         "like 90d") from exc


def cmd_token_add(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.web.models import TokenScope
    from printsrv.web.services import create_token, ensure_office

    settings = load_settings()
    with unit_of_work(settings) as session:
        office = ensure_office(session, args.office)
        secret = create_token(session, args.name, TokenScope(args.scope), office, actor="cli",
                              expires_at=args.expires)
    print(secret)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.localtime import office_zone
    from printsrv.terminal import table
    from printsrv.web.services import list_tokens

    with unit_of_work(load_settings()) as session:
        rows = []
        for t in list_tokens(session):
            zone = office_zone(t.office.code)
            rows.append({
                "name": t.name, "scope": t.scope.value, "office": t.office.code,
                "prefix": t.prefix, "created": zone.format(t.created_at),
                "last used": zone.format(t.last_used_at) or None,
                "expires": zone.format(t.expires_at) or None,
                "revoked": zone.format(t.revoked_at) or None,
            })
    print(table(rows))
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from printsrv.db import unit_of_work
    from printsrv.web.services import revoke_token

    with unit_of_work(load_settings()) as session:
        token = revoke_token(session, args.name, actor=args.actor)
        name = token.name
    print(f"token {name} revoked")
    return 0
