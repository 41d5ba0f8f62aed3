"""The public entry point: one record → PDF bytes, optional PNG preview, warnings, ink coverage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from printsrv.cardinput import CardInput
from printsrv.layout import pdf as reportlab_pdf
from printsrv.layout import pdfwriter
from printsrv.layout.compose import compose
from printsrv.layout.coverage import estimate_coverage
from printsrv.layout.errors import RenderError
from printsrv.layout.raster import png_bytes, rasterize
from printsrv.layout.template import Box, Template, load_template
from printsrv.products import template_for

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
    layout = compose(tpl, card)
    if backend == "native":
        pdf = pdfwriter.write_pdf(layout, page_mm, offset)
    elif backend == "reportlab":
        pdf = reportlab_pdf.write_pdf(layout, page_mm, offset)
    else:
        raise RenderError("backend", f"unknown PDF backend {backend!r} (native or reportlab)")
    preview = None
    if png:
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
