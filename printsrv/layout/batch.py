"""The worker side of ``run.py render --queued``: chunks of cards laid out as pages.

The workers (:mod:`printsrv.renderpool`) never touch the database or the token;
:mod:`printsrv.batchrender` is the calling side.
"""

from __future__ import annotations

import io
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from printsrv.cardinput import CardInput
from printsrv.layout.errors import RenderError, TemplateError
from printsrv.layout.pdfwriter import PageParts, PdfDocument
from printsrv.layout.render import render_page
from printsrv.layout.sample import sample_card
from printsrv.layout.template import load_template, template_names

#: Any date: the sample cards of the warm-up are thrown away.
_WARM_UP_DATE = date(2026, 1, 1)


@dataclass(frozen=True)
class PageOptions:
    """How every face is laid out (the same for the whole run). ``coverage``: estimate each
    card's ink (about a third of a card's work)."""

    page: Literal["card", "bleed"] = "card"
    bleed_mm: tuple[float, float] | None = None
    coverage: bool = True
    template: str | None = None  # None: each record's own (by card type)


@dataclass(frozen=True)
class Rendered:
    """A worker's answer for one card: its page (``None`` once written to the folder), its
    warnings (already naming the record) and its ink coverage (empty when not estimated)."""

    page: PageParts | None
    warnings: tuple[str, ...]
    ink_coverage: dict[str, float]


def render_chunk(
    cards: list[CardInput], options: PageOptions, folder: str | None
) -> list[Rendered | str]:
    """Each card's page, or with ``folder`` its PDF written there; a card that cannot be
    rendered gives a problem naming the record and the field."""
    out: list[Rendered | str] = []
    for card in cards:
        try:
            face = render_page(card, template=options.template, page=options.page,
                               bleed_mm=options.bleed_mm, coverage=options.coverage)
        except RenderError as exc:
            out.append(f"record {card.request_id}: {exc.field}: {exc}")
            continue
        warnings = tuple(f"record {card.request_id}: {w}" for w in face.warnings)
        if folder is None:
            out.append(Rendered(face.page, warnings, face.ink_coverage))
            continue
        buffer = io.BytesIO()
        document = PdfDocument(buffer, face.page.title)
        document.add_page(face.page)
        document.close()
        (Path(folder) / f"{file_name(card.request_id)}.pdf").write_bytes(buffer.getvalue())
        out.append(Rendered(None, warnings, face.ink_coverage))
    return out


def file_name(request_id: str) -> str:
    """A request id as a file name (ids are ``[A-Za-z0-9-]``; anything else is replaced)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in request_id).lstrip(".")


def warm_up() -> None:
    """Load the shipped templates, their fonts and font subsets by laying out each one's
    sample card (a worker's first chunk then starts with them)."""
    for name in template_names():
        with suppress(TemplateError, RenderError):  # a broken template fails only its records
            render_page(sample_card(name, _WARM_UP_DATE), template=load_template(name))
