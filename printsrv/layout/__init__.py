"""The card face: templates in ``templates/`` laid out for one record, as PDF and PNG.

Public API (for the CLI and the station daemon)::

    render_card(card_input, *, template=None, page="card" | "bleed", bleed_mm=None,
                png=False, png_dpi=300, preview_blank=False) -> RenderedCard
    template_for(card_input) -> str            # "ktp-el", "ktp-el-wna" or "kia"
    load_template(name) -> Template            # cached; TemplateError names file:line: key
    sample_card(name) -> CardInput             # built-in sample data of a shipped template
    render_page(card_input, ...) -> CardPage   # one page for PdfDocument (many cards, one PDF)

``RenderError.field`` names the record field that cannot be rendered. Pure functions: no
database, no devices.
"""

from __future__ import annotations

from printsrv.layout.errors import RenderError, TemplateError
from printsrv.layout.pdfwriter import PdfDocument
from printsrv.layout.render import CardPage, RenderedCard, render_card, render_page, template_for
from printsrv.layout.sample import sample_card
from printsrv.layout.template import (
    Box,
    Template,
    load_template,
    load_template_file,
    template_names,
)

__all__ = [
    "Box",
    "CardPage",
    "PdfDocument",
    "RenderError",
    "RenderedCard",
    "Template",
    "TemplateError",
    "load_template",
    "load_template_file",
    "render_card",
    "render_page",
    "sample_card",
    "template_for",
    "template_names",
]
