"""A gLabels 3 document with the same face as a project template, and its merge CSV.

The document has the card's size, one text object per text element of the template (its label
and its ``{field}`` slots as merge fields, the template's font size, box and alignment), the
photo and the signature as images whose file names come from the CSV. The CSV has one row per
record of a batch directory (``records.jsonl`` and its ``media/`` files): the records the
project imported from the same batch.
"""

from __future__ import annotations

import csv
import json
import string
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from printsrv.layout import Template
from printsrv.layout.compose import format_date

PHOTO, SIGNATURE = "photo_file", "signature_file"
_ALIGN = {"left": "Left", "center": "Center", "right": "Right"}
_FAMILY = {"sans": "Liberation Sans", "sans-bold": "Liberation Sans", "ocrb": "OCR-B"}


def _slots(value: str) -> list[tuple[str, str | None, str]]:
    """``value`` as (literal text, field or None, format) pieces."""
    return [(text, name, spec or "") for text, name, spec, _ in string.Formatter().parse(value)]


def _column(name: str, spec: str) -> str:
    return f"{name}__{spec}" if spec else name


def document_xml(template: Template) -> str:
    """The gLabels 3 document of ``template``'s face, merged from a CSV with keys on line 1."""
    w, h = template.size_mm
    objects = []
    for el in template.elements:
        x, y, bw, bh = el.box.x, el.box.y, el.box.w, el.box.h
        if el.kind in ("photo", "signature"):
            column = PHOTO if el.kind == "photo" else SIGNATURE
            objects.append(
                f'<Object-image x="{x}mm" y="{y}mm" w="{bw}mm" h="{bh}mm" field="{column}" '
                'a0="1" a1="0" a2="0" a3="1" a4="0" a5="0" shadow="False"/>'
            )
            continue
        if el.kind not in ("text", "label") or el.style is None:
            continue
        style = el.style
        pieces = [escape(f"{el.label}: ")] if el.label else []
        for text, name, spec in _slots(el.value):
            pieces.append(escape(text))
            if name is not None:
                pieces.append(f'<Field name="{_column(name, spec)}"/>')
        weight = "Bold" if style.font.endswith("bold") else "Regular"
        colour = "".join(f"{c:02x}" for c in style.color)
        objects.append(
            f'<Object-text x="{x}mm" y="{y}mm" w="{bw}mm" h="{bh}mm" '
            f'justify="{_ALIGN.get(style.align, "Left")}" valign="Top" auto_shrink="True" '
            'a0="1" a1="0" a2="0" a3="1" a4="0" a5="0" shadow="False">'
            f"<Span font_family={quoteattr(_FAMILY.get(style.font, 'Liberation Sans'))} "
            f'font_size="{style.size}" font_weight="{weight}" font_italic="False" '
            f'color="0x{colour}ff" line_spacing="{style.leading}">'
            + "".join(pieces)
            + "</Span></Object-text>"
        )
    return (
        '<?xml version="1.0"?>\n'
        '<Glabels-document xmlns="http://glabels.org/xmlns/3.0/">\n'
        f'  <Template brand="ktp-printsrv" part="{template.id}" size="Other" '
        f'width="{w}mm" height="{h}mm" description="{template.id} face">\n'
        f'    <Label-rectangle id="0" width="{w}mm" height="{h}mm" round="3.18mm" '
        'x_waste="0mm" y_waste="0mm">\n'
        '      <Layout nx="1" ny="1" x0="0mm" y0="0mm" dx="0mm" dy="0mm"/>\n'
        "    </Label-rectangle>\n"
        "  </Template>\n"
        '  <Objects id="0" rotate="False">\n    ' + "\n    ".join(objects) + "\n  </Objects>\n"
        '  <Merge type="Text/Comma/Line1Keys" src="%(csv)s"/>\n'
        "</Glabels-document>\n"
    )


def write_merge(template: Template, batch: Path, out: Path, *, issue: date) -> int:
    """Write ``out/face.glabels`` and ``out/records.csv`` (one row per record of ``batch``,
    all on this face, as the project renders them all); returns the number of rows."""
    out.mkdir(parents=True, exist_ok=True)
    columns = sorted({
        _column(name, spec) for el in template.elements for _, name, spec in _slots(el.value)
        if name is not None
    })  # fmt: skip
    rows = 0
    with (out / "records.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*columns, PHOTO, SIGNATURE])
        for line in (batch / "records.jsonl").read_text().splitlines():
            record = json.loads(line)
            values = {k: v for k, v in record.items() if isinstance(v, str)}
            values.setdefault("kab_kota", values.get("kabupaten_kota", ""))
            values["tanggal_terbit"] = issue.strftime("%d-%m-%Y")
            row = []
            for column in columns:
                name, _, spec = column.partition("__")
                value = values.get(name, "").upper()
                row.append(format_date(value) if spec == "date" else value)
            media = record.get("media", {})
            row += [str(batch / media[k]) if media.get(k) else "" for k in ("photo", "signature")]
            writer.writerow(row)
            rows += 1
    (out / "face.glabels").write_text(
        document_xml(template) % {"csv": escape(str(out / "records.csv"))}
    )
    return rows
