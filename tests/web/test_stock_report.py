"""The "Buku stok" page and its PDF: the monthly report in the reader's language, the regency
roll-up an auditor of 35.26 sees, and the signature block from the form or the settings."""

from __future__ import annotations

import dataclasses
import re
import subprocess

import pytest
from flask import Flask

from printsrv.config import Settings
from printsrv.localtime import local_date
from tests.web.conftest import World, sign_in
from tests.web.stockdata import make_stock


@pytest.fixture
def stock(settings: Settings, world: World) -> dict[str, dict[str, str]]:
    return make_stock(settings)


def _cells(page: str, key: str) -> list[str]:
    """The cells of the report row with ``data-key`` ``key`` (first table that has it)."""
    row = re.search(rf'<tr data-key="{re.escape(key)}"[^>]*>(.*?)</tr>', page, re.S)
    assert row, key
    return [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]


def test_auditor_of_the_regency_sees_the_roll_up(
    app_nocsrf: Flask, settings: Settings, stock: dict[str, dict[str, str]]
) -> None:
    month = local_date("35.26").strftime("%Y-%m")
    client = app_nocsrf.test_client()
    sign_in(client, settings, "auditor_reg")
    page = client.get(f"/ledger?month={month}").get_data(as_text=True)
    assert "Laporan Stok Blangko KTP-el" in page and "Rincian per kantor" in page
    # 30 received at 35.26.01; the regency itself has none; 35.27.01 is another regency's
    assert _cells(page, "received")[-1] == "30"
    assert _cells(page, "35.26.01")[0] == "35.26.01 KECAMATAN A"
    assert _cells(page, "35.26")[0] == "35.26 DISDUKCAPIL BANGKALAN"
    assert "35.27.01" not in page.split("Rincian per kantor", 1)[1].split("</table>", 1)[0]
    for word in ("Stok awal", "Mutasi masuk", "Dicetak", "Mutasi keluar", "Stok akhir",
                 "Dimusnahkan", "Blangko KIA", "Pita (ribbon) dan film", " WIB"):
        assert word in page, word
    for key in ("transferred_in", "spoiled_total", "blanks /"):
        assert f">{key}<" not in page, key
    client.post("/lang", data={"lang": "en", "next": "/ledger"})
    page = client.get(f"/ledger?month={month}").get_data(as_text=True)
    assert "KTP-el Blank Stock Report" in page and "Opening stock" in page


def test_report_pdf_carries_the_signatures_from_settings_and_form(
    app_nocsrf: Flask, settings: Settings, stock: dict[str, dict[str, str]], tmp_path
) -> None:
    from printsrv.web import create_app

    configured = dataclasses.replace(settings, report_signatories={
        "head_title": "Kepala Dinas",
        "35.26": {"head_name": "Drs. Bambang Wijaya", "head_nip": "197002021995031002"},
    })
    app = create_app(configured, {"TESTING": True, "SESSION_COOKIE_SECURE": False,
                                  "WTF_CSRF_ENABLED": False})
    month = local_date("35.26.01").strftime("%Y-%m")
    client = app.test_client()
    sign_in(client, settings, "supervisor_own")
    page = client.get(f"/ledger?month={month}").get_data(as_text=True)
    assert 'value="Drs. Bambang Wijaya"' in page  # the form starts from the settings
    resp = client.get(f"/ledger/report.pdf?office=35.26.01&month={month}"
                      "&prepared_name=Siti+Aminah&prepared_nip=198001012005012001")
    assert resp.status_code == 200
    assert f'laporan-stok-35.26.01-{month}.pdf' in resp.headers["Content-Disposition"]
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(resp.data)
    body = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    for needle in ("Laporan Stok Blangko KTP-el", "35.26.01 KECAMATAN A", "Dibuat oleh",
                   "Mengetahui", "Kepala Dinas", "Siti Aminah", "NIP: 198001012005012001",
                   "Drs. Bambang Wijaya", "NIP: 197002021995031002", "Halaman 1 dari"):
        assert needle in body, needle
    closing = next(ln for ln in body.splitlines() if ln.strip().startswith("Stok akhir"))
    assert closing.split()[-1] == "26"  # 30 received, 4 spoiled (stockdata)
