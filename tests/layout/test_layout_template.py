"""Template loading: shipped templates are valid; mistakes name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from printsrv.errors import PrintSrvError
from printsrv.layout import TemplateError, load_template, template_names
from printsrv.layout.template import TEMPLATES_DIR, parse_template

KTP = TEMPLATES_DIR / "ktp-el" / "layout.toml"


def test_shipped_templates_load() -> None:
    assert template_names() == ["kia", "ktp-el", "ktp-el-wna"]
    for name in template_names():
        tpl = load_template(name)
        assert tpl.id == name
        assert tpl.size_mm == (85.60, 53.98)
    kinds = {el.kind for el in load_template("ktp-el").elements}
    assert {"text", "photo", "signature"} <= kinds
    assert "signature" not in {el.kind for el in load_template("kia").elements}


def _error(text: str) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        parse_template(text, KTP)
    assert isinstance(info.value, PrintSrvError)
    return info.value


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        (
            "size = 8.0\nmin_size = 5.5",
            "sise = 8.0\nmin_size = 5.5",
            "element[0].sise",
            "unknown key",
        ),
        ('value = "{nama}"', 'value = "{name}"', "element[3].value", "unknown field {name}"),
        ('value = "{nama}"', 'value = "{nama:upper}"', "element[3].value", "unknown format"),
        ("lines = 2", 'lines = "2"', "element[3].lines", "expected int"),
        (
            "box = [21.5, 13.0, 39.5, 4.9]",
            "box = [21.5, 13.0, 39.5]",
            "element[3].box",
            "expected num[4]",
        ),
        (
            "box = [21.5, 13.0, 39.5, 4.9]",
            "box = [71.5, 13.0, 39.5, 4.9]",
            "element[3].box",
            "outside",
        ),
        ('align = "center"', 'align = "middle"', "element[0].align", "expected one of"),
        ('color = "#000000"', 'color = "black"', "defaults.color", "expected a colour"),
        (
            "labels_preprinted = false",
            'labels_preprinted = "no"',
            "card.labels_preprinted",
            "expected bool",
        ),
        ('font = "ocrb"', 'font = "ocr"', "element[2].font", "unknown font"),
        ('ocrb = "../fonts/OCRB.ttf"', 'ocrb = "../fonts/OCRB.otf"', "fonts.ocrb", "not found"),
        (
            "size = 5.5\nmin_size = 4.2",
            "size = 5.5\nmin_size = 6.0",
            "defaults.min_size",
            "min_size <= size",
        ),
    ],
)
def test_mistakes_are_located(old: str, new: str, key: str, reason: str) -> None:
    text = KTP.read_text()
    assert old in text
    bad = text.replace(old, new, 1)
    error = _error(bad)
    assert error.key == key
    assert reason in error.reason
    assert error.path == KTP
    leaf = key.rsplit(".", 1)[-1]
    needle = next(line for line in new.split("\n") if line.startswith(leaf))
    expected_line = _line_of(bad, needle)
    assert error.line == expected_line
    assert str(error).startswith(f"{KTP}:{expected_line}: {key}: ")


def test_syntax_error_has_line() -> None:
    text = KTP.read_text().replace("lines = 2", "lines = = 2", 1)
    error = _error(text)
    assert error.line == _line_of(text, "lines = = 2")
    assert error.key == "(syntax)"


def test_duplicate_id_and_missing_kind() -> None:
    text = KTP.read_text()
    bad = text.replace('id = "ttl"', 'id = "nama"', 1)
    assert "duplicate id" in _error(bad).reason
    bad = text.replace('kind = "photo"\n', "", 1)
    assert _error(bad).key.endswith(".kind")


def test_missing_file() -> None:
    from printsrv.layout import load_template_file

    with pytest.raises(TemplateError, match="cannot read"):
        load_template_file(Path("/nonexistent/layout.toml"))
