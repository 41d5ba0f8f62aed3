"""Text that goes into official documents and spreadsheets, made safe to put there.

* :func:`markup`: user-supplied text for a ReportLab ``Paragraph``, whose text is markup: a
  place name ``<img src="/etc/…"/>`` would embed a file of the server, ``<a href=…>`` a link,
  and ``BA <b>x`` would break the document for good. Escaped, the text prints as typed.
* :func:`csv_cell` / :func:`csv_text`: cells that a spreadsheet would run as a formula
  (``= + - @``, or a tab or carriage return before one) get a leading apostrophe, OWASP's rule
  for CSV injection; numbers stay numbers.
* :func:`same_person_key`: the form of a signatory's name and NIP under which "Budi Santoso."
  and "budi  santoso" are one person.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any
from xml.sax.saxutils import escape

#: Separates an officer's name from the NIP in the ledger's single name column.
NIP_SEPARATOR = " / NIP "

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def markup(text: object) -> str:
    """``text`` for a ReportLab paragraph: ``& < >`` and quotes escaped."""
    return escape(str(text), {'"': "&quot;", "'": "&#39;"})


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV document (``\\n`` line ends) with every cell made safe by :func:`csv_cell`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return buf.getvalue()


def same_person_key(name: str, nip: str) -> tuple[str, str]:
    """Name without case, accents, punctuation or extra spaces, and the NIP's digits only."""
    folded = unicodedata.normalize("NFKD", name).casefold()
    letters = "".join(c if c.isalnum() else " " for c in folded if not unicodedata.combining(c))
    return " ".join(letters.split()), re.sub(r"\D", "", nip)


def name_and_nip(signatory: str) -> tuple[str, str]:
    """A signatory as the ledger stores it (``NAME / NIP 1234`` or just ``NAME``), split."""
    name, _, nip = signatory.partition(NIP_SEPARATOR)
    return name, nip


def signature_block(people: Sequence[tuple[str, str, str, str]], nip_label: str = "NIP") -> Any:
    """A ReportLab table of signatures side by side: for each ``(role, title, name, nip)``
    the role (*Dibuat oleh*), the title (*Kepala Dinas …*), space to sign, the name in
    brackets and the NIP. Empty names leave a blank line to write on."""
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Table, TableStyle

    style = ParagraphStyle("sig", fontSize=8.5, leading=10.5, alignment=1)
    rows = [
        [Paragraph(markup(p[0]), style) for p in people],
        [Paragraph(markup(p[1]), style) for p in people],
        ["" for _ in people],
        [Paragraph(f"( {markup(p[2]) or '&nbsp;' * 40} )", style) for p in people],
        [
            Paragraph(f"{markup(nip_label)}: {markup(p[3])}" if p[3] else f"{markup(nip_label)}:",
                      style)
            for p in people
        ],
    ]
    table = Table(rows, rowHeights=[None, None, 22 * mm, None, None])
    table.setStyle(
        TableStyle(
            [
                ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 2), (-1, 2), 0.4, "#888888"),
            ]
        )
    )
    return table


def numbered_canvas(page_text: str, footer: str = "") -> Any:
    """A ReportLab canvas class that writes ``page_text`` (``"Halaman {page} dari {pages}"``)
    and ``footer`` at the foot of every page, once the page count is known."""
    from reportlab.pdfgen.canvas import Canvas

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                width = self._pagesize[0]
                self.setFont("Helvetica", 7.5)
                if footer:
                    self.drawString(18 * 2.8346, 10 * 2.8346, footer)
                self.drawRightString(
                    width - 18 * 2.8346,
                    10 * 2.8346,
                    page_text.format(page=self._pageNumber, pages=total),
                )
                super().showPage()
            super().save()

    return NumberedCanvas
