"""``run.py ledger …`` as an operator uses it, and ``ledger check`` catching tampering."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from printsrv import PROJECT_ROOT
from printsrv.config import Settings
from printsrv.db import engine_for, session_factory
from printsrv.ledger.models import BlankState
from printsrv.localtime import WIB

Cli = Callable[..., tuple[int, str, str]]
OFFICE = "35.26.01"
MONTH = datetime.now(UTC).astimezone(WIB.tz).strftime("%Y-%m")


def sn(n: int) -> str:
    return f"KTP2026-{n:08d}"


def ok(cli: Cli, *args: str) -> str:
    code, out, err = cli(*args)
    assert code == 0, f"{args}: {err}"
    return out


def _adj_id(out: str) -> str:
    return out.split("adjustment ", 1)[1].split()[0]


def _stock(cli: Cli) -> str:
    """A month of work through the CLI; returns the approved adjustment's id."""
    ok(
        cli,
        "ledger",
        "receive",
        "--office",
        OFFICE,
        "--first",
        sn(1),
        "--last",
        sn(100),
        "--handover",
        "BAST/001/2026",
        "--carton",
        "C-17",
        "--from",
        "DISDUKCAPIL PROV JATIM",
        "--date",
        "2026-03-02",
        "--actor",
        "alice",
    )
    ok(cli, "ledger", "station", "--name", "st1", "--office", OFFICE, "--cups-queue", "Card1")
    ok(cli, "ledger", "load", "--station", "st1", "--count", "10", "--actor", "op1")
    ok(cli, "ledger", "load", "--station", "st1", "--first", sn(50), "--last", sn(52))
    ok(cli, "ledger", "unload", "--station", "st1", "--first", sn(50), "--last", sn(52))
    ok(cli, "ledger", "spoil", "--serial", sn(1), "--cause", "print_defect", "--actor", "op1")
    ok(cli, "ledger", "spoil", "--serial", sn(99), "--cause", "handling_damage")
    ok(
        cli,
        "ledger",
        "transfer",
        "--from",
        OFFICE,
        "--to",
        "35.26.02",
        "--first",
        sn(90),
        "--last",
        sn(98),
        "--handover",
        "BAST/002/2026",
        "--actor",
        "alice",
    )
    ok(
        cli,
        "ledger",
        "destroy",
        "--office",
        OFFICE,
        "--record",
        "BAP/001/2026",
        "--officer",
        "Budi",
        "--officer",
        "Sari",
        "--witness",
        "Inspektorat: Joko",
        "--witness-role",
        "Inspektorat",
        "--actor",
        "alice",
    )
    adj = _adj_id(
        ok(
            cli,
            "ledger",
            "adjust",
            "--office",
            OFFICE,
            "--kind",
            "write_off",
            "--serial",
            sn(89),
            "--reason",
            "not found at stock count",
            "--actor",
            "alice",
        )
    )
    ok(cli, "ledger", "approve", adj, "--actor", "bob")
    ok(
        cli,
        "ledger",
        "ribbon",
        "receive",
        "--office",
        OFFICE,
        "--serial",
        "R-1",
        "--capacity",
        "200",
    )
    ok(
        cli,
        "ledger",
        "ribbon",
        "receive",
        "--office",
        OFFICE,
        "--serial",
        "R-2",
        "--capacity",
        "200",
    )
    ok(
        cli,
        "ledger",
        "ribbon",
        "receive",
        "--office",
        OFFICE,
        "--kind",
        "film",
        "--serial",
        "F-1",
        "--type",
        "FILM",
        "--capacity",
        "500",
    )
    ok(cli, "ledger", "ribbon", "load", "--station", "st1", "--serial", "R-1")
    ok(cli, "ledger", "ribbon", "load", "--station", "st1", "--serial", "F-1", "--kind", "film")
    ok(
        cli,
        "ledger",
        "ribbon",
        "replace",
        "--station",
        "st1",
        "--serial",
        "R-2",
        "--printer-level",
        "3",
    )
    return adj


