"""Photo and signature preparation at 300 dpi, and the photo-background check."""

from __future__ import annotations

import colorsys
import io
from dataclasses import dataclass
from functools import cached_property
from typing import cast

from PIL import Image, ImageChops, ImageOps

from printsrv.errors import InvalidValue
from printsrv.layout.template import Box

PRINT_DPI = 300
JPEG_QUALITY = 90
#: The photo thumbnail (background check, ink coverage) is decoded at this fraction of the size.
THUMBNAIL_SCALE = 4
_ORIENTATION = 0x0112  # the EXIF tag
#: Signature opacity stretch: the faintest useful ink prints solid, not grey.
_STRETCH = [min(255, v * 2) for v in range(256)]


#: JPEG segments a decoder needs besides the image data: APP0 (JFIF) and APP14 (Adobe colour
#: transform). Every other APPn (EXIF, XMP, ICC, vendor data) and every COM is metadata.
_KEPT_APP = {0xE0, 0xEE}


def _segment_spans(jpeg: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment up to and including SOS's header."""
    if jpeg[:2] != b"\xff\xd8":
        raise InvalidValue("not a JPEG (no SOI)")
    out: list[tuple[int, int, int]] = []
    pos = 2
    while pos + 4 <= len(jpeg):
        if jpeg[pos] != 0xFF:
            raise InvalidValue(f"no marker at offset {pos}")
        marker = jpeg[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(jpeg[pos + 2:pos + 4], "big")
        if length < 2 or pos + 2 + length > len(jpeg):
            raise InvalidValue(f"segment {marker:02X} overruns the file")
        out.append((marker, pos, pos + 2 + length))
        if marker == 0xDA:
            return out
        pos += 2 + length
    raise InvalidValue("JPEG ends before its image data (no SOS)")


def _is_metadata_segment(marker: int) -> bool:
    """COM, and every APPn but JFIF (APP0) and Adobe (APP14)."""
    return marker == 0xFE or (0xE0 <= marker <= 0xEF and marker not in _KEPT_APP)


def strip_jpeg_metadata(jpeg: bytes) -> bytes:
    """The same JPEG without metadata segments, losslessly (the image data is not decoded).
    Raises ``ValueError`` when the bytes are not a JPEG."""
    spans = _segment_spans(jpeg)
    if not any(_is_metadata_segment(m) for m, _, _ in spans):
        return jpeg
    out = bytearray(b"\xff\xd8")
    for marker, start, end in spans:
        if not _is_metadata_segment(marker):
            out += jpeg[start:end]
    out += jpeg[spans[-1][2]:]
    return bytes(out)


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

    @cached_property
    def thumbnail(self) -> Image.Image:
        """An RGB decode at 1/``THUMBNAIL_SCALE`` of the size (the JPEG decoder's own downscale)."""
        image = Image.open(io.BytesIO(self.jpeg))
        w, h = self.size
        image.draft("RGB", (max(1, w // THUMBNAIL_SCALE), max(1, h // THUMBNAIL_SCALE)))
        return image.convert("RGB")


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
    if (image.format == "JPEG" and image.mode in ("RGB", "L") and image.size == target
            and image.getexif().get(_ORIENTATION, 1) == 1):
        try:  # byte for byte, less the source's comments, EXIF, XMP and ICC
            return PreparedPhoto(strip_jpeg_metadata(jpeg), target, True, image.mode)
        except ValueError as exc:
            raise ImageProblem(f"photo is not a well-formed JPEG: {exc}") from exc
    try:
        image.draft("RGB", (target[0], target[1]))  # cheap DCT downscale, never below target
        # No copies of a photo that needs neither (exif_transpose and convert copy anyway).
        if image.getexif().get(_ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
        if image.mode != "RGB":
            image = image.convert("RGB")
        fitted = ImageOps.fit(image, target, Image.Resampling.LANCZOS, centering=(0.5, 0.4))
    except (OSError, ValueError) as exc:
        raise ImageProblem(f"photo cannot be decoded: {exc}") from exc
    out = io.BytesIO()
    fitted.info.clear()  # no comment, EXIF, XMP or ICC of the source in the new JPEG
    fitted.save(out, "JPEG", quality=JPEG_QUALITY, optimize=False)
    prepared = PreparedPhoto(out.getvalue(), target, False)
    # The thumbnail straight from the pixels at hand, instead of decoding the new JPEG again.
    prepared.__dict__["thumbnail"] = fitted.reduce(THUMBNAIL_SCALE)
    return prepared


def prepare_signature(png: bytes, box: Box, ink: tuple[int, int, int]) -> tuple[Image.Image, Box]:
    """The signature as an ``ink``-coloured RGBA image fitted inside ``box`` (aspect kept).

    Opacity is the image's own alpha times its darkness, so both transparent and
    dark-on-white scans print as dark ink with no white patch. Returns the image and its box.
    """
    image = _open(png, "signature")
    try:
        if image.mode in ("RGB", "L"):  # a scan without transparency: opacity is darkness
            alpha = ImageOps.invert(image.convert("L"))
        else:  # opacity = darkness × alpha / 255, in one pass
            if image.mode != "LA":
                image = image.convert("RGBA")
            darkness = ImageOps.invert(image.convert("L"))
            alpha = ImageChops.multiply(darkness, image.getchannel("A"))
    except (OSError, ValueError) as exc:
        raise ImageProblem(f"signature cannot be decoded: {exc}") from exc
    crop = alpha.getbbox()  # trims transparent borders and white margins of scans alike
    if crop is None:
        raise ImageProblem("signature is blank")
    alpha = alpha.crop(crop)
    tw, th = box_px(box)
    scale = min(tw / alpha.width, th / alpha.height)
    size = (max(1, round(alpha.width * scale)), max(1, round(alpha.height * scale)))
    alpha = alpha.resize(size, Image.Resampling.LANCZOS).point(_STRETCH)
    rgba = Image.new("RGBA", size, (*ink, 0))
    rgba.putalpha(alpha)
    w_mm, h_mm = size[0] / PRINT_DPI * 25.4, size[1] / PRINT_DPI * 25.4
    placed = Box(box.x + (box.w - w_mm) / 2, box.y + (box.h - h_mm) / 2, w_mm, h_mm)
    return rgba, placed


def background_colour(photo: bytes | Image.Image) -> str:
    """Classify the photo background from its top corners: RED, BLUE, ORANGE or OTHER.

    ``photo`` is JPEG data or an already decoded (small) RGB image.
    """
    if isinstance(photo, bytes):
        image = _open(photo, "photo")
        image.draft("RGB", (64, 64))
        photo = image.convert("RGB")
    small = photo.resize((32, 32), Image.Resampling.BILINEAR)
    samples = [cast(tuple[int, int, int], small.getpixel((x, y)))
               for y in range(0, 6) for x in (*range(0, 5), *range(27, 32))]
    r = sum(p[0] for p in samples) / len(samples) / 255
    g = sum(p[1] for p in samples) / len(samples) / 255
    b = sum(p[2] for p in samples) / len(samples) / 255
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
