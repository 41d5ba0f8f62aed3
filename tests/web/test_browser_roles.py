"""Operator and auditor in a real browser (Playwright, Debian's Chromium) against ``run.py
serve``: each signs in and walks the pages their role has, in Bahasa Indonesia and in English,
with a screenshot of every page under ``test-artifacts/browser/roles/``; no Indonesian page
shows one of the model's English codes. (The supervisor's walk is ``test_browser.py``.)"""

from __future__ import annotations

import os
import re

import pyotp
import pytest

from tests.web.test_browser import (  # noqa: F401  (the stack fixture)
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    NO_SYSTEM_BUS,
    OFFICE,
    PASSWORD,
    Stack,
    stack,
)
from tests.web.test_no_english_leaks import leaks, visible_text

pytestmark = pytest.mark.realstack

WALKS = {
    "operator": ["/queue", "/held", "/desk/", "/desk/follow-up", "/stations", "/stock"],
    "auditor": ["/audit", "/ledger", "/anomalies", "/ledger/documents", "/desk/ikd"],
}


@pytest.mark.parametrize("role", sorted(WALKS))
def test_a_role_walks_its_pages_in_both_languages(stack: Stack, role: str) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    stack.run("import", str(stack.tmp / "batch.zip"))
    name = f"{role[:3]}1"
    stack.run("user", "add", name, "--role", role, "--office", OFFICE, stdin=PASSWORD + "\n")
    shots = ARTIFACTS / "roles"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True, env={**os.environ, **NO_SYSTEM_BUS})
        context = browser.new_context(locale="id-ID")
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            page.goto(stack.base + "/login")
            page.fill("input[name=username]", name)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit] >> text=Masuk")
            if "/login/enrol" in page.url:  # a role that must use TOTP enrols first
                secret = page.locator("code.secret").inner_text().strip()
                page.fill("input[name=code]", pyotp.TOTP(secret).now())
                page.click("main form button[type=submit]")
            page.wait_for_load_state()
            assert "/login" not in page.url, page.url
            for lang in ("id", "en"):
                if lang == "en":
                    page.click("button >> text=EN")
                for path in WALKS[role]:
                    response = page.goto(stack.base + path)
                    assert response is not None and response.status == 200, (path, lang)
                    slug = re.sub(r"\W+", "-", path).strip("-") or "home"
                    page.screenshot(path=str(shots / f"{role}-{lang}-{slug}.png"),
                                    full_page=True)
                    if lang == "id":
                        words = leaks(visible_text(page.content()))
                        assert words == [], (path, words)
                    else:
                        assert page.locator("html").get_attribute("lang") == "en", path
        finally:
            context.close()
            browser.close()
    assert len(list(shots.glob(f"{role}-*.png"))) == 2 * len(WALKS[role])
