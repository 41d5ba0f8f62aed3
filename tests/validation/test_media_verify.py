"""Media verification: JPEG portraits, PNG signatures, decompression bombs, ISO 19794-2 FMRs."""

from __future__ import annotations

import contextlib
import io
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from printsrv.errors import PrintSrvError
from printsrv.media import (
    FingerPosition,
    FingerView,
    MediaError,
    Minutia,
    MinutiaType,
    encode_fmr,
    expected_background_colour,
    parse_fmr,
    photo_background_colour,
    signature_is_blank,
    verify_jpeg,
    verify_png,
)
from printsrv.synthetic import synthetic_fmr
from tests.validation.validation_data import residents

MAX = 4_000_000


def jpeg(
    size: tuple[int, int] = (300, 400),
    colour: object = (200, 30, 30),
    mode: str = "RGB",
    **kw: object,
) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, "JPEG", quality=85, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def noisy_jpeg(size: tuple[int, int] = (300, 400), **kw: object) -> bytes:
    im = Image.frombytes("RGB", size, bytes((i * 7919) % 251 for i in range(size[0] * size[1] * 3)))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def png(size: tuple[int, int] = (400, 150), mode: str = "LA") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG")
    return buf.getvalue()


def refused(fn: object, data: bytes, fragment: str, **kw: object) -> MediaError:
    with pytest.raises(MediaError) as info:
        fn(data, **kw)  # type: ignore[operator]
    assert fragment in info.value.reason, info.value.reason
    assert isinstance(info.value, PrintSrvError)
    return info.value


# -- JPEG ---------------------------------------------------------------------------------


def test_good_portraits() -> None:
    info = verify_jpeg(jpeg(), max_pixels=MAX)
    assert (info.format, info.width, info.height, info.mode) == ("JPEG", 300, 400, "RGB")
    assert verify_jpeg(noisy_jpeg((600, 800), progressive=True), max_pixels=MAX).pixels == 480_000
    assert verify_jpeg(jpeg((303, 400)), max_pixels=MAX).width == 303  # within tolerance


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_jpeg_is_refused(cut: float) -> None:
    data = noisy_jpeg()
    refused(verify_jpeg, data[: int(len(data) * cut)], "truncated", max_pixels=MAX)
    refused(verify_jpeg, data[:-2], "truncated", max_pixels=MAX)


def test_truncated_header_is_refused() -> None:
    refused(verify_jpeg, jpeg()[:120], "no frame header", max_pixels=MAX)


def test_png_named_jpg_is_refused_by_signature() -> None:
    refused(verify_jpeg, png((300, 400), "RGB"), "is a PNG", max_pixels=MAX)
    refused(verify_jpeg, b"GIF89a" + b"\0" * 100, "not a JPEG", max_pixels=MAX)
    refused(verify_png, jpeg(), "is a JPEG", max_pixels=MAX)


def test_grayscale_and_cmyk_are_refused() -> None:
    refused(verify_jpeg, jpeg(colour=128, mode="L"), "colour", max_pixels=MAX)
    refused(verify_jpeg, jpeg(colour=(0, 0, 0, 0), mode="CMYK"), "colour", max_pixels=MAX)


@pytest.mark.parametrize(
    ("size", "fragment"),
    [((150, 200), "at least"), ((400, 400), "3:4"), ((400, 300), "3:4"), ((310, 400), "3:4")],
)
def test_size_and_aspect(size: tuple[int, int], fragment: str) -> None:
    refused(verify_jpeg, jpeg(size), fragment, max_pixels=MAX)


def test_min_size_is_configurable() -> None:
    assert verify_jpeg(jpeg((150, 200)), max_pixels=MAX, min_size=(120, 160)).width == 150


def test_jpeg_bomb_refused_from_the_header() -> None:
    # a 3:4 JPEG of 6000x8000 (48 Mpx): refused before any decoding
    data = jpeg((60, 80))
    sof = data.index(b"\xff\xc0")
    bomb = data[: sof + 5] + struct.pack(">HH", 8000, 6000) + data[sof + 9 :]
    refused(verify_jpeg, bomb, "decompression bomb", max_pixels=MAX)


