"""Drawing a composed card into a one-page PDF with reportlab (fonts embedded as subsets)."""

from __future__ import annotations

import io

from reportlab import rl_config
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from printsrv.layout.compose import CardLayout
from printsrv.layout.images import box_px
from printsrv.layout.template import Box

PT_PER_MM = 72 / 25.4


def write_pdf(
    layout: CardLayout, page_mm: tuple[float, float], offset_mm: tuple[float, float]
) -> bytes:
    """One page of ``page_mm``; the card's top-left corner sits at ``offset_mm`` on the page."""
    # Binary streams: reportlab's pure-Python ASCII85 would cost ~6 ms a card.
    saved, rl_config.useA85 = rl_config.useA85, 0
    try:
        return _write_pdf(layout, page_mm, offset_mm)
    finally:
        rl_config.useA85 = saved


def _write_pdf(
    layout: CardLayout, page_mm: tuple[float, float], offset_mm: tuple[float, float]
) -> bytes:
    """One page of ``page_mm``; the card's top-left corner sits at ``offset_mm`` on the page."""
    k = PT_PER_MM
    page_w, page_h = page_mm
    ox, oy = offset_mm
    buf = io.BytesIO()
    first_font = layout.texts[0].font.name if layout.texts else None
    canvas = Canvas(
        buf,
        pagesize=(page_w * k, page_h * k),
        pageCompression=1,
        # Without this reportlab lists Helvetica, an unembedded font, on every page.
        initialFontName=first_font,
    )
    canvas.setTitle(f"{layout.template.id} card face")
    canvas.setCreator("ktp-printsrv")

    def rect(box: Box) -> tuple[float, float, float, float]:
        return (ox + box.x) * k, (page_h - oy - box.y - box.h) * k, box.w * k, box.h * k

    if layout.photo is not None and layout.photo_box is not None:
        # A JPEG ImageReader is embedded as DCT data, without decoding or re-encoding; a photo
        # the box shows part of is cropped here (this backend does not clip).
        photo = layout.photo
        source = (ImageReader(io.BytesIO(photo.jpeg)) if photo.crop is None
                  else ImageReader(photo.pixels(box_px(layout.photo_box))))
        canvas.drawImage(source, *rect(layout.photo_box))
    if layout.signature is not None and layout.signature_box is not None:
        canvas.drawImage(ImageReader(layout.signature), *rect(layout.signature_box), mask="auto")
    for qr in layout.qrs:
        canvas.setFillColorRGB(*(c / 255 for c in qr.ink))
        n = len(qr.modules)
        cell = qr.box.w / (n + 8)  # 4-module quiet zone inside the box
        for r, row in enumerate(qr.modules):
            c = 0
            while c < n:
                if row[c]:
                    start = c
                    while c < n and row[c]:
                        c += 1
                    x = qr.box.x + (4 + start) * cell
                    y = qr.box.y + (4 + r) * cell
                    canvas.rect(*rect(Box(x, y, (c - start) * cell, cell)), stroke=0, fill=1)
                c += 1
    text = canvas.beginText()
    font_key: tuple[str, float] | None = None
    color: tuple[int, int, int] | None = None
    for run in layout.texts:
        if (run.font.name, run.size) != font_key:
            font_key = (run.font.name, run.size)
            text.setFont(run.font.name, run.size)
        if run.color != color:
            color = run.color
            text.setFillColorRGB(*(c / 255 for c in run.color))
        text.setTextOrigin((ox + run.x) * k, (page_h - oy - run.baseline_y) * k)
        text.textOut(run.text)
    canvas.drawText(text)
    canvas.showPage()
    canvas.save()
    return buf.getvalue()
