"""The web app in a real browser (Playwright driving Debian's Chromium) against a real server.

A temporary instance is built with the CLI (init, users, token, station), ``run.py serve``
listens on a free loopback port, and the browser: signs in as a supervisor (TOTP enrolment
with pyotp), imports a demo batch through the API, views the queue and a record, receives
blanks and loads a ribbon through the stock forms, watches the station page while a virtual
station (``run.py station --on-request`` with the directory printer and the fake encoder)
prints the batch the operator starts on the station page,
downloads the monthly report PDF, and shows the anomaly flags. Screenshots go to
``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
NO_SYSTEM_BUS = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/system_bus_socket"}
OFFICE = "35.26.01"
PASSWORD = "kata sandi panjang sekali"

pytestmark = pytest.mark.realstack


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """A temporary instance: its environment, the CLI, and the server's base URL."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        instance = tmp / "instance"
        config = tmp / "printsrv.toml"
        config.write_text(
            f'instance_dir = "{instance}"\n'
            f'database_url = "sqlite:///{instance / "printsrv.db"}"\n'
            "[stations.web1]\n"
            f'office = "{OFFICE}"\nprofile = "virtual-ipp-card"\n'
            f'printer = "directory"\ndirectory = "{tmp / "cards"}"\nencoder = "fake"\n'
            "poll_interval = 0.1\nfake_chip_seconds = 0.3\nprint_seconds = 0.6\n"
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTSRV_")}
        self.env["PRINTSRV_CONFIG"] = str(config)
        self.base = ""
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Any] = []

    def run(self, *args: str, stdin: str | None = None, timeout: float = 180) -> str:
        out = subprocess.run(
            [sys.executable, "run.py", *args], cwd=ROOT, env=self.env, input=stdin,
            capture_output=True, text=True, timeout=timeout,
        )
        assert out.returncode == 0, f"{args}: {out.stdout[-2000:]} {out.stderr[-2000:]}"
        return out.stdout

    def start(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        fh = (self.tmp / log).open("wb")
        self.logs.append(fh)
        proc = subprocess.Popen([sys.executable, "run.py", *args], cwd=ROOT, env=self.env,
                                stdout=fh, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        for fh in self.logs:
            fh.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    st = Stack(tmp_path)
    st.run("init", "--dev")
    st.run("demo-data", "--count", "6", "--out", str(tmp_path / "batch.zip"), "--seed", "11",
           "--batch-id", "WEB-E2E-1", "--office", OFFICE)
    st.run("user", "add", "sup1", "--role", "supervisor", "--office", OFFICE,
           stdin=PASSWORD + "\n")
    st.env["E2E_TOKEN"] = st.run("token", "add", "e2e-client", "--scope", "client",
                                 "--office", OFFICE).strip().splitlines()[-1]
    st.run("ledger", "station", "--name", "web1", "--office", OFFICE,
           "--profile", "virtual-ipp-card")
    port = _free_port()
    server = st.start("serve", "--host", "127.0.0.1", "--port", str(port), "--insecure-cookies",
                      log="serve.log")
    st.base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
    try:
        yield st
    finally:
        st.stop()


def test_browser_end_to_end(stack: Stack) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = iter(range(1, 100))

    def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.screenshot(path=str(ARTIFACTS / f"{next(shots):02d}-{name}.png"), full_page=True)

    with sync_playwright() as pw:
        # Not on the system D-Bus: a CUPS stack of a test running beside this one may have
        # started it and stop it at any moment, and Chromium aborts when its bus goes away.
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True, env={**os.environ, **NO_SYSTEM_BUS})
        context = browser.new_context(accept_downloads=True, locale="id-ID")
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            # sign in; supervisors enrol TOTP on first sign-in
            page.goto(stack.base + "/login")
            page.fill("input[name=username]", "sup1")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit] >> text=Masuk")
            page.wait_for_url(re.compile(r"/login/enrol$"))
            secret = page.locator("code.secret").inner_text().strip()
            shot(page, "totp-enrol")
            page.fill("input[name=code]", pyotp.TOTP(secret).now())
            page.click("main form button[type=submit]")
            page.wait_for_url(re.compile(r"/queue"))

            # import a demo batch through the API
            data = (stack.tmp / "batch.zip").read_bytes()
            resp = page.request.post(
                stack.base + "/api/v1/batches", data=data,
                headers={"Authorization": f"Bearer {stack.env['E2E_TOKEN']}",
                         "Content-Type": "application/zip"},
            )
            assert resp.status == 200, resp.text()
            result = resp.json()
            queued = int(result["imported"]) - int(result["held"])
            assert queued >= 1, result

            # the queue and a record
            page.goto(stack.base + "/queue?state=queued")
            rows = page.locator("table.rows tbody tr a")
            expect(rows).to_have_count(queued)
            shot(page, "queue")
            rows.first.click()
            expect(page.locator("h1")).to_contain_text("PC-")
            shot(page, "record")

            # stock: receive a carton, receive and load a ribbon (the supervisor forms)
            page.goto(stack.base + "/stock")
            form = page.locator("#receive form")
            form.locator("input[name=first]").fill("KTP-000001")
            form.locator("input[name=last]").fill("KTP-000020")
            form.locator("input[name=handover_number]").fill("BAST/E2E/1")
            form.locator("input[name=from_party]").fill("Ditjen Dukcapil")
            form.locator("button[type=submit]").click()
            expect(page.locator("p.flash.ok")).to_contain_text("20")
            ribbons = page.locator("#ribbons form")
            ribbons.nth(0).locator("input[name=serial]").fill("RIB-E2E-1")
            ribbons.nth(0).locator("input[name=type]").fill("YMCKOK")
            ribbons.nth(0).locator("button[type=submit]").click()
            expect(page.locator("p.flash.ok")).to_contain_text("RIB-E2E-1")
            page.locator("#ribbons form").nth(1).locator("input[name=serial]").fill("RIB-E2E-1")
            page.locator("#ribbons form").nth(1).locator("button[type=submit]").click()
            expect(page.locator("p.flash.ok")).to_contain_text("RIB-E2E-1")
            shot(page, "stock")
            on_hand = page.locator('#on-hand tr[data-place="35.26.01||KTP-EL"] td')
            expect(on_hand.last).to_have_text("20")

            # the station page: the hopper is filled from here (a paused station out of
            # blanks can be fixed without the CLI)
            page.goto(stack.base + "/stations")
            page.click("text=web1")
            expect(page.locator("#resume-form")).to_have_count(0)  # not paused
            page.locator("#load-form input[name=count]").fill("20")
            page.locator("#load-form button[type=submit]").click()
            expect(page.locator("p.flash.ok")).to_contain_text("20")
            expect(page.locator("#st-hopper")).to_have_text("20")
            shot(page, "station-before")
            # the station runs on request: it prints only the batch the operator starts here
            station = stack.start("station", "web1", "--on-request", log="station.log")
            expect(page.locator("#st-beat")).not_to_have_text("—", timeout=30_000)
            page.locator("#batch-form input[name=count]").fill(str(queued))
            page.click("text=Cetak batch")
            expect(page.locator("p.flash.ok")).to_contain_text("kartu diminta")
            # progress arrives by polling (no reload): the first finished card, then all
            expect(page.locator("#st-jobs tr").first).to_contain_text("PC-", timeout=60_000)
            shot(page, "station-printing")
            expect(page.locator("#st-issued")).to_have_text(str(queued), timeout=90_000)
            expect(page.locator("#st-jobs tr")).to_have_count(queued)
            shot(page, "station-after")
            station.terminate()
            assert station.wait(timeout=60) == 0, (stack.tmp / "station.log").read_text()[-3000:]
            assert len(list((stack.tmp / "cards").glob("*.pdf"))) >= queued

            # the monthly report, downloaded as PDF
            page.goto(stack.base + "/ledger")
            expect(page.locator("p.chain.ok")).to_be_visible()
            shot(page, "ledger")
            with page.expect_download() as info:
                page.click("#dl-pdf")
            download = info.value
            target = ARTIFACTS / download.suggested_filename
            download.save_as(str(target))
            assert target.read_bytes().startswith(b"%PDF")
            text = subprocess.run(["pdftotext", "-layout", str(target), "-"],
                                  capture_output=True, text=True, check=True).stdout
            for needle in ("Laporan Stok Blangko KTP-el", "Stok awal", "Dicetak",
                           "Stok akhir", "Dibuat oleh", "Mengetahui", "Halaman 1 dari"):
                assert needle in text, needle
            printed = next(ln for ln in text.splitlines() if ln.strip().startswith("Dicetak"))
            assert printed.split()[-1] == str(queued)

            # documents and anomalies
            page.goto(stack.base + "/ledger/documents")
            expect(page.locator("text=BAST/E2E/1")).to_be_visible()
            shot(page, "documents")
            page.goto(stack.base + "/anomalies")
            expect(page.locator("h1")).to_contain_text("anomali")
            shot(page, "anomalies")

            # the same pages in English
            page.click("form.lang button[value=en]")
            for path, heading in (("/ledger", "KTP-el Blank Stock Report"), ("/stock", None),
                                  ("/stations", None), ("/anomalies", "Anomaly")):
                page.goto(stack.base + path)
                if heading:
                    expect(page.locator("h1")).to_contain_text(heading)
                shot(page, f"en-{path.strip('/')}")
        except Exception:
            try:
                shot(page, "failure")
            except Exception as exc:  # the page itself may be gone; keep the first error
                print(f"no failure screenshot: {exc}")
            raise
        finally:
            context.close()
            browser.close()
    stack.run("ledger", "check")  # the ledger balances after all of it
