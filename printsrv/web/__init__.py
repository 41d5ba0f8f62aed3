"""The web layer. The app factory and the request helpers live in :mod:`printsrv.web.app` and
are re-exported here lazily (``printsrv.web:create_app`` for gunicorn and the systemd unit), so
that importing a plain service module under this package (the tables in
:mod:`printsrv.web.models`, for one) does not load Flask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the checker sees the real names; at run time they load on first use
    from printsrv.web.app import (
        CSP as CSP,
    )
    from printsrv.web.app import (
        LANGUAGES as LANGUAGES,
    )
    from printsrv.web.app import (
        babel as babel,
    )
    from printsrv.web.app import (
        create_app as create_app,
    )
    from printsrv.web.app import (
        csrf as csrf,
    )
    from printsrv.web.app import (
        db as db,
    )
    from printsrv.web.app import (
        local_time as local_time,
    )
    from printsrv.web.app import (
        read_db as read_db,
    )
    from printsrv.web.app import (
        select_locale as select_locale,
    )

#: What :mod:`printsrv.web.app` defines that callers import from here.
_FROM_APP = frozenset({
    "CSP", "LANGUAGES", "babel", "create_app", "csrf", "db", "local_time", "read_db",
    "select_locale",
})  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _FROM_APP:
        from printsrv.web import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
