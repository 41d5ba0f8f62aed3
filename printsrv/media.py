"""Media of a record, verified for real: the portrait JPEG, the signature PNG, finger minutiae.

Images are identified by their signature bytes (never by a file name), their header dimensions
are checked against ``max_pixels`` before any pixel is decoded, and then they are decoded
(a JPEG at 1/8 scale: every entropy-coded byte is still read, only the inverse DCT is skipped),
so truncated or corrupt files are refused. Finger minutiae records are parsed per
ISO/IEC 19794-2:2005. Every failure raises :class:`MediaError` with a reason for people.
"""

from __future__ import annotations

import colorsys
import io
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

from PIL import Image, UnidentifiedImageError

from printsrv.errors import InvalidValue, PrintSrvError

JPEG_SIGNATURE = b"\xff\xd8\xff"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PHOTO_ASPECT = 3 / 4  # width / height
PHOTO_ASPECT_TOLERANCE = 0.02  # relative

BackgroundColour = Literal["red", "blue", "orange", "other"]


class MediaError(PrintSrvError):
    """A media file is unusable; ``reason`` says why (no personal data in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What a verified image is: ``format`` ``JPEG``/``PNG``, size in pixels, Pillow mode."""

    format: str
    width: int
    height: int
    mode: str

    @property
    def pixels(self) -> int:
        return self.width * self.height


# --------------------------------------------------------------------------------------------
# Images


#: Scans a portrait JPEG may have (libjpeg's progressive encoding makes about 10).
MAX_JPEG_SCANS = 100


def _jpeg_header_size(data: bytes) -> tuple[int, int, int]:
    """Width, height and component count from the first SOF segment, without decoding."""
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise MediaError("JPEG segment structure is corrupt")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # stand-alone markers
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2:
            raise MediaError("JPEG segment length is corrupt")
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if pos + 10 > n:
                break
            height, width, components = struct.unpack_from(">HHB", data, pos + 5)
            return width, height, components
        pos += 2 + length
    raise MediaError("JPEG has no frame header (SOF) before the image data: truncated or corrupt")


