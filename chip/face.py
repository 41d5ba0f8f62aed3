"""ISO/IEC 19794-5:2005 face image records, re-encoded to fit a byte budget."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from chip.errors import DataError, MalformedError

_HEADER = 14
_FACE_INFO = 20
_IMAGE_INFO = 12
RECORD_OVERHEAD = _HEADER + _FACE_INFO + _IMAGE_INFO


def face_record(jpeg: bytes, width: int, height: int) -> bytes:
    """A "FAC\\0" record holding one JPEG (basic face image, no feature points)."""
    block_len = _FACE_INFO + _IMAGE_INFO + len(jpeg)
    header = b"FAC\x00" + b"010\x00" + (_HEADER + block_len).to_bytes(4, "big") + b"\x00\x01"
    face_info = (
        block_len.to_bytes(4, "big")
        + b"\x00\x00"  # feature points
        + b"\x00"  # gender unspecified (the MRZ carries it)
        + b"\x00\x00"  # eye, hair colour
        + b"\x00\x00\x00"  # feature mask
        + b"\x00\x00"  # expression
        + b"\x00\x00\x00"  # pose angle
        + b"\x00\x00\x00"  # pose uncertainty
    )
    image_info = (
        b"\x01"  # face image type: full frontal
        + b"\x00"  # image data type: JPEG
        + width.to_bytes(2, "big")
        + height.to_bytes(2, "big")
        + b"\x01"  # colour space sRGB
        + b"\x00"  # source type unspecified
        + b"\x00\x00"  # device type
        + b"\x00\x00"  # quality
    )
    return header + face_info + image_info + jpeg


def face_image(record: bytes) -> bytes:
    """The image data of a face record (raises ``ValueError`` when malformed)."""
    if record[:4] != b"FAC\x00" or len(record) < RECORD_OVERHEAD:
        raise MalformedError("not an ISO/IEC 19794-5 face record")
    return record[RECORD_OVERHEAD:]


# -- metadata -----------------------------------------------------------------------------------
def _clean(img: Image.Image) -> Image.Image:
    """Drop what Pillow would carry from the source file into a saved image (comment, EXIF,
    XMP, ICC profile, PNG text)."""
    img.info.clear()
    return img


def _encode(img: Image.Image, quality: int, optimize: bool) -> bytes:
    out = io.BytesIO()
    _clean(img).save(out, "JPEG", quality=quality, optimize=optimize)
    return out.getvalue()


_QUALITIES = tuple(range(20, 95, 5))
#: The quality index last chosen per (image size, budget): consecutive cards of one batch
#: have photos alike, so the search starts there and usually needs two encodes, not four.
_LAST_CHOICE: dict[tuple[int, int, int], int] = {}


def _best_quality(img: Image.Image, image_budget: int) -> bytes | None:
    """The highest quality in 20..90 (steps of 5) whose JPEG fits, or None.

    The encoded size grows with the quality, so the answer is where "fits" turns to "does
    not fit": found by walking from the last card's choice, else by binary search.
    """
    key = (img.width, img.height, image_budget)
    fits: dict[int, bytes | None] = {}

    def encode(i: int) -> bytes | None:
        if i not in fits:
            data = _encode(img, _QUALITIES[i], optimize=True)
            fits[i] = data if len(data) <= image_budget else None
        return fits[i]

    hint = _LAST_CHOICE.get(key)
    if hint is not None:
        i = hint
        if encode(i) is not None:
            while i + 1 < len(_QUALITIES) and encode(i + 1) is not None:
                i += 1
            best: bytes | None = fits[i]
        else:
            while i > 0 and encode(i - 1) is None:
                i -= 1
            i -= 1
            best = fits[i] if i >= 0 else None
    else:
        lo, hi, best, i = 0, len(_QUALITIES) - 1, None, -1
        while lo <= hi:
            mid = (lo + hi) // 2
            if encode(mid) is not None:
                best, i, lo = fits[mid], mid, mid + 1
            else:
                hi = mid - 1
    if best is not None:
        _LAST_CHOICE[key] = i
    return best


def fit_face(photo: bytes, budget: int, max_width: int = 600) -> bytes:
    """Re-encode ``photo`` so the whole face record fits ``budget`` bytes.

    Keeps the largest size up to ``max_width`` and the highest JPEG quality that fit, then
    shrinks the image; raises :class:`DataError` if even a small image does not fit.
    """
    try:
        with Image.open(io.BytesIO(photo)) as src:
            if src.format == "JPEG":  # let the decoder scale by 1/2, 1/4, 1/8 for free
                src.draft("RGB", (max_width, max_width * src.height // max(1, src.width)))
            src.load()
            img = src if src.mode == "RGB" else src.convert("RGB")  # no copy when RGB
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"photo is not a readable image: {exc}") from exc
    if img.width > max_width:
        img = img.resize((max_width, round(img.height * max_width / img.width)),
                         Image.Resampling.BICUBIC, reducing_gap=2.0)
    image_budget = budget - RECORD_OVERHEAD
    while img.width >= 60:
        data = _best_quality(img, image_budget)
        if data is not None:
            return face_record(data, img.width, img.height)
        img = img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.Resampling.BICUBIC,
                         reducing_gap=2.0)
    raise DataError(f"face image cannot fit {budget} bytes")


def compact_signature(image: bytes, max_width: int = 300) -> bytes:
    """The signature as a small greyscale PNG (the chip's displayed-signature DG7)."""
    try:
        with Image.open(io.BytesIO(image)) as src:
            img = src.convert("RGBA")
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"signature is not a readable image: {exc}") from exc
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    img = Image.alpha_composite(white, img).convert("L")
    if img.width > max_width:  # integer reduction first: it is thresholded to 1 bit anyway
        img = img.resize((max_width, max(1, round(img.height * max_width / img.width))),
                         Image.Resampling.LANCZOS, reducing_gap=1.0)
    img = _clean(img.point(_THRESHOLD).convert("1"))
    out = io.BytesIO()
    # Level 6: a few bytes more than 9 on a 1-bit signature (~2 %), in a fifth of the time.
    img.save(out, "PNG", compress_level=6)
    return out.getvalue()


_THRESHOLD = [255 if v > 160 else 0 for v in range(256)]
