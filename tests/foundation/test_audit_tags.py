"""One registry of audit event tags (:mod:`printsrv.audit_tags`): every tag the code writes is
registered there, and every registered tag reads as a sentence on the audit page in Bahasa
Indonesia and in English."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import printsrv.web
from printsrv import PROJECT_ROOT
from printsrv.audit_tags import ALL_TAGS, TAG_ENUMS, is_registered
from printsrv.web import labels

TAG_SHAPE = re.compile(r"^[a-z0-9_]+:[a-z0-9_]+:[a-z0-9_]+$")
ENUM_NAMES = {e.__name__ for e in TAG_ENUMS}
EN_PO = Path(printsrv.web.__file__).parent / "translations" / "en" / "LC_MESSAGES" / "messages.po"


def _sources() -> list[Path]:
    root = PROJECT_ROOT / "printsrv"
    return [p for p in root.rglob("*.py") if "migrations" not in p.parts]


def test_every_tag_written_in_code_is_registered() -> None:
    literals: list[str] = []
    members: list[str] = []
    for path in _sources():
        if path.name == "audit_tags.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and TAG_SHAPE.match(node.value) and not is_registered(node.value)):
                literals.append(f"{path.name}:{node.lineno} {node.value}")
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in ENUM_NAMES and node.attr.isupper()):
                enum_type = next(e for e in TAG_ENUMS if e.__name__ == node.value.id)
                if node.attr not in enum_type.__members__:
                    members.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    assert literals == [], "register these tags in printsrv/audit_tags.py"
    assert members == []
    assert len(ALL_TAGS) > 60  # the registry holds every writer's tags


def test_tags_are_unique_across_writers_but_one() -> None:
    seen: dict[str, str] = {}
    twice = []
    for enum_type in TAG_ENUMS:
        for tag in enum_type:
            if tag.value in seen:
                twice.append((tag.value, seen[tag.value], enum_type.__name__))
            seen[tag.value] = enum_type.__name__
    # "admin:user:create" is written by the CLI (AuditTag) and the web app (WebTag).
    assert twice == [("admin:user:create", "AuditTag", "WebTag")]


def test_every_registered_tag_has_an_indonesian_and_an_english_sentence() -> None:
    with EN_PO.open("rb") as f:
        english = {m.id: m.string for m in read_po(f) if m.id and not m.fuzzy}
    untold = []
    for tag in sorted(ALL_TAGS):
        _, noun, action = tag.split(":")
        for word, table in ((noun, labels._NOUNS), (action, labels._VERBS)):
            if word not in table:
                untold.append(f"{tag}: no Indonesian for {word!r}")
            elif not english.get(table[word]):
                untold.append(f"{tag}: no English for {table[word]!r}")
    assert untold == []


@pytest.mark.parametrize(("locale", "sentence"), [
    ("id", "admin mencabut token API kiosk-1"),
    ("en", "admin revoked API token kiosk-1"),
])
def test_a_recent_tag_reads_as_a_sentence(locale: str, sentence: str) -> None:
    from flask import Flask
    from flask_babel import Babel, force_locale

    app = Flask(__name__)
    Babel(app, default_translation_directories=str(EN_PO.parents[2]))
    with app.test_request_context(), force_locale(locale):
        assert labels.event_sentence("admin:token:revoke", "admin", "kiosk-1", {}) == sentence

