"""User text in official documents prints as typed (ReportLab markup escaped), CSV cells are
never formulas, destruction signatories are compared as people, and the serials to destroy
are named explicitly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from printsrv.paperwork import csv_cell, csv_text, markup, same_person_key


@pytest.mark.parametrize(
    "text",
    ['<img src="/etc/hostname"/>', '<a href="javascript:alert(1)">klik</a>', "BA <b>x",
     "R&D <3"],
)
def test_berita_acara_prints_user_text_as_typed(tmp_path: Path, text: str) -> None:
    from datetime import UTC, datetime

    from printsrv.ledger.models import DestructionRecord
    from printsrv.models import Office, OfficeKind
    from printsrv.web.documents import destruction_pdf

    record = DestructionRecord(
        number=f"BA/{text}", office_id=1, officer_1="BUDI / NIP 1", officer_2="ANI / NIP 2",
        witness="JOKO / NIP 3", witness_role=text, place=text, method="shredding", count=1,
        actor="op", created_at=datetime(2026, 12, 5, tzinfo=UTC),
    )
    office = Office(code="35.26.01", name="KECAMATAN A", kind=OfficeKind.KECAMATAN)
    pdf = destruction_pdf(record, office, {"causes": {"chip_failure": 1},
                                           "serials": ["KTP-000001"]})
    path = tmp_path / "ba.pdf"
    path.write_bytes(pdf)
    body = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert " ".join(text.split()) in " ".join(body.split())
    # No file of the server embedded as an image, no link annotation: the text is just text.
    assert b"/Subtype /Image" not in pdf and b"/URI" not in pdf and b"/Annot" not in pdf


def test_markup_escapes() -> None:
    assert markup('R&D <3 "x"') == "R&amp;D &lt;3 &quot;x&quot;"


def test_csv_cells_never_formulas() -> None:
    assert csv_cell('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    for start in "=+-@\t\r":
        assert str(csv_cell(start + "1")).startswith("'")
    assert csv_cell(-3) == -3 and csv_cell("BAST/001") == "BAST/001"
    text = csv_text(["a"], [["=1+1"], ["@SUM(A1)"], ["ok"]])
    assert text.splitlines()[1:] == ["'=1+1", "'@SUM(A1)", "ok"]


def test_same_person_key() -> None:
    assert same_person_key("Budi Santoso.", "19800101 200501 1 001") == same_person_key(
        "budi  santoso", "198001012005011001")
    assert same_person_key("Budi Santoso", "1") != same_person_key("Budi Santosa", "1")


def test_ledger_report_csv_defuses_a_formula_number(settings: object) -> None:
    from printsrv.db import unit_of_work
    from printsrv.ledger.blanks import receive_blanks
    from printsrv.ledger.reports import render_csv, stock_report
    from printsrv.localtime import local_date
    from printsrv.offices import ensure_office

    with unit_of_work(settings) as session:  # type: ignore[arg-type]
        ensure_office(session, "35.26.01", actor="t")
        receive_blanks(session, office_code="35.26.01", first="KTP-000001", last="KTP-000003",
                       handover_number='=HYPERLINK("http://evil","x")', actor="t")
        month = local_date("35.26.01").strftime("%Y-%m")
        text = render_csv(stock_report(session, "35.26.01", month))
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


def test_one_person_cannot_sign_twice_under_another_spelling(settings: object) -> None:
    from printsrv.db import unit_of_work
    from printsrv.ledger.blanks import (
        blank_by_serial,
        destroy_blanks,
        receive_blanks,
        spoil_blank,
    )
    from printsrv.ledger.errors import LedgerError
    from printsrv.ledger.models import SpoilCause
    from printsrv.offices import ensure_office

    with unit_of_work(settings) as session:  # type: ignore[arg-type]
        ensure_office(session, "35.26.01", actor="t")
        receive_blanks(session, office_code="35.26.01", first="KTP-000001", last="KTP-000002",
                       handover_number="BAST/1", actor="t")
        spoil_blank(session, blank_by_serial(session, "KTP-000001"),
                    cause=SpoilCause.HANDLING_DAMAGE, actor="t")
        with pytest.raises(LedgerError, match="two different officers"):
            destroy_blanks(session, office_code="35.26.01", number="BA/1",
                           officers=("Budi Santoso. / NIP 1980", "budi  santoso / NIP 1981"),
                           witness="Joko / NIP 1982", actor="t", serials=["KTP-000001"])
        with pytest.raises(LedgerError, match="two different officers"):
            destroy_blanks(session, office_code="35.26.01", number="BA/2",
                           officers=("Budi / NIP 1980.01", "Ani / NIP 198001"),
                           witness="Joko / NIP 1982", actor="t", serials=["KTP-000001"])
