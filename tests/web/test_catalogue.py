"""The English catalogue: every text the web layer marks for translation has an English
translation, and the shipped ``.mo`` is the ``.po`` compiled (a text added to a page without
both shows Indonesian on the English page)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

import printsrv.web

WEB = Path(printsrv.web.__file__).parent
EN = WEB / "translations" / "en" / "LC_MESSAGES"


def test_every_marked_text_has_an_english_translation(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(WEB / "babel.cfg"),
                                "-k", "_l", "-k", "N_", "-o", str(pot), str(WEB)])
    with pot.open("rb") as f:
        marked = {m.id for m in read_po(f) if m.id}
    with (EN / "messages.po").open("rb") as f:
        english = {m.id: m for m in read_po(f) if m.id}
    assert len(marked) > 150  # the extraction found the pages' texts
    missing = sorted(str(i) for i in marked
                     if i not in english or not english[i].string or english[i].fuzzy)
    assert missing == [], "no English for these; see docs/web.md to update the catalogue"


def test_the_shipped_catalogue_is_the_po_compiled() -> None:
    with (EN / "messages.po").open("rb") as f:
        po = {m.id: m.string for m in read_po(f) if m.id and not m.fuzzy}
    with (EN / "messages.mo").open("rb") as f:
        mo = {m.id: m.string for m in read_mo(f) if m.id}
    assert mo == po, "run: cd printsrv/web && pybabel compile -d translations"
