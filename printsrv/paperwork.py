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
