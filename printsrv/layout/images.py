"""Photo and signature preparation at 300 dpi, and the photo-background check."""

from __future__ import annotations

import colorsys
import io
from dataclasses import dataclass
from functools import cached_property

from PIL import Image, ImageChops, ImageOps

from printsrv.errors import InvalidValue
from printsrv.layout.template import Box

PRINT_DPI = 300
JPEG_QUALITY = 90
#: The photo thumbnail (background check, ink coverage) is decoded at this fraction of the size.
THUMBNAIL_SCALE = 4
_ORIENTATION = 0x0112  # the EXIF tag


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


#: A photo up to this many times the box's pixel size (each way) is embedded as it is and
#: scaled by the page; a larger one is resampled (its JPEG would bloat the print job).
MAX_PASSTHROUGH_SCALE = 3.0


@dataclass(frozen=True)
class PreparedPhoto:
    """The JPEG to embed and the part of it the box shows.

    ``size`` is the JPEG's pixel size and ``mode`` its colour mode (``RGB`` or ``L``).
    ``passthrough``: the source's own image data, byte for byte less its metadata, scaled into
    the box by the page (no decode, no resample, no re-encode); otherwise a JPEG resampled to
    the box at 300 dpi. ``crop`` (left, top, right, bottom, in the JPEG's pixels) is the part
    the box shows, centred as :func:`PIL.ImageOps.fit` would crop it; ``None``: all of it.
    """

    jpeg: bytes
    size: tuple[int, int]
    passthrough: bool
    mode: str = "RGB"
    crop: tuple[float, float, float, float] | None = None

    def __getstate__(self) -> dict[str, object]:
        """Pickled without the opened source image (a file object)."""
        return {k: v for k, v in self.__dict__.items() if k != "_opened"}

    def _decode(self, at_least: tuple[int, int]) -> Image.Image:
        """RGB pixels of the box's part, decoded at the smallest DCT scale giving ``at_least``
        pixels for it."""
        # The image prepare_photo opened (header parsed, pixels not decoded), used once.
        source = self.__dict__.pop("_opened", None) or Image.open(io.BytesIO(self.jpeg))
        w, h = self.size
        left, top, right, bottom = self.crop or (0.0, 0.0, float(w), float(h))
        need = (max(1, round(at_least[0] * w / (right - left))),
                max(1, round(at_least[1] * h / (bottom - top))))  # fmt: skip
        source.draft("RGB", need)
        image = source.convert("RGB")
        if self.crop is not None:
            sx, sy = image.width / w, image.height / h
            image = image.crop((round(left * sx), round(top * sy),
                                round(right * sx), round(bottom * sy)))  # fmt: skip
        return image

    def pixels(self, size: tuple[int, int]) -> Image.Image:
        """The box's part as RGB pixels of ``size`` (previews, the reportlab backend)."""
        image = self._decode(size)
        return image if image.size == size else image.resize(size, Image.Resampling.BILINEAR)

    @cached_property
    def thumbnail(self) -> Image.Image:
        """The box's part as RGB at about 1/``THUMBNAIL_SCALE`` of the box's 300 dpi size (the
        JPEG decoder's own downscale): the background check and the ink coverage."""
        w, h = self.size
        left, top, right, bottom = self.crop or (0.0, 0.0, float(w), float(h))
        return self._decode((max(1, round((right - left) / THUMBNAIL_SCALE)),
                             max(1, round((bottom - top) / THUMBNAIL_SCALE))))  # fmt: skip


def fit_crop(size: tuple[int, int], target: tuple[int, int],
             centering: tuple[float, float] = (0.5, 0.4)) -> tuple[float, float, float, float]:
    """The part of an image of ``size`` that fills ``target`` without distortion (left, top,
    right, bottom), centred as :func:`PIL.ImageOps.fit` crops."""
    w, h = size
    ratio, wanted = w / h, target[0] / target[1]
    if ratio == wanted:
        cw, ch = float(w), float(h)
    elif ratio > wanted:
        cw, ch = wanted * h, float(h)
    else:
        cw, ch = float(w), w / wanted
    left = max(0.0, (w - cw) * centering[0])
    top = max(0.0, (h - ch) * centering[1])
    return left, top, left + cw, top + ch


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

    An RGB or greyscale JPEG of at least the box's pixel size (and at most
    :data:`MAX_PASSTHROUGH_SCALE` times it) is embedded byte for byte, less its metadata, and
    the page scales and clips it to the box; any other photo is resampled to the box.
    """
    target = box_px(box)
    image = _open(jpeg, "photo")
    w, h = image.size
    if (image.format == "JPEG" and image.mode in ("RGB", "L")
            and target[0] <= w <= target[0] * MAX_PASSTHROUGH_SCALE
            and target[1] <= h <= target[1] * MAX_PASSTHROUGH_SCALE
            and image.getexif().get(_ORIENTATION, 1) == 1):
        crop = fit_crop((w, h), target)
        whole = crop == (0.0, 0.0, float(w), float(h))
        try:  # byte for byte, less the source's comments, EXIF, XMP and ICC
            prepared = PreparedPhoto(strip_jpeg_metadata(jpeg), (w, h), True, image.mode,
                                     None if whole else crop)
        except ValueError as exc:
            raise ImageProblem(f"photo is not a well-formed JPEG: {exc}") from exc
        prepared.__dict__["_opened"] = image  # its thumbnail needs no second header parse
        return prepared
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


#: Signature ink up to this many times the box's pixel size (each way) is embedded at its own
#: resolution and scaled by the page, like a photo; a larger or smaller one is resampled.
MAX_SIGNATURE_PASSTHROUGH_SCALE = 3.0


def prepare_signature(png: bytes, box: Box, ink: tuple[int, int, int]) -> tuple[Image.Image, Box]:
    """The signature as an ``ink``-coloured RGBA image fitted inside ``box`` (aspect kept).

    Opacity is the image's own alpha times its darkness, so both transparent and
    dark-on-white scans print as dark ink with no white patch. Returns the image and the box
    it fills. Ink of at least the box's 300 dpi size (and at most
    :data:`MAX_SIGNATURE_PASSTHROUGH_SCALE` times it) keeps its own pixels, which the page
    scales into the box; any other is LANCZOS-resampled to the box at 300 dpi.
    """
    image = _open(png, "signature")
    try:
        if image.mode in ("RGB", "L"):  # a scan without transparency: opacity is darkness
            alpha = ImageChops.invert(image.convert("L"))
        else:  # opacity = darkness × alpha / 255, in one pass
            if image.mode != "LA":
                image = image.convert("RGBA")
            darkness = ImageChops.invert(image.convert("L"))
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
    if not 1 / MAX_SIGNATURE_PASSTHROUGH_SCALE <= scale <= 1:
        alpha = alpha.resize(size, Image.Resampling.LANCZOS)
    alpha = ImageChops.add(alpha, alpha)  # opacity doubled (saturating): faint ink prints solid
    rgba = Image.new("RGBA", alpha.size, (*ink, 0))
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
    # The top corners: 5 × 6 pixels at each side, as RGB bytes (not 60 getpixel calls).
    corners = small.crop((0, 0, 5, 6)).tobytes() + small.crop((27, 0, 32, 6)).tobytes()
    n = len(corners) // 3
    r, g, b = (sum(corners[i::3]) / n / 255 for i in range(3))
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
