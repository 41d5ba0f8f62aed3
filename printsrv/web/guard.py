"""The signed-in user and the decorators that guard views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, redirect, request, session, url_for

from printsrv.models import User
from printsrv.web import read_db
from printsrv.web.services import can

F = TypeVar("F", bound=Callable[..., Any])


def current_user() -> User | None:
    """The fully signed-in user (password and, where required, TOTP), or ``None``."""
    if "user" in g:
        return g.user
    user = None
    token = session.get("sid")
    if token and session.get("stage") == "full":
        from printsrv.web.auth_service import session_user

        user = session_user(read_db(), token)
    g.user = user
    return user


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            if request.method == "GET" and not request.path.startswith("/api/"):
                return redirect(url_for("auth.login"))
            abort(401)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def permission(name: str) -> Callable[[F], F]:
    """Require a signed-in user whose role has permission ``name``."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                if request.method == "GET":
                    return redirect(url_for("auth.login"))
                abort(401)
            if not can(user, name):
                abort(403)
            return view(*args, **kwargs)

        wrapped.permission = name  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator
