"""IKD activations: the CSV parser names every bad line (hypothesis), the month sets
activations beside blanks received, the CLI and the web page, and the anomaly flag."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.desk import ikd
from printsrv.errors import IntakeError
from printsrv.ledger.blanks import receive_blanks
from printsrv.localtime import local_date

ROOT = Path(__file__).resolve().parents[2]
HEADER = "date,office_code,activations\n"

days = st.dates(min_value=date(2023, 1, 1), max_value=date.today())
codes = st.from_regex(r"\d{2}\.\d{2}\.\d{2}", fullmatch=True)


@given(st.lists(st.tuples(days, codes, st.integers(0, 9_999_999)), max_size=20,
                unique_by=lambda t: (t[0], t[1])))
def test_good_lines_read_back_exactly(rows: list[tuple[date, str, int]]) -> None:
    text = HEADER + "".join(f"{d.isoformat()},{c},{n}\n" for d, c, n in rows)
    lines = ikd.parse_csv(text, source="t.csv")
    assert [(ln.day, ln.office_code, ln.activations) for ln in lines] == rows
    assert [ln.line for ln in lines] == list(range(2, 2 + len(rows)))


@given(st.lists(st.tuples(days, codes, st.integers(0, 999)), min_size=1, max_size=8,
                unique_by=lambda t: (t[0], t[1])),
       st.data())
def test_a_bad_field_is_named_with_its_line(rows: list[tuple[date, str, int]],
                                            data: st.DataObject) -> None:
    bad_index = data.draw(st.integers(0, len(rows) - 1))
    field = data.draw(st.sampled_from(["date", "office_code", "activations"]))
    cells = [[d.isoformat(), c, str(n)] for d, c, n in rows]
    cells[bad_index][["date", "office_code", "activations"].index(field)] = data.draw(
        st.sampled_from(["x", "-1", "2023-13-01", "35.26", "1.5"]).filter(
            lambda v: not (field == "office_code" and v == "35.26.01")))
    text = HEADER + "".join(",".join(c) + "\n" for c in cells)
    with pytest.raises(IntakeError) as err:
        ikd.parse_csv(text, source="t.csv")
    assert any(p.startswith(f"line {bad_index + 2}: {field}:") for p in err.value.problems), (
        err.value.problems)


def test_header_and_duplicates() -> None:
    with pytest.raises(IntakeError, match="first line"):
        ikd.parse_csv("tanggal,kantor,jumlah\n", source="t.csv")
    with pytest.raises(IntakeError) as err:
        ikd.parse_csv(HEADER + "2026-01-02,35.26.01,4\n2026-01-02,35.26.01,5\n", source="t.csv")
    assert err.value.problems == ["line 3: the same office and date as line 2"]


def test_the_month_beside_the_blanks_through_the_cli(settings: Settings, tmp_path: Path) -> None:
    today = local_date("35.26.01")
    with unit_of_work(settings) as session:
        receive_blanks(session, office_code="35.26.01", first="KTP-000001", last="KTP-000100",
                       handover_number="BAST-IKD-1", actor="t")
        receive_blanks(session, office_code="35.26.02", first="KTP-000101", last="KTP-000200",
                       handover_number="BAST-IKD-2", actor="t")
    csv_file = tmp_path / "ikd.csv"
    csv_file.write_text(HEADER + f"{today},35.26.01,60\n{today},35.26.02,10\n")
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(settings.instance_dir),
           "PRINTSRV_DATABASE_URL": settings.database_url}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(ROOT / "run.py"), "ikd", *argv], env=env,
                              capture_output=True, text=True, timeout=60)

    assert run("import", str(csv_file), "--by", "spv").returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + f"{today},35.26.01,lots\n")
    refused = run("import", str(bad))
    assert refused.returncode == 1 and "line 2: activations" in refused.stderr
    out = run("report", "--month", today.strftime("%Y-%m"), "--office", "35.26")
    lines = {ln.split()[0]: ln for ln in out.stdout.splitlines() if ln.startswith("35.26.0")}
    assert "60%" in lines["35.26.01"] and "ok" in lines["35.26.01"]
    assert "10%" in lines["35.26.02"] and "BELOW" in lines["35.26.02"]