def _png_header_size(data: bytes) -> tuple[int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise MediaError("PNG does not start with an IHDR chunk: truncated or corrupt")
    length, _, width, height = struct.unpack_from(">I4sII", data, 8)
    if length != 13:
        raise MediaError("PNG IHDR chunk has the wrong length")
    return width, height


def _png_check_chunks(data: bytes) -> None:
    """Walk every chunk: CRCs must match and the file must end exactly with IEND."""
    pos = len(PNG_SIGNATURE)
    n = len(data)
    while True:
        if pos + 12 > n:
            raise MediaError("PNG is truncated (no IEND chunk)")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n:
            raise MediaError(f"PNG chunk {ctype!r} runs past the end: truncated or corrupt")
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(data[pos + 4 : end - 4]) & 0xFFFFFFFF != crc:
            raise MediaError(f"PNG chunk {ctype!r} has a bad CRC")
        pos = end
        if ctype == b"IEND":
            break
    if pos != n:
        raise MediaError(f"PNG has {n - pos} bytes after IEND")


def _check_pixels(kind: str, width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise MediaError(f"{kind} header gives an empty image ({width}x{height})")
    if width * height > max_pixels:
        raise MediaError(
            f"{kind} is {width}x{height} = {width * height} pixels, more than the "
            f"{max_pixels} allowed (possible decompression bomb)"
        )


def _decode(data: bytes, fmt: str, *, draft: bool = False) -> Image.Image:
    """Open and decode; any Pillow failure becomes a :class:`MediaError`.

    ``draft`` (JPEG): decode at 1/8 scale. libjpeg still reads and Huffman-decodes every
    scan to the end (so a truncated or corrupt file fails alike), but skips the full-size
    inverse DCT and colour conversion: about a third of the time of a full decode.

    The caller has already bounded the pixel count; Pillow's own DecompressionBombWarning
    (raised as an exception when warnings are errors) and DecompressionBombError are mapped too.
    """
    try:
        im = Image.open(io.BytesIO(data), formats=[fmt])
        if draft:
            im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"{fmt} refused as a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise MediaError(f"{fmt} is corrupt: its header or a chunk cannot be read") from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error...
        raise MediaError(f"{fmt} cannot be decoded: {exc}") from exc
    return im


def verify_jpeg(
    data: bytes,
    *,
    max_pixels: int,
    min_size: tuple[int, int] = (300, 400),
    aspect_tolerance: float = PHOTO_ASPECT_TOLERANCE,
) -> ImageInfo:
    """Check a portrait photo: JPEG by signature, colour, 3:4, at least ``min_size``, decodable.

    Raises :class:`MediaError`.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MediaError("photo must be bytes")
    data = bytes(data)
    if not data.startswith(JPEG_SIGNATURE):
        if data.startswith(PNG_SIGNATURE):
            raise MediaError("photo is a PNG, not a JPEG")
        raise MediaError("photo is not a JPEG (bad signature)")
    width, height, components = _jpeg_header_size(data)
    _check_pixels("JPEG", width, height, max_pixels)
    # Each scan starts with an SOS marker (FFDA), which entropy-coded data cannot contain. A
    # progressive JPEG has about ten; one with 140,000 tiny scans passes every size limit and
    # takes the better part of a minute to decode, at intake and again at every render.
    scans = data.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise MediaError(f"JPEG has {scans} scans (at most {MAX_JPEG_SCANS})")
    if components != 3:
        raise MediaError(
            f"photo has {components} colour component(s): a colour (RGB) JPEG is required"
        )
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise MediaError("JPEG is truncated (no end-of-image marker)")
    if abs(width / height - PHOTO_ASPECT) > PHOTO_ASPECT * aspect_tolerance:
        raise MediaError(f"photo is {width}x{height}, not a 3:4 portrait")
    min_w, min_h = min_size
    if width < min_w or height < min_h:
        raise MediaError(f"photo is {width}x{height}, at least {min_w}x{min_h} is required")
    im = _decode(data, "JPEG", draft=True)
    if im.format not in ("JPEG", "MPO") or im.mode != "RGB":
        raise MediaError(f"photo is a {im.mode} image: a colour (RGB) JPEG is required")
    return ImageInfo("JPEG", width, height, im.mode)


def verify_png(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Check a signature image: PNG by signature, bounded size, every chunk intact, decodable.

    Raises :class:`MediaError`.
    """
    return verify_png_image(data, max_pixels=max_pixels)[0]


def verify_png_image(data: bytes, *, max_pixels: int) -> tuple[ImageInfo, Image.Image]:
    """:func:`verify_png`, also giving the decoded image (for :func:`signature_is_blank`,
    without decoding it twice)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MediaError("signature must be bytes")
    data = bytes(data)
    if not data.startswith(PNG_SIGNATURE):
        if data.startswith(JPEG_SIGNATURE):
            raise MediaError("signature is a JPEG, not a PNG")
        raise MediaError("signature is not a PNG (bad signature)")
    width, height = _png_header_size(data)
    _check_pixels("PNG", width, height, max_pixels)
    _png_check_chunks(data)
    im = _decode(data, "PNG")
    if getattr(im, "n_frames", 1) != 1:
        raise MediaError("signature is an animated PNG")
    return ImageInfo("PNG", width, height, im.mode), im


_SEEN = [255 if v > 32 else 0 for v in range(256)]
#: Lightness below which a visible pixel is ink.
_INK_BELOW = 160


def signature_is_blank(data: bytes, image: Image.Image | None = None) -> bool:
    """Whether a signature PNG has (next to) no ink: fewer than 30 dark, visible pixels.
    ``image``: the PNG already decoded (:func:`verify_png_image`).

    The dark pixels are counted in one histogram of the lightness, masked by the visible
    (alpha > 32) ones."""
    im = (image if image is not None else _decode(data, "PNG")).convert("LA")
    im.thumbnail((400, 200))
    light, alpha = im.split()
    return sum(light.histogram(mask=alpha.point(_SEEN))[:_INK_BELOW]) < 30


def expected_background_colour(birth_year: int, *, wna: bool = False) -> BackgroundColour:
    """Red for odd birth years, blue for even ones; orange for a foreign national (WNA)."""
    if wna:
        return "orange"
    return "red" if birth_year % 2 else "blue"


def photo_background_colour(jpeg: bytes) -> BackgroundColour:
    """Classify the portrait background from the top corners: ``red``, ``blue``, ``orange``
    or ``other``.

    Meant for the QA warning (red for odd, blue for even birth years, orange for WNA); raises
    :class:`MediaError` when the bytes are not a decodable JPEG.
    """
    if not bytes(jpeg[:3]) == JPEG_SIGNATURE:
        raise MediaError("photo is not a JPEG (bad signature)")
    try:
        with Image.open(io.BytesIO(jpeg), formats=["JPEG"]) as im:
            im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            small = im.convert("RGB")
    except Exception as exc:
        raise MediaError(f"JPEG cannot be decoded: {exc}") from exc
    w, h = small.size
    bw, bh = max(1, w // 6), max(1, h // 6)
    boxes = [(0, 0, bw, bh), (w - bw, 0, w, bh)]  # top-left, top-right: beside the head
    votes: dict[BackgroundColour, int] = {"red": 0, "blue": 0, "orange": 0, "other": 0}
    total = 0
    for box in boxes:
        raw = small.crop(box).tobytes()  # RGB triplets; version-proof unlike getdata()
        for i in range(0, len(raw) - 2, 3):
            votes[_classify(raw[i], raw[i + 1], raw[i + 2])] += 1
            total += 1
    best = max(votes, key=lambda k: votes[k])
    return best if votes[best] * 2 > total else "other"


def _classify(r: int, g: int, b: int) -> BackgroundColour:
    hue, sat, val = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
    if sat < 0.35 or val < 0.25:
        return "other"
    degrees = hue * 360
    if degrees >= 340 or degrees <= 15:
        return "red"
    if 18 <= degrees <= 45:
        return "orange"
    if 185 <= degrees <= 250:
        return "blue"
    return "other"


# --------------------------------------------------------------------------------------------
# ISO/IEC 19794-2:2005 finger minutiae records

FMR_MAGIC = b"FMR\x00"
FMR_VERSION_2005 = b" 20\x00"
FMR_HEADER_LEN = 24
FMR_VIEW_HEADER_LEN = 4
FMR_MINUTIA_LEN = 6


class FingerPosition(IntEnum):
    """Finger position codes (ISO/IEC 19794-2 table 2, from ISO/IEC 19794-1)."""

    UNKNOWN = 0
    RIGHT_THUMB = 1
    RIGHT_INDEX = 2
    RIGHT_MIDDLE = 3
    RIGHT_RING = 4
    RIGHT_LITTLE = 5
    LEFT_THUMB = 6
    LEFT_INDEX = 7
    LEFT_MIDDLE = 8
    LEFT_RING = 9
    LEFT_LITTLE = 10


class MinutiaType(IntEnum):
    OTHER = 0
    RIDGE_ENDING = 1
    BIFURCATION = 2


IMPRESSION_TYPES = frozenset({0, 1, 2, 3, 8})  # live plain/rolled, non-live plain/rolled, swipe


@dataclass(frozen=True, slots=True)
class Minutia:
    """One minutia: position in pixels, angle in units of 360/256 degrees, quality 0–100."""

    type: MinutiaType
    x: int
    y: int
    angle: int
    quality: int

    @property
    def angle_degrees(self) -> float:
        return self.angle * 360 / 256


@dataclass(frozen=True, slots=True)
class FingerView:
    position: FingerPosition
    view_number: int
    impression_type: int
    quality: int
    minutiae: tuple[Minutia, ...]
    extended_data: bytes = b""


@dataclass(frozen=True, slots=True)
class FingerMinutiaeRecord:
    """A parsed ISO/IEC 19794-2:2005 record (resolutions in pixels per centimetre)."""

    record_length: int
    capture_equipment_certification: int  # 4 bits
    capture_device_type: int  # 12 bits
    image_width: int
    image_height: int
    x_resolution: int
    y_resolution: int
    views: tuple[FingerView, ...]

    @property
    def minutiae_count(self) -> int:
        return sum(len(v.minutiae) for v in self.views)


_MINUTIA = struct.Struct(">HHBB")
_MINUTIA_TYPES = tuple(MinutiaType)  # indexed by the 2-bit type (3 is reserved)


def _refuse_minutia(what: str, tx: int, ry: int, quality: int, width: int, height: int) -> None:
    """Raise the first thing wrong with one minutia (its bytes ``tx``, ``ry``, quality)."""
    mtype, x, y = tx >> 14, tx & 0x3FFF, ry & 0x3FFF
    if mtype > 2:
        raise MediaError(f"{what}: type {mtype} is reserved")
    if ry >> 14:
        raise MediaError(f"{what}: reserved bits are set")
    if x >= width or y >= height:
        raise MediaError(f"{what}: ({x}, {y}) lies outside the {width}x{height} image")
    raise MediaError(f"{what}: quality {quality} is above 100")


def parse_fmr(data: bytes, *, finger_position: int | None = None) -> FingerMinutiaeRecord:
    """Parse and check an ISO/IEC 19794-2:2005 finger minutiae record.

    With ``finger_position``, every view must be of that finger (2 right index, 7 left index).
    Raises :class:`MediaError` on anything inconsistent.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MediaError("finger minutiae record must be bytes")
    data = bytes(data)
    if len(data) < FMR_HEADER_LEN:
        raise MediaError(f"FMR is {len(data)} bytes, shorter than the 24-byte record header")
    if data[:4] != FMR_MAGIC:
        raise MediaError("not a finger minutiae record (format identifier is not 'FMR\\0')")
    if data[4:8] != FMR_VERSION_2005:
        raise MediaError(f"FMR version {data[4:8]!r} is not ISO/IEC 19794-2:2005 (' 20\\0')")
    (record_length, equipment, width, height, xres, yres, n_views, reserved) = struct.unpack_from(
        ">IHHHHHBB", data, 8
    )
    if record_length != len(data):
        raise MediaError(
            f"FMR record length field is {record_length}, the data is {len(data)} bytes"
        )
    if width == 0 or height == 0:
        raise MediaError(f"FMR image size {width}x{height} is empty")
    if xres == 0 or yres == 0:
        raise MediaError("FMR resolution is zero")
    if n_views == 0:
        raise MediaError("FMR holds no finger view")
    if reserved != 0:
        raise MediaError("FMR reserved header byte is not zero")

    pos = FMR_HEADER_LEN
    views: list[FingerView] = []
    seen: set[tuple[int, int]] = set()
    for index in range(1, n_views + 1):
        where = f"FMR finger view {index}"
        if pos + FMR_VIEW_HEADER_LEN > len(data):
            raise MediaError(f"{where}: header runs past the end of the record")
        position, view_impression, quality, count = struct.unpack_from(">BBBB", data, pos)
        pos += FMR_VIEW_HEADER_LEN
        view_number, impression = view_impression >> 4, view_impression & 0x0F
        if position > max(FingerPosition):
            raise MediaError(f"{where}: finger position {position} is not 0-10")
        if finger_position is not None and position != finger_position:
            raise MediaError(
                f"{where}: finger position {position} "
                f"({FingerPosition(position).name.lower()}), expected {finger_position} "
                f"({FingerPosition(finger_position).name.lower()})"
            )
        if impression not in IMPRESSION_TYPES:
            raise MediaError(f"{where}: impression type {impression} is not 0-3 or 8")
        if quality > 100:
            raise MediaError(f"{where}: finger quality {quality} is above 100")
        if (position, view_number) in seen:
            raise MediaError(f"{where}: finger {position} view {view_number} appears twice")
        seen.add((position, view_number))
        end = pos + count * FMR_MINUTIA_LEN
        if end > len(data):
            raise MediaError(
                f"{where}: {count} minutiae need {count * FMR_MINUTIA_LEN} bytes, "
                f"only {len(data) - pos} remain"
            )
        minutiae = []
        for m, (tx, ry, angle, mq) in enumerate(_MINUTIA.iter_unpack(data[pos:end])):
            mtype, x, y = tx >> 14, tx & 0x3FFF, ry & 0x3FFF
            if mtype > 2 or ry >> 14 or x >= width or y >= height or mq > 100:
                _refuse_minutia(f"{where}, minutia {m + 1}", tx, ry, mq, width, height)
            minutiae.append(Minutia(_MINUTIA_TYPES[mtype], x, y, angle, mq))
        pos = end
        if pos + 2 > len(data):
            raise MediaError(f"{where}: extended data block length is missing")
        (ext_len,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if pos + ext_len > len(data):
            raise MediaError(f"{where}: extended data block of {ext_len} bytes runs past the end")
        extended = data[pos : pos + ext_len]
        pos += ext_len
        views.append(
            FingerView(
                FingerPosition(position),
                view_number,
                impression,
                quality,
                tuple(minutiae),
                extended,
            )
        )
    if pos != len(data):
        raise MediaError(f"FMR has {len(data) - pos} unexplained bytes after the last finger view")
    return FingerMinutiaeRecord(
        record_length=record_length,
        capture_equipment_certification=equipment >> 12,
        capture_device_type=equipment & 0x0FFF,
        image_width=width,
        image_height=height,
        x_resolution=xres,
        y_resolution=yres,
        views=tuple(views),
    )


def encode_fmr(
    views: Sequence[FingerView],
    *,
    image_width: int,
    image_height: int,
    x_resolution: int = 197,
    y_resolution: int = 197,
    capture_equipment_certification: int = 0,
    capture_device_type: int = 0,
) -> bytes:
    """Build an ISO/IEC 19794-2:2005 record (the inverse of :func:`parse_fmr`).

    197 pixels/cm is 500 ppi. Raises ``ValueError`` for values that do not fit their fields.
    """
    body = bytearray()
    for view in views:
        if len(view.minutiae) > 255:
            raise InvalidValue("at most 255 minutiae per view")
        body += struct.pack(
            ">BBBB",
            view.position,
            (view.view_number << 4) | view.impression_type,
            view.quality,
            len(view.minutiae),
        )
        for m in view.minutiae:
            body += struct.pack(">HHBB", (m.type << 14) | m.x, m.y, m.angle, m.quality)
        body += struct.pack(">H", len(view.extended_data)) + view.extended_data
    length = FMR_HEADER_LEN + len(body)
    header = (
        FMR_MAGIC
        + FMR_VERSION_2005
        + struct.pack(
            ">IHHHHHBB",
            length,
            (capture_equipment_certification << 12) | capture_device_type,
            image_width,
            image_height,
            x_resolution,
            y_resolution,
            len(views),
            0,
        )
    )
    return header + bytes(body)