def test_every_command(cli: Cli, settings: Settings) -> None:
    _stock(cli)
    out = ok(cli, "ledger", "check")
    assert "ledger BALANCED" in out and f"{OFFICE} KTP-EL: received 100" in out
    data = json.loads(ok(cli, "ledger", "report", "--office", OFFICE, "--month", MONTH))
    expected = {
        "opening": 0,
        "received": 100,
        "transferred_in": 0,
        "issued": 0,
        "transferred_out": 9,
        "destroyed": 2,
        "closing": 100 - 3 - 9,
    }
    assert {k: data[k] for k in expected} == expected
    assert data["spoiled"]["print_defect"] == 1 and data["spoiled"]["handling_damage"] == 1
    assert data["spoiled"]["missing"] == 1 and sum(data["spoiled"].values()) == 3
    assert data["balanced"] is True
    assert data["documents"]["received"][0]["number"] == "BAST/001/2026"
    assert data["documents"]["destroyed"][0]["witness"] == "Inspektorat: Joko"
    assert data["forecast"]["cards_possible"] == 88  # blanks are the limit
    assert [r["serial"] for r in data["ribbons"]["on_hand"]] == ["R-2"]
    assert data["film"]["on_hand"][0]["remaining_panels"] == 500

    other = json.loads(ok(cli, "ledger", "report", "--office", "35.26.02", "--month", MONTH))
    assert other["transferred_in"] == 9 and other["closing"] == 9

    shown = json.loads(ok(cli, "ledger", "show", sn(1), "--json"))
    assert shown["state"] == "destroyed" and shown["spoil_cause"] == "print_defect"
    assert [j["kind"] for j in shown["journal"]] == ["receive", "load", "spoil", "destroy"]
    office = json.loads(ok(cli, "ledger", "show", "--office", OFFICE, "--json"))
    assert office["blanks"] == {"in_stock": 79, "in_hopper": 9, "spoiled": 1, "destroyed": 2}
    assert "KTP2026-00000001" in ok(cli, "ledger", "show", sn(1))


def test_refusals_exit_nonzero_with_the_reason(cli: Cli, settings: Settings) -> None:
    adj = _stock(cli)
    code, _, err = cli("ledger", "approve", adj, "--actor", "carol")
    assert code == 1 and "already approved" in err
    adj = _adj_id(
        ok(
            cli,
            "ledger",
            "adjust",
            "--office",
            OFFICE,
            "--kind",
            "correct_state",
            "--serial",
            sn(2),
            "--to-state",
            "in_stock",
            "--reason",
            "found on the desk",
            "--actor",
            "alice",
        )
    ).removeprefix("ADJ-")
    code, _, err = cli("ledger", "approve", adj, "--actor", "alice")
    assert code == 1 and "different person" in err
    ok(cli, "ledger", "approve", adj, "--actor", "bob", "--reject", "--note", "no")
    code, _, err = cli("ledger", "spoil", "--serial", sn(1), "--cause", "qc_reject")
    assert code == 1 and sn(1) in err
    code, _, err = cli(
        "ledger",
        "receive",
        "--office",
        OFFICE,
        "--first",
        sn(100),
        "--last",
        sn(101),
        "--handover",
        "BAST/003/2026",
    )
    assert code == 1 and sn(100) in err
    code, _, err = cli(
        "ledger",
        "destroy",
        "--office",
        OFFICE,
        "--record",
        "BAP/2",
        "--officer",
        "A",
        "--witness",
        "W",
    )
    assert code == 1 and "two officers" in err
    code, _, err = cli("ledger", "report", "--office", OFFICE, "--month", "2026-13")
    assert code == 1 and "YYYY-MM" in err
    ok(cli, "ledger", "check")  # nothing half-applied


