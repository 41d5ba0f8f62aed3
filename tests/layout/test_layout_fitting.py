"""Random long values either fit inside their boxes (checked from the layout) or are refused
by name; never overflow, never silent truncation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from printsrv.cardinput import CardInput
from printsrv.layout import RenderError, load_template
from printsrv.layout.compose import compose
from printsrv.layout.fitting import fit_text
from printsrv.layout.fonts import face
from printsrv.layout.template import Box

LETTERS = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ .,'-/0123456789W")
WORD = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZW"), min_size=1, max_size=18)
VALUE = st.one_of(
    st.lists(WORD, min_size=1, max_size=12).map(" ".join),
    st.text(LETTERS, min_size=1, max_size=110).filter(str.strip),
)
FIELDS = ("nama", "alamat", "tempat_lahir", "kel_desa", "kecamatan", "pekerjaan", "provinsi")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from(FIELDS), value=VALUE)
def test_long_values_fit_or_are_refused(
    make_card: Callable[..., CardInput], field: str, value: str
) -> None:
    template = load_template("ktp-el")
    card = make_card(**{field: value})
    try:
        layout = compose(template, card)
    except RenderError as error:
        assert error.field == field
        assert field in str(error)
        return
    elements = {el.id: el for el in template.elements}
    for el_id, boxes in layout.boxes.items():
        el = elements[el_id]
        if el.kind != "text":
            continue
        # Stacked rows may move up, never down, and never grow.
        allowed = Box(el.box.x, 0.0, el.box.w, el.box.y + el.box.h)
        assert 1 <= len(boxes) <= el.lines
        for box in boxes:
            assert allowed.contains(box), (el_id, box, el.box)
        assert el.style is not None
        assert el.style.min_size <= layout.sizes[el_id] <= el.style.size
    # Nothing dropped: the words of the value are all on the card, in order.
    printed = " ".join(t.text for t in layout.texts)
    assert " ".join(value.upper().split()) in printed or all(
        w in printed for w in value.upper().split()
    )


@settings(max_examples=200, deadline=None)
@given(
    text=VALUE,
    w=st.floats(5, 60),
    lines=st.integers(1, 4),
    size=st.floats(4, 9),
)
def test_fit_text_stays_in_its_box(text: str, w: float, lines: int, size: float) -> None:
    font = face(load_template("ktp-el").fonts["sans"])
    box = Box(10.0, 5.0, w, lines * size * 1.25 * 25.4 / 72)
    fitted = fit_text(text, font, box, size, 4.0, 1.25, lines, "center")
    if fitted is None:
        # Refused only when, at the smallest size, no word wrap within the box exists: a word
        # is wider than the box, or greedy wrapping (minimal in lines) needs too many lines.
        words = text.split()
        assert max(font.width_mm(word, 4.0) for word in words) > w or _greedy_lines(
            font, words, w
        ) > min(lines, int(box.h / (4.0 * 1.25 * 25.4 / 72) + 1e-9))
        return
    assert " ".join(line.text for line in fitted.lines) == " ".join(text.split())
    assert 4.0 <= fitted.size <= size
    for line in fitted.lines:
        assert box.contains(line.box)
        assert font.width_mm(line.text, fitted.size) <= w + 1e-6


def _greedy_lines(font: object, words: list[str], w: float) -> int:
    count, line = 1, ""
    for word in words:
        candidate = f"{line} {word}" if line else word
        if font.width_mm(candidate, 4.0) <= w + 1e-9 or not line:  # type: ignore[attr-defined]
            line = candidate
        else:
            count, line = count + 1, word
    return count


def test_shrink_before_wrap(make_card: Callable[..., CardInput]) -> None:
    template = load_template("ktp-el")
    short = compose(template, make_card(nama="BUDI"))
    assert short.sizes["nama"] == 5.5 and len(short.boxes["nama"]) == 1
    longer = compose(template, make_card(nama="SITI NURHALIZA BINTI ABDULLAH BIN MUHAMMAD"))
    assert len(longer.boxes["nama"]) == 1 and 4.2 <= longer.sizes["nama"] < 5.5
    longest = compose(template, make_card(nama="A" * 20 + " " + "B" * 20 + " " + "C" * 18))
    assert len(longest.boxes["nama"]) == 2


def test_stack_moves_rows_up(make_card: Callable[..., CardInput]) -> None:
    template = load_template("ktp-el")
    one = compose(template, make_card(nama="BUDI"))
    two = compose(template, make_card(nama="A" * 20 + " " + "B" * 20 + " " + "C" * 18))
    assert two.boxes["ttl"][0].y - one.boxes["ttl"][0].y == pytest.approx(2.45)
    assert one.boxes["nik"] == two.boxes["nik"]


def test_unfittable_value_is_refused_by_name(make_card: Callable[..., CardInput]) -> None:
    template = load_template("ktp-el")
    try:
        compose(template, make_card(kel_desa="W" * 40))
    except RenderError as error:
        assert error.field == "kel_desa"
        assert "does not fit" in error.reason
    else:  # pragma: no cover
        raise AssertionError("should not fit")
    labels_only = replace(template, labels_preprinted=True)
    assert compose(labels_only, make_card()).boxes["nama"]


def test_size_grid_never_drops_below_minimum() -> None:
    from printsrv.layout.fitting import _sizes

    for start in (4.0, 4.05, 6.3, 7.0, 8.15, 9.0):
        sizes = _sizes(start, 4.0)
        assert sizes[0] == start and sizes[-1] == 4.0 and min(sizes) >= 4.0


def _overlap(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def test_card_access_number_printed_when_the_card_has_one(
        make_card: Callable[..., CardInput]) -> None:
    template = load_template("ktp-el")
    with_can = compose(template, replace(make_card(), card_access_number="019283"))
    assert [r.text for r in with_can.texts if r.field == "card_access_number"] == ["CAN 019283"]
    (box,) = with_can.boxes["card_access_number"]
    assert box.y + box.h < 53.98
    assert not any(_overlap(box, other) for name, boxes in with_can.boxes.items()
                   if name != "card_access_number" for other in boxes)
    without = compose(template, make_card())
    assert "card_access_number" not in without.boxes
    wna = load_template("ktp-el-wna")
    assert any(el.id == "card_access_number" for el in wna.elements)
