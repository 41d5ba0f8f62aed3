"""Drawing a composed card with Pillow: the PNG preview (300 dpi) and the ink-coverage raster."""

from __future__ import annotations

import io

from PIL import Image, ImageChops, ImageDraw, ImageMath

from printsrv.layout.compose import CardLayout
from printsrv.layout.template import Box

WHITE = (255, 255, 255)


def rasterize(
    layout: CardLayout,
    dpi: int,
    page_mm: tuple[float, float] | None = None,
    offset_mm: tuple[float, float] = (0.0, 0.0),
    background: tuple[int, int, int] = WHITE,
) -> Image.Image:
    """An RGB image of the printed face at ``dpi``; white is "no ink"."""
    page_w, page_h = page_mm or layout.template.size_mm
    px = dpi / 25.4
    ox, oy = offset_mm
    image = Image.new("RGB", (round(page_w * px), round(page_h * px)), background)

    def rect(box: Box) -> tuple[int, int, int, int]:
        x0, y0 = round((ox + box.x) * px), round((oy + box.y) * px)
        return (
            x0,
            y0,
            max(1, round((ox + box.x + box.w) * px) - x0),
            max(1, round((oy + box.y + box.h) * px) - y0),
        )

    if layout.photo is not None and layout.photo_box is not None:
        x, y, w, h = rect(layout.photo_box)
        image.paste(layout.photo.pixels((w, h)), (x, y))
    if layout.signature is not None and layout.signature_box is not None:
        x, y, w, h = rect(layout.signature_box)
        signature = layout.signature
        if signature.size != (w, h):
            signature = signature.resize((w, h), Image.Resampling.LANCZOS)
        image.paste(signature, (x, y), signature)
    draw = ImageDraw.Draw(image)
    for qr in layout.qrs:
        n = len(qr.modules)
        cell = qr.box.w / (n + 8)
        for r, row in enumerate(qr.modules):
            for c, dark in enumerate(row):
                if dark:
                    x, y, w, h = rect(Box(qr.box.x + (4 + c) * cell, qr.box.y + (4 + r) * cell,
                                          cell, cell))  # fmt: skip
                    draw.rectangle((x, y, x + w - 1, y + h - 1), fill=qr.ink)
    for run in layout.texts:
        font = run.font.pillow(run.size / 72 * dpi)
        draw.text(((ox + run.x) * px, (oy + run.baseline_y) * px), run.text, fill=run.color,
                  font=font, anchor="ls")  # fmt: skip
    return image


#: 255 / (max + 0.001) for each max 0..255 (the C, M, Y scale of :func:`ink_coverage`).
_SCALE = [255 / (v + 0.001) for v in range(256)]


def ink_coverage(image: Image.Image) -> dict[str, float]:
    """Mean C, M, Y, K coverage (0..1 of the area) of an RGB raster, full black generation.

    K = 1 - max(R, G, B); C = (max - R) / max, and likewise M from G and Y from B, per pixel in
    floating point; each mean is the image box-reduced to one pixel (Pillow sums in double).
    """
    r, g, b = image.split()
    peak = ImageChops.lighter(ImageChops.lighter(r, g), b)
    result = {"K": 1.0 - _mean(peak.convert("F"))}
    scale = peak.point(_SCALE, "F")  # 255 / (max + 0.001), from a table: one pass
    for name, band in (("C", r), ("M", g), ("Y", b)):
        result[name] = _mean(ImageMath.lambda_eval(
            lambda a: a["d"] * a["s"],
            d=ImageChops.subtract(peak, band).convert("F"),  # max - band, exact in 8 bits
            s=scale,
        ))  # fmt: skip
    return {k: round(result[k], 5) for k in ("C", "M", "Y", "K")}


def _mean(image: Image.Image) -> float:
    """Mean of an "F" image of values 0..255, as a fraction of 255."""
    return float(image.reduce(image.size).getpixel((0, 0))) / 255  # type: ignore[arg-type]


def png_bytes(image: Image.Image, dpi: int) -> bytes:
    """Encode ``image`` as PNG with its resolution recorded."""
    out = io.BytesIO()
    image.save(out, "PNG", dpi=(dpi, dpi), compress_level=3)
    return out.getvalue()