def test_pillow_bomb_check_is_mapped() -> None:
    # our limit above Pillow's: Pillow's own DecompressionBombError becomes a MediaError
    data = jpeg((60, 80))
    sof = data.index(b"\xff\xc0")
    bomb = data[: sof + 5] + struct.pack(">HH", 20000, 15000) + data[sof + 9 :]
    refused(verify_jpeg, bomb, "decompression bomb", max_pixels=10**10)


def test_corrupt_scan_data_is_refused() -> None:
    data = bytearray(noisy_jpeg())
    sos = data.index(b"\xff\xda")
    data[sos + 2 : sos + 4] = b"\xff\xff"  # SOS length nonsense
    with pytest.raises(MediaError):
        verify_jpeg(bytes(data), max_pixels=MAX)


@pytest.mark.parametrize("progressive", [False, True])
def test_draft_decode_refuses_whatever_a_full_decode_refuses(progressive: bool) -> None:
    """verify_jpeg decodes at 1/8 scale; every corruption a full-size decode fails on (cuts,
    overwritten and deleted bytes, 300 of them) must still be refused."""
    import random

    good = noisy_jpeg(progressive=progressive)
    rng = random.Random(19)
    full_failures = 0
    for _ in range(300):
        data = bytearray(good)
        op = rng.randrange(3)
        if op == 0:
            data = data[: rng.randrange(len(data))]
        elif op == 1:
            for _ in range(rng.randrange(1, 5)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        else:
            at = rng.randrange(len(data))
            del data[at : at + rng.randrange(1, 50)]
        try:
            full = Image.open(io.BytesIO(bytes(data)), formats=["JPEG"])
            full.load()
        except Exception:  # any failure of the full decode is the oracle
            full_failures += 1
            with pytest.raises(MediaError):
                verify_jpeg(bytes(data), max_pixels=MAX)
    assert full_failures > 50  # the sample really exercises the decoder's refusals


def test_not_bytes() -> None:
    with pytest.raises(MediaError):
        verify_jpeg("photo.jpg", max_pixels=MAX)  # type: ignore[arg-type]


# -- PNG ----------------------------------------------------------------------------------


def test_good_signature_png() -> None:
    info = verify_png(png(), max_pixels=MAX)
    assert (info.format, info.width, info.height) == ("PNG", 400, 150)


def test_png_bomb_refused_before_decoding() -> None:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")  # 400 Mpx in ~50 KB
    refused(verify_png, buf.getvalue(), "decompression bomb", max_pixels=MAX)
    refused(verify_png, buf.getvalue(), "decompression bomb", max_pixels=10**10)


def test_png_with_bad_crc_is_refused() -> None:
    data = bytearray(png())
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF
    with pytest.raises(MediaError):
        verify_png(bytes(data), max_pixels=MAX)


def test_truncated_png_is_refused() -> None:
    data = png()
    for cut in (20, 40, len(data) - 12, len(data) - 1):
        with pytest.raises(MediaError):
            verify_png(data[:cut], max_pixels=MAX)


def test_png_ihdr_lies_about_size() -> None:
    data = bytearray(png())
    struct.pack_into(">I", data, 16, 40000)  # width, and fix the CRC
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    with pytest.raises(MediaError):
        verify_png(bytes(data), max_pixels=10**9)


# -- background colour --------------------------------------------------------------------


def _signature(ink: int, *, lightness: int = 0, alpha: int = 255) -> Image.Image:
    """A transparent 400x150 LA signature with ``ink`` pixels of that lightness and alpha."""
    im = Image.new("LA", (400, 150), (255, 0))
    for i in range(ink):
        im.putpixel((i % 400, i // 400), (lightness, alpha))
    return im


def test_blank_signature_threshold() -> None:
    """Fewer than 30 dark (lightness < 160), visible (alpha > 32) pixels is blank."""
    assert signature_is_blank(b"", _signature(29))
    assert not signature_is_blank(b"", _signature(30))
    assert not signature_is_blank(b"", _signature(30, lightness=159, alpha=33))
    assert signature_is_blank(b"", _signature(500, lightness=160))
    assert signature_is_blank(b"", _signature(500, alpha=32))
    white_ground = Image.new("LA", (400, 150), (255, 255))
    assert signature_is_blank(b"", white_ground)
    buf = io.BytesIO()
    _signature(400).save(buf, "PNG")
    assert not signature_is_blank(buf.getvalue())  # decoded from its bytes
    big = Image.new("LA", (1600, 600), (255, 0))
    for x in range(0, 1600, 4):  # a stroke 4 px high: still ink once thumbnailed to 400x150
        for y in range(300, 304):
            big.putpixel((x, y), (0, 255))
    assert not signature_is_blank(b"", big)


def test_background_colour() -> None:
    assert photo_background_colour(jpeg(colour=(200, 25, 35))) == "red"
    assert photo_background_colour(jpeg(colour=(25, 90, 200))) == "blue"
    assert photo_background_colour(jpeg(colour=(240, 140, 20))) == "orange"  # WNA
    assert photo_background_colour(jpeg(colour=(240, 240, 240))) == "other"
    assert expected_background_colour(1999) == "red" and expected_background_colour(2000) == "blue"
    with pytest.raises(MediaError):
        photo_background_colour(png())


def test_generated_portraits_have_the_birth_year_colour() -> None:
    for r in residents()[:100]:
        if r.photo_jpeg is not None:
            year = int(r.record["tanggal_lahir"][:4])
            wna = r.record["kewarganegaraan"] != "WNI"
            assert photo_background_colour(r.photo_jpeg) == expected_background_colour(
                year, wna=wna)


# -- FMR ----------------------------------------------------------------------------------


def good_fmr(count: int = 3, position: int = 2) -> bytes:
    minutiae = tuple(Minutia(MinutiaType.BIFURCATION, 10 + i, 20 + i, i, 60) for i in range(count))
    view = FingerView(FingerPosition(position), 0, 0, 80, minutiae)
    return encode_fmr([view], image_width=256, image_height=360)


def test_fmr_parses() -> None:
    rec = parse_fmr(good_fmr(), finger_position=FingerPosition.RIGHT_INDEX)
    assert rec.record_length == 24 + 4 + 3 * 6 + 2
    assert (rec.image_width, rec.image_height, rec.x_resolution) == (256, 360, 197)
    (view,) = rec.views
    assert view.position is FingerPosition.RIGHT_INDEX and view.quality == 80
    assert rec.minutiae_count == 3
    assert view.minutiae[1] == Minutia(MinutiaType.BIFURCATION, 11, 21, 1, 60)
    assert view.minutiae[1].angle_degrees == pytest.approx(1.40625)


def _patch(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: b"FIR\x00" + d[4:], "format identifier"),
        (lambda d: _patch(d, 4, b"030\x00"), "version"),
        (lambda d: _patch(d, 4, b" 35\x00"), "version"),
        (lambda d: _patch(d, 8, struct.pack(">I", 999)), "record length"),
        (lambda d: d + b"\x00", "record length"),
        (lambda d: d[:20], "shorter than"),
        (lambda d: _patch(d, 14, b"\x00\x00"), "image size"),
        (lambda d: _patch(d, 18, b"\x00\x00"), "resolution"),
        (lambda d: _patch(d, 22, b"\x00"), "no finger view"),
        (lambda d: _patch(d, 23, b"\x01"), "reserved"),
        (lambda d: _patch(d, 24, b"\x0b"), "finger position 11"),
        (lambda d: _patch(d, 25, b"\x05"), "impression type"),
        (lambda d: _patch(d, 26, b"\x65"), "finger quality"),
        (lambda d: _patch(d, 27, b"\x09"), "minutiae need"),
        (lambda d: _patch(d, 28, b"\xc0"), "type 3 is reserved"),
        (lambda d: _patch(d, 30, b"\x40"), "reserved bits"),
        (lambda d: _patch(d, 28, b"\x7f\xff"), "outside"),
        (lambda d: _patch(d, 33, b"\xff"), "quality 255"),
        (lambda d: _patch(d, 46, b"\x00\x05"), "extended data"),
    ],
)
def test_bad_fmr_headers(mutate: object, fragment: str) -> None:
    data = mutate(good_fmr())  # type: ignore[operator]
    if fragment not in ("record length", "shorter than", "format identifier", "version"):
        data = _patch(data, 8, struct.pack(">I", len(data)))  # keep the length consistent
    refused(parse_fmr, data, fragment)


def test_fmr_wrong_finger_and_duplicates() -> None:
    refused(parse_fmr, good_fmr(position=7), "expected 2", finger_position=2)
    view = FingerView(FingerPosition.LEFT_INDEX, 0, 0, 50, ())
    twice = encode_fmr([view, view], image_width=100, image_height=100)
    refused(parse_fmr, twice, "appears twice")
    extra = _patch(good_fmr(), 22, b"\x02")
    refused(parse_fmr, extra, "runs past")


def test_fmr_extended_data_round_trip() -> None:
    view = FingerView(FingerPosition.LEFT_INDEX, 1, 8, 50, (), extended_data=b"\x00\x01\x00\x06ab")
    rec = parse_fmr(encode_fmr([view], image_width=100, image_height=100))
    assert rec.views[0].extended_data == b"\x00\x01\x00\x06ab"
    assert rec.views[0].impression_type == 8 and rec.views[0].view_number == 1


minutia = st.builds(
    Minutia,
    type=st.sampled_from(list(MinutiaType)),
    x=st.integers(0, 255),
    y=st.integers(0, 359),
    angle=st.integers(0, 255),
    quality=st.integers(0, 100),
)
view = st.builds(
    FingerView,
    position=st.sampled_from(list(FingerPosition)),
    view_number=st.integers(0, 15),
    impression_type=st.sampled_from([0, 1, 2, 3, 8]),
    quality=st.integers(0, 100),
    minutiae=st.lists(minutia, max_size=60).map(tuple),
    extended_data=st.binary(max_size=20),
)


@given(st.lists(view, min_size=1, max_size=3, unique_by=lambda v: (v.position, v.view_number)))
def test_fmr_round_trip(views: list[FingerView]) -> None:
    data = encode_fmr(views, image_width=256, image_height=360)
    rec = parse_fmr(data)
    assert rec.views == tuple(views) and rec.record_length == len(data)


@given(st.binary(max_size=200))
def test_random_bytes_only_raise_media_error(data: bytes) -> None:
    for fn in (
        parse_fmr,
        lambda d: verify_png(d, max_pixels=MAX),
        lambda d: verify_jpeg(d, max_pixels=MAX),
    ):
        with contextlib.suppress(MediaError):
            fn(data)


@given(st.binary(max_size=60), st.integers(0, 60))
def test_fmr_with_random_tail_never_crashes(tail: bytes, cut: int) -> None:
    data = good_fmr()[: 24 + cut] + tail
    with contextlib.suppress(MediaError):
        parse_fmr(data)


def test_generated_fmr_parse() -> None:
    import random

    rng = random.Random(5)
    for _ in range(50):
        rec = parse_fmr(synthetic_fmr(rng, 2), finger_position=2)
        assert 20 <= rec.minutiae_count <= 50
    for r in residents()[:100]:
        if r.finger_right_index_fmr:
            parse_fmr(r.finger_right_index_fmr, finger_position=FingerPosition.RIGHT_INDEX)
            parse_fmr(r.finger_left_index_fmr, finger_position=FingerPosition.LEFT_INDEX)