def _pdftotext(pdf: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def _line(body: str, label: str) -> list[str]:
    """The words of the first line of ``body`` that starts with ``label``."""
    return next(line for line in body.splitlines() if line.strip().startswith(label)).split()


def test_report_csv_and_pdf(cli: Cli, settings: Settings, tmp_path: Path) -> None:
    _stock(cli)
    out = ok(cli, "ledger", "report", "--office", OFFICE, "--month", MONTH, "--format", "csv")
    rows = {r["kunci"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["blanks:KTP-EL:received"]["Jumlah"] == "100"
    assert rows["blanks:KTP-EL:closing"]["Uraian"] == "Stok akhir"
    assert rows["blanks:KTP-EL:closing"]["Jumlah"] == "88"
    assert rows["blanks:KTP-EL:spoiled:print_defect"]["Jumlah"] == "1"
    assert rows["check:balanced"]["Jumlah"] == "SEIMBANG"
    pdf = tmp_path / "report.pdf"
    ok(cli, "ledger", "report", "--office", OFFICE, "--month", MONTH, "--format", "pdf",
       "--out", str(pdf), "--prepared-name", "Siti Aminah", "--prepared-nip",
       "198001012005012001", "--head-name", "Drs. Bambang Wijaya", "--head-nip",
       "197002021995031002", "--head-title", "Kepala Dinas")
    assert pdf.read_bytes().startswith(b"%PDF")
    body = _pdftotext(pdf)
    for needle in (
        "Laporan Stok Blangko KTP-el",
        "KECAMATAN",  # the office's name from the office table
        "Blangko KTP-el (dengan chip)",
        "Blangko KIA",
        "Stok awal",
        "Diterima",
        "Mutasi masuk",
        "Mutasi keluar",
        "Dicetak",
        "Rusak: Cacat cetak",
        "Rusak: Rusak saat penanganan",
        "Dimusnahkan",
        "Stok akhir",
        "BAST/001/2026",
        "BAP/001/2026",
        "Pita (ribbon) dan film",
        "R-2",
        "SEIMBANG",
        "Dibuat oleh",
        "Mengetahui",
        "Kepala Dinas",
        "Siti Aminah",
        "NIP: 198001012005012001",
        "Drs. Bambang Wijaya",
        "NIP: 197002021995031002",
        "Halaman 1 dari",
        " WIB",
    ):
        assert needle in body, needle
    assert "Opening stock" not in body and "Closing stock" not in body
    assert _line(body, "Stok akhir")[-1] == "88"
    assert _line(body, "Diterima")[-1] == "100"
    assert _line(body, "Mutasi keluar")[-1] == "9"

    english = tmp_path / "report-en.pdf"
    ok(cli, "ledger", "report", "--office", OFFICE, "--month", MONTH, "--format", "pdf",
       "--lang", "en", "--out", str(english))
    body = _pdftotext(english)
    for needle in ("KTP-el Blank Stock Report", "Opening stock", "Closing stock", "Prepared by",
                   "Acknowledged by", "Page 1 of", "BALANCED"):
        assert needle in body, needle
    assert _line(body, "Closing stock")[-1] == "88"


def test_regency_report_rolls_up_its_kecamatan_offices(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    """A report for 35.26 sums its own stock and every kecamatan under it, a line per office."""
    _stock(cli)  # 100 received at 35.26.01, 9 of them moved to 35.26.02
    ok(cli, "ledger", "receive", "--office", "35.26", "--first", sn(500), "--last", sn(519),
       "--handover", "BAST/009/2026")
    data = json.loads(ok(cli, "ledger", "report", "--office", "35.26", "--month", MONTH))
    assert data["rollup"] is True
    lines = {line["code"]: line for line in data["offices"]}
    assert set(lines) >= {"35.26", OFFICE, "35.26.02"}
    assert (lines["35.26"]["received"], lines[OFFICE]["received"]) == (20, 100)
    assert lines["35.26.02"]["transferred_in"] == 9
    assert data["received"] == 120 and data["closing"] == 20 + 88 + 9
    assert data["stock_types"]["KTP-EL"]["closing"] == data["closing"]
    assert data["balanced"] is True
    pdf = tmp_path / "regency.pdf"
    ok(cli, "ledger", "report", "--office", "35.26", "--month", MONTH, "--format", "pdf",
       "--out", str(pdf))
    body = _pdftotext(pdf)
    assert "Rincian per kantor" in body and "DISDUKCAPIL" in body
    assert _line(body, f"{OFFICE} KECAMATAN")[-1] == "88"
    # the kecamatan alone is not a roll-up
    own = json.loads(ok(cli, "ledger", "report", "--office", OFFICE, "--month", MONTH))
    assert own["rollup"] is False and own["closing"] == 88


def _tamper(settings: Settings, sql: str, **params: object) -> None:
    with engine_for(settings.sqlalchemy_url).begin() as conn:
        conn.execute(text(sql), params)


@pytest.mark.parametrize(
    ("sql", "serial", "needle"),
    [
        ("UPDATE blank SET state = 'issued' WHERE serial = :s", sn(5), "journal ends in_hopper"),
        ("UPDATE blank SET state = 'bogus' WHERE serial = :s", sn(5), "invalid state"),
        (
            "DELETE FROM blank_movement WHERE id = "
            "(SELECT max(id) FROM blank_movement WHERE serial = :s)",
            sn(5),
            "journal ends in_stock",
        ),
        (
            "UPDATE blank SET office_id = (SELECT id FROM office WHERE code = '35.26.02') "
            "WHERE serial = :s",
            sn(20),
            "journal puts it at 35.26.01",
        ),
        (
            "UPDATE blank_movement SET from_state = 'issued' WHERE id = "
            "(SELECT max(id) FROM blank_movement WHERE serial = :s)",
            sn(5),
            "journal broken",
        ),
    ],
)
def test_check_names_the_tampered_serial(
    cli: Cli, settings: Settings, sql: str, serial: str, needle: str
) -> None:
    _stock(cli)
    ok(cli, "ledger", "check")
    _tamper(settings, sql, s=serial)
    code, out, err = cli("ledger", "check")
    assert code == 1 and "NOT BALANCED" in out
    line = next(line for line in err.splitlines() if serial in line)
    assert needle in line
    code, out, _ = cli("ledger", "check", "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    assert serial in {p["serial"] for p in data["problems"]}


def test_check_names_a_blank_without_journal_and_the_office(cli: Cli, settings: Settings) -> None:
    _stock(cli)
    _tamper(
        settings,
        "INSERT INTO blank (serial, prefix, number, office_id, state, handover_id, version, "
        "updated_at) SELECT 'KTP2026-00000777', 'KTP2026-', 777, office_id, 'in_stock', "
        "handover_id, 1, updated_at FROM blank WHERE serial = :s",
        s=sn(30),
    )
    code, _, err = cli("ledger", "check")
    assert code == 1
    assert "KTP2026-00000777: in_stock but has no journal" in err
    assert f"office {OFFICE}: does not balance" in err and "but 89 blanks are on hand" in err


def test_check_catches_document_counts(cli: Cli, settings: Settings) -> None:
    _stock(cli)
    _tamper(settings, "UPDATE destruction_record SET count = 5")
    code, _, err = cli("ledger", "check")
    assert code == 1 and "destruction record BAP/001/2026 states 5 blanks" in err


def test_check_subprocess_exit_status(settings: Settings, cli: Cli) -> None:
    _stock(cli)
    env = {
        **os.environ,
        "PRINTSRV_INSTANCE_DIR": str(settings.instance_dir),
        "PRINTSRV_DATABASE_URL": settings.sqlalchemy_url,
    }
    run = [sys.executable, str(PROJECT_ROOT / "run.py"), "ledger", "check"]
    assert subprocess.run(run, env=env, capture_output=True, timeout=120).returncode == 0
    _tamper(settings, "UPDATE blank SET state = 'issued' WHERE serial = :s", s=sn(60))
    result = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and sn(60) in result.stderr
    with session_factory(settings)() as s:
        from printsrv.ledger.blanks import blank_by_serial

        assert blank_by_serial(s, sn(60)).state is BlankState.ISSUED


def test_pdf_report_without_out_goes_to_a_named_file(
    cli: Cli, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stock(cli)
    monkeypatch.chdir(tmp_path)
    out = ok(cli, "ledger", "report", "--office", OFFICE, "--month", MONTH, "--format", "pdf")
    path = Path(out.strip())
    assert path == tmp_path / f"laporan-stok-{OFFICE}-{MONTH}.pdf"
    assert path.read_bytes().startswith(b"%PDF") and "%PDF" not in out


def test_ledger_show_prints_tables_not_dicts(cli: Cli, settings: Settings) -> None:
    _stock(cli)
    office = ok(cli, "ledger", "show", "--office", OFFICE)
    assert "{" not in office and "'" not in office
    assert "in_stock 79" in office
    blank = ok(cli, "ledger", "show", sn(1)).splitlines()
    header = next(line for line in blank if line.strip().startswith("at"))
    assert header.split()[:3] == ["at", "kind", "from"]
    assert any(" WIB " in line and "receive" in line for line in blank)


def test_stock_types_through_the_cli(cli: Cli, settings: Settings) -> None:
    """``receive`` and ``load`` take the blank stock type; ``check`` lists each apart."""
    ok(cli, "ledger", "receive", "--office", OFFICE, "--first", "KIA-000001", "--last",
       "KIA-000004", "--handover", "BA-KIA", "--stock-type", "KIA")
    ok(cli, "ledger", "receive", "--office", OFFICE, "--first", sn(1), "--last", sn(3),
       "--handover", "BA-KTP")
    ok(cli, "ledger", "station", "--name", "st1", "--office", OFFICE)
    code, _out, err = cli("ledger", "load", "--station", "st1", "--count", "4")
    assert code != 0 and "3 KTP-EL blanks in stock, 4 requested" in err
    out = ok(cli, "ledger", "load", "--station", "st1", "--count", "2", "--stock-type", "KIA")
    assert "loaded 2 KIA blanks into st1: KIA-000001..KIA-000002" in out
    code, _out, err = cli("ledger", "load", "--station", "st1", "--serial", sn(1),
                          "--stock-type", "KIA")
    assert code != 0 and f"{sn(1)} is KTP-EL stock, not KIA" in err
    out = ok(cli, "ledger", "check")
    assert f"{OFFICE} KIA: received 4 " in out and f"{OFFICE} KTP-EL: received 3 " in out


def test_handover_signatories_from_the_cli(cli: Cli, settings: Settings) -> None:
    ok(cli, "ledger", "receive", "--office", OFFICE, "--first", sn(1), "--last", sn(5),
       "--handover", "BAST/SIG/1", "--giver-name", "Andi Wijaya", "--giver-nip", "19800101",
       "--receiver-name", "Siti Aminah", "--receiver-nip", "19850505")
    ok(cli, "ledger", "transfer", "--from", OFFICE, "--to", "35.26.02", "--first", sn(1),
       "--last", sn(2), "--handover", "BAST/SIG/2", "--giver-name", "Siti Aminah")
    from sqlalchemy import select

    from printsrv.ledger.models import HandoverRecord

    with session_factory(settings)() as s:
        got = {h.number: (h.giver, h.receiver) for h in s.scalars(select(HandoverRecord))}
    assert got == {"BAST/SIG/1": ("ANDI WIJAYA / NIP 19800101", "SITI AMINAH / NIP 19850505"),
                   "BAST/SIG/2": ("SITI AMINAH", "")}
