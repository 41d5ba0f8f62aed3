"""The handover desk in a real browser (Playwright, Debian's Chromium) against ``run.py serve``:
find a ready card, receive it at the desk, hand it to its owner with a signature drawn on the
canvas with the mouse, and download the receipt PDF. Screenshots go to
``test-artifacts/browser/desk-*.png``."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from datetime import UTC, datetime

import pyotp
import pytest

from tests.web.test_browser import (  # noqa: F401  (the stack fixture)
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    NO_SYSTEM_BUS,
    PASSWORD,
    Stack,
    stack,
)

pytestmark = pytest.mark.realstack


def test_the_desk_hands_a_card_over_in_the_browser(stack: Stack) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    stack.run("import", str(stack.tmp / "batch.zip"))
    db = stack.tmp / "instance" / "printsrv.db"
    with sqlite3.connect(db) as conn:  # a card printed earlier (the station is tested elsewhere)
        request_id, nik, nama = conn.execute(
            "SELECT request_id, nik, nama FROM record WHERE state = 'queued' ORDER BY id"
        ).fetchone()
        conn.execute("UPDATE record SET state = 'issued', issued_at = ? WHERE request_id = ?",
                     (datetime.now(UTC).isoformat(" "), request_id))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True, env={**os.environ, **NO_SYSTEM_BUS})
        context = browser.new_context(accept_downloads=True, locale="id-ID")
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            page.goto(stack.base + "/login")
            page.fill("input[name=username]", "sup1")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit] >> text=Masuk")
            page.wait_for_url(re.compile(r"/login/enrol$"))
            secret = page.locator("code.secret").inner_text().strip()
            page.fill("input[name=code]", pyotp.TOTP(secret).now())
            page.click("main form button[type=submit]")
            page.wait_for_url(re.compile(r"/queue"))

            page.click("nav >> text=Loket")
            page.fill("#desk-find input[name=q]", nik)
            page.click("#desk-find button[type=submit]")
            expect(page.locator("#desk-results")).to_contain_text(request_id)
            page.screenshot(path=str(ARTIFACTS / "desk-1-found.png"), full_page=True)
            page.click("#desk-results >> text=Terima di loket")
            page.wait_for_url(re.compile(r"/desk/\d+$"))
            expect(page.locator("dl")).to_contain_text("di loket pengambilan")

            page.select_option("#relation", "owner")
            page.fill("#collector_name", nama)
            page.fill("#collector_nik", nik)
            page.locator("#signature-pad").scroll_into_view_if_needed()
            box = page.locator("#signature-pad").bounding_box()  # viewport coordinates
            assert box is not None
            page.mouse.move(box["x"] + 20, box["y"] + 100)
            page.mouse.down()
            for step in range(1, 30):
                page.mouse.move(box["x"] + 20 + step * 12, box["y"] + 100 - (step % 5) * 12)
            page.mouse.up()
            page.screenshot(path=str(ARTIFACTS / "desk-2-form.png"), full_page=True)
            page.click("#desk-handover button[type=submit] >> text=Serahkan kartu")
            page.wait_for_url(re.compile(r"/desk/receipts/\d+$"))
            expect(page.locator("p.flash.ok")).to_contain_text("diserahkan")
            page.screenshot(path=str(ARTIFACTS / "desk-3-receipt.png"), full_page=True)
            href = page.locator("#receipt-pdf").get_attribute("href")
            response = page.request.get(stack.base + str(href))
            assert response.status == 200 and response.body().startswith(b"%PDF")
            pdf = ARTIFACTS / "desk-receipt.pdf"
            pdf.write_bytes(response.body())
        finally:
            context.close()
            browser.close()
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "TANDA TERIMA KTP-EL" in text and nik in text and "Tanda tangan penerima" in text
    with sqlite3.connect(db) as conn:
        state, = conn.execute("SELECT state FROM record WHERE request_id = ?",
                              (request_id,)).fetchone()
        signature, = conn.execute("SELECT signature_png FROM card_collection").fetchone()
    assert state == "collected" and signature.startswith(b"\x89PNG")
