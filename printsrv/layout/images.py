"""Photo and signature preparation at 300 dpi, and the photo-background check."""

from __future__ import annotations

import colorsys
import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from printsrv.layout.template import Box

PRINT_DPI = 300
JPEG_QUALITY = 90


def box_px(box: Box, dpi: int = PRINT_DPI) -> tuple[int, int]:
    """Pixel size of ``box`` at ``dpi``."""
    return max(1, round(box.w / 25.4 * dpi)), max(1, round(box.h / 25.4 * dpi))


@dataclass(frozen=True)
class PreparedPhoto:
    """The JPEG to embed (exactly the box size at 300 dpi) and whether it was passed through.

    ``mode`` is the JPEG's colour mode, ``RGB`` or ``L``.
    """

    jpeg: bytes
    size: tuple[int, int]
    passthrough: bool
    mode: str = "RGB"


class ImageProblem(ValueError):
    """An image cannot be decoded or used; the renderer turns it into a field error."""


def _open(data: bytes, what: str) -> Image.Image:
    if not data:
        raise ImageProblem(f"no {what} supplied")
    try:
        image = Image.open(io.BytesIO(data))
        image.size  # noqa: B018 - force the header to be parsed
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageProblem(f"{what} cannot be read: {exc}") from exc
    return image


def prepare_photo(jpeg: bytes, box: Box) -> PreparedPhoto:
    """Crop (centred) and scale the photo to ``box`` at 300 dpi without distortion.

    A baseline RGB or greyscale JPEG already of the box's pixel size is embedded byte for byte.
    """
    target = box_px(box)
    image = _open(jpeg, "photo")
    if image.format == "JPEG" and image.mode in ("RGB", "L") and image.size == target:
        return PreparedPhoto(jpeg, target, True, image.mode)
    try:
        image.draft("RGB", (target[0], target[1]))  # cheap DCT downscale, never below target
        image = ImageOps.exif_transpose(image).convert("RGB")
        fitted = ImageOps.fit(image, target, Image.Resampling.LANCZOS, centering=(0.5, 0.4))
    except (OSError, ValueError) as exc:
        raise ImageProblem(f"photo cannot be decoded: {exc}") from exc
    out = io.BytesIO()
    fitted.save(out, "JPEG", quality=JPEG_QUALITY, optimize=False)
    return PreparedPhoto(out.getvalue(), target, False)


def prepare_signature(png: bytes, box: Box, ink: tuple[int, int, int]) -> tuple[Image.Image, Box]:
    """The signature as an ``ink``-coloured RGBA image fitted inside ``box`` (aspect kept).

    Opacity is the image's own alpha times its darkness, so both transparent and
    dark-on-white scans print as dark ink with no white patch. Returns the image and its box.
    """
    image = _open(png, "signature")
    try:
        image = image.convert("RGBA")
    except (OSError, ValueError) as exc:
        raise ImageProblem(f"signature cannot be decoded: {exc}") from exc
    bbox_src = image.getbbox()  # crop fully transparent borders
    if bbox_src:
        image = image.crop(bbox_src)
    darkness = ImageOps.invert(image.convert("L"))
    alpha = Image.composite(darkness, Image.new("L", image.size, 0), image.getchannel("A"))
    crop = alpha.getbbox()  # crop white margins of scans
    if crop is None:
        raise ImageProblem("signature is blank")
    alpha = alpha.crop(crop)
    tw, th = box_px(box)
    scale = min(tw / alpha.width, th / alpha.height)
    size = (max(1, round(alpha.width * scale)), max(1, round(alpha.height * scale)))
    alpha = alpha.resize(size, Image.Resampling.LANCZOS)
    # Stretch the faintest useful ink to full opacity: pen strokes print solid, not grey.
    alpha = alpha.point(lambda v: min(255, v * 2))
    rgba = Image.new("RGBA", size, (*ink, 0))
    rgba.putalpha(alpha)
    w_mm, h_mm = size[0] / PRINT_DPI * 25.4, size[1] / PRINT_DPI * 25.4
    placed = Box(box.x + (box.w - w_mm) / 2, box.y + (box.h - h_mm) / 2, w_mm, h_mm)
    return rgba, placed


def background_colour(jpeg: bytes) -> str:
    """Classify the photo background from its top corners: RED, BLUE, ORANGE or OTHER."""
    image = _open(jpeg, "photo")
    image.draft("RGB", (64, 64))
    small = image.convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)
    samples = [small.getpixel((x, y)) for y in range(0, 6) for x in (*range(0, 5), *range(27, 32))]
    r = sum(p[0] for p in samples) / len(samples) / 255  # type: ignore[index]
    g = sum(p[1] for p in samples) / len(samples) / 255  # type: ignore[index]
    b = sum(p[2] for p in samples) / len(samples) / 255  # type: ignore[index]
    hue, saturation, value = colorsys.rgb_to_hsv(r, g, b)
    hue *= 360
    if saturation < 0.3 or value < 0.25:
        return "OTHER"
    if hue >= 340 or hue < 15:
        return "RED"
    if 15 <= hue < 50:
        return "ORANGE"
    if 180 <= hue < 260:
        return "BLUE"
    return "OTHER"
