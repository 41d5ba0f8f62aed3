"""The public entry point: one record → PDF bytes, optional PNG preview, warnings, ink coverage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from printsrv.cardinput import CardInput
from printsrv.layout import pdfwriter
from printsrv.layout.compose import CardLayout, compose
from printsrv.layout.coverage import estimate_coverage
from printsrv.layout.errors import RenderError
from printsrv.layout.template import Box, Template, load_template

PNG_DPI = 300


@dataclass(frozen=True)
class RenderedCard:
    """The result of :func:`render_card`.

    ``boxes`` maps each drawn element id to its boxes in card millimetres (top-left origin):
    one box per text line, or the photo/signature/QR box. ``ink_coverage`` gives C, M, Y, K as
    fractions (0..1) of the ID-1 face, estimated per element at 300 dpi without drawing the
    card (:mod:`printsrv.layout.coverage`).
    """

    template: str
    pdf: bytes
    png: bytes | None
    page_mm: tuple[float, float]
    warnings: tuple[str, ...]
    ink_coverage: dict[str, float]
    boxes: dict[str, tuple[Box, ...]]
    font_sizes: dict[str, float]
    photo_passthrough: bool


def template_for(card: CardInput) -> str:
    """The shipped template for a record: ``kia``, ``ktp-el-wna`` or ``ktp-el``
    (:func:`printsrv.products.template_for`)."""
    from printsrv.products import template_for as product_template

    return product_template(card)


def _lay_out(
    card: CardInput,
    template: str | Template | None,
    page: Literal["card", "bleed"],
    bleed_mm: tuple[float, float] | None,
) -> tuple[Template, CardLayout, tuple[float, float], tuple[float, float]]:
    """The template, the composed layout, the page size and the card's offset on the page."""
    if template is None:
        template = template_for(card)
    tpl = load_template(template) if isinstance(template, str) else template
    card_w, card_h = tpl.size_mm
    if page == "card":
        page_mm, offset = tpl.size_mm, (0.0, 0.0)
    elif page == "bleed":
        if bleed_mm is None or bleed_mm[0] < card_w or bleed_mm[1] < card_h:
            raise RenderError(
                "page", f"bleed area {bleed_mm} must be at least {card_w} x {card_h} mm"
            )
        page_mm = (float(bleed_mm[0]), float(bleed_mm[1]))
        offset = ((page_mm[0] - card_w) / 2, (page_mm[1] - card_h) / 2)
    else:
        raise RenderError("page", f"unknown page kind {page!r} (card or bleed)")
    return tpl, compose(tpl, card), page_mm, offset


@dataclass(frozen=True)
class CardPage:
    """The result of :func:`render_page`: the page, not yet in a document (picklable)."""

    request_id: str
    template: str
    page: pdfwriter.PageParts
    warnings: tuple[str, ...]
    ink_coverage: dict[str, float]


def render_page(
    card: CardInput,
    *,
    template: str | Template | None = None,
    page: Literal["card", "bleed"] = "card",
    bleed_mm: tuple[float, float] | None = None,
    coverage: bool = True,
) -> CardPage:
    """The face of ``card`` as one page for :class:`~printsrv.layout.pdfwriter.PdfDocument`
    (many cards in one PDF, fonts shared). Arguments and errors as :func:`render_card`."""
    tpl, layout, page_mm, offset = _lay_out(card, template, page, bleed_mm)
    return CardPage(
        request_id=card.request_id,
        template=tpl.id,
        page=pdfwriter.page_parts(layout, page_mm, offset),
        warnings=tuple(layout.warnings),
        ink_coverage=estimate_coverage(layout) if coverage else {},
    )


def render_card(
    card: CardInput,
    *,
    template: str | Template | None = None,
    page: Literal["card", "bleed"] = "card",
    bleed_mm: tuple[float, float] | None = None,
    png: bool = False,
    png_dpi: int = PNG_DPI,
    preview_blank: bool = False,
    coverage: bool = True,
    backend: Literal["native", "reportlab"] = "native",
) -> RenderedCard:
    """Render the face of ``card``.

    ``template`` is a shipped template name, a loaded :class:`Template`, or None to choose by
    card type (:func:`template_for`). ``page="card"`` gives an exact ID-1 page; ``page="bleed"``
    gives a ``bleed_mm`` page (the printer's image area) with the card centred on it.
    ``png`` adds a preview at ``png_dpi``; ``preview_blank`` tints it with the blank's colour
    (the PDF never contains the pre-printed blank). ``coverage=False`` skips the ink raster
    (``ink_coverage`` is then empty). ``backend="reportlab"`` writes the PDF with reportlab
    (slower; kept for comparison) instead of the built-in writer.

    Raises :class:`RenderError` (``.field`` names the record field) when the record cannot be
    put on the card, and ``TemplateError`` for a broken template.
    """
    tpl, layout, page_mm, offset = _lay_out(card, template, page, bleed_mm)
    if backend == "native":
        pdf = pdfwriter.write_pdf(layout, page_mm, offset)
    elif backend == "reportlab":
        from printsrv.layout import pdf as reportlab_pdf  # the comparison backend, on demand

        pdf = reportlab_pdf.write_pdf(layout, page_mm, offset)
    else:
        raise RenderError("backend", f"unknown PDF backend {backend!r} (native or reportlab)")
    preview = None
    if png:
        from printsrv.layout.raster import png_bytes, rasterize

        blank = tpl.preview_blank if preview_blank and tpl.preview_blank else (255, 255, 255)
        preview = png_bytes(rasterize(layout, png_dpi, page_mm, offset, blank), png_dpi)
    inks = estimate_coverage(layout) if coverage else {}
    return RenderedCard(
        template=tpl.id,
        pdf=pdf,
        png=preview,
        page_mm=page_mm,
        warnings=tuple(layout.warnings),
        ink_coverage=inks,
        boxes=dict(layout.boxes),
        font_sizes=dict(layout.sizes),
        photo_passthrough=bool(layout.photo and layout.photo.passthrough),
    )
