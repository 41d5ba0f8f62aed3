"""The web layer stays thin: a view calls services and never ends a unit of work itself (the
request's session is committed once, after the view, by the app; a service that needs its own
transaction says so). Undoing a refused action (a rollback before the error page) stays a
view's choice."""

from __future__ import annotations

import ast
from pathlib import Path

import printsrv.web

WEB = Path(printsrv.web.__file__).parent


def _view_modules() -> list[Path]:
    """Modules of the web package that define routes."""
    return [p for p in sorted(WEB.glob("*.py")) if ".route(" in p.read_text()]


def _commits(path: Path) -> list[str]:
    return [
        f"{path.name}:{node.lineno}"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == "commit"
    ]


def test_no_view_commits() -> None:
    views = _view_modules()
    assert {p.name for p in views} >= {"views.py", "api.py", "auth.py", "ledger_views.py",
                                       "stock_views.py"}
    assert [hit for path in views for hit in _commits(path)] == []


def test_the_check_finds_a_commit(tmp_path: Path) -> None:
    view = tmp_path / "v.py"
    view.write_text("@bp.route('/x')\ndef x():\n    db().commit()\n")
    assert _commits(view) == ["v.py:3"]
