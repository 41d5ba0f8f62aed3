"""``render --queued``: the queue rendered in bulk, through the database and the token."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from printsrv import audit
from printsrv.audit import AuditTag
from printsrv.batchrender import CHUNK, render_queued
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.intake.demo import write_demo_batch
from printsrv.intake.pipeline import import_batch
from printsrv.models import AuditEvent, Record, RecordKey, RecordState

COUNT = CHUNK + 12  # two chunks, so two workers really share the work


@pytest.fixture
def queued(settings: Settings, tmp_path: Path) -> list[str]:
    """Import a demo batch; the request ids of the queued records in queue order."""
    write_demo_batch(settings, COUNT, tmp_path / "batch", seed=3, batch_id="BATCH-RENDER")
    assert import_batch(settings, tmp_path / "batch").accepted
    with unit_of_work(settings) as session:
        return list(session.scalars(
            select(Record.request_id).where(Record.state == RecordState.QUEUED)
            .order_by(Record.id)
        ))  # fmt: skip


def _page_text(pdf: Path, page: int) -> str:
    return subprocess.run(
        ["pdftotext", "-f", str(page), "-l", str(page), "-layout", str(pdf), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def _nik(settings: Settings, request_id: str) -> str:
    with unit_of_work(settings) as session:
        return session.scalar(select(Record.nik).where(Record.request_id == request_id)) or ""


@pytest.mark.parametrize("processes", [1, 2])
def test_one_pdf_with_a_page_per_queued_record_in_queue_order(
    settings: Settings, queued: list[str], tmp_path: Path, processes: int
) -> None:
    out = tmp_path / "cards.pdf"
    result = render_queued(settings, out, processes=processes)
    assert (result.selected, result.rendered, result.problems) == (len(queued), len(queued), [])
    assert subprocess.run(["qpdf", "--check", str(out)], capture_output=True).returncode == 0
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True).stdout
    assert re.search(r"Pages:\s+(\d+)", info).group(1) == str(len(queued))  # type: ignore[union-attr]
    for page in (1, CHUNK + 1, len(queued)):
        assert _nik(settings, queued[page - 1]) in _page_text(out, page).replace(" ", "")
    data = out.read_bytes()
    # Each font subset is written once for the whole document, not once per page.
    assert data.count(b"/FontFile2") < 10
    assert not out.with_name("cards.pdf.part").exists()
    assert set(result.ink_mean) == {"C", "M", "Y", "K"}


def test_each_decryption_is_audited_and_the_chain_still_verifies(
    settings: Settings, queued: list[str], tmp_path: Path
) -> None:
    render_queued(settings, tmp_path / "cards.pdf", processes=2)
    with unit_of_work(settings) as session:
        events = session.execute(
            select(AuditEvent.subject, AuditEvent.details)
            .where(AuditEvent.tag == AuditTag.RECORD_MEDIA_DECRYPT.value)
        ).all()
        assert sorted(s for s, _ in events) == sorted(queued)
        assert {d["purpose"] for _, d in events} == {"render"}
        assert audit.verify(session).ok


def test_a_folder_gets_one_pdf_per_card(
    settings: Settings, queued: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "faces"
    result = render_queued(settings, out, processes=2, limit=CHUNK + 3)
    assert result.rendered == CHUNK + 3
    assert sorted(p.stem for p in out.iterdir()) == sorted(queued[: CHUNK + 3])
    first = out / f"{queued[0]}.pdf"
    assert _nik(settings, queued[0]) in _page_text(first, 1).replace(" ", "")


def test_office_and_limit_choose_the_records(
    settings: Settings, queued: list[str], tmp_path: Path
) -> None:
    with unit_of_work(settings) as session:
        code = session.scalar(select(Record.data["office_code"].as_string())
                              .where(Record.request_id == queued[0]))  # fmt: skip
        regency = ".".join(code.split(".")[:2])
        expected = [r for r, c in session.execute(
            select(Record.request_id, Record.data["office_code"].as_string()).order_by(Record.id)
        ) if c.startswith(regency + ".")]  # fmt: skip
    result = render_queued(settings, tmp_path / "office.pdf", office=regency, processes=1)
    assert result.rendered == len(expected) >= 1
    assert render_queued(settings, tmp_path / "two.pdf", limit=2).rendered == 2
    assert render_queued(settings, tmp_path / "none.pdf", office="99.99").rendered == 0
    assert not (tmp_path / "none.pdf").exists()


def test_bad_records_are_named_and_the_others_rendered(
    settings: Settings, queued: list[str], tmp_path: Path
) -> None:
    too_long, purged = queued[3], queued[CHUNK + 1]
    with unit_of_work(settings) as session:
        record = session.scalar(select(Record).where(Record.request_id == too_long))
        assert record is not None
        record.data = {**record.data, "nama": "PANJANG " * 40}
        session.execute(delete(RecordKey).where(RecordKey.record_id == select(Record.id).where(
            Record.request_id == purged).scalar_subquery()))  # fmt: skip
    result = render_queued(settings, tmp_path / "cards.pdf", processes=2)
    assert result.rendered == len(queued) - 2
    assert sorted(result.problems) == sorted([
        f"record {purged}: media: biometric data was purged",
        *[p for p in result.problems if p.startswith(f"record {too_long}: nama: ")],
    ])  # fmt: skip
    assert any(p.startswith(f"record {too_long}: nama: ") for p in result.problems)


def test_records_no_longer_queued_are_left_out(
    settings: Settings, queued: list[str], tmp_path: Path
) -> None:
    with unit_of_work(settings) as session:
        session.execute(update(Record).where(Record.request_id.in_(queued[:5]))
                        .values(state=RecordState.HELD))  # fmt: skip
    assert render_queued(settings, tmp_path / "c.pdf").rendered == len(queued) - 5


def test_the_command(
    settings: Settings, queued: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from printsrv.cli import main

    monkeypatch.setenv("PRINTSRV_INSTANCE_DIR", str(settings.instance_dir))
    monkeypatch.setenv("PRINTSRV_DATABASE_URL", settings.sqlalchemy_url)
    out = tmp_path / "cards.pdf"
    with pytest.raises(SystemExit) as info:
        main(["render", "--queued", "--limit", "7", "--out", str(out)])
    assert info.value.code == 0
    assert f"{out}: 7 of 7 queued record(s) rendered" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["render", "--queued", "--limit", "0", "--out", str(out)])
    assert info.value.code == 2


def test_ink_is_estimated_on_request_and_warnings_name_the_record(
    settings: Settings, queued: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The mean ink only with ``--ink``; a photo whose background does not match the birth
    year's colour is rendered, with a warning naming the record."""
    from printsrv.cli import main

    with unit_of_work(settings) as session:
        record = session.scalar(select(Record).where(Record.request_id == queued[0]))
        assert record is not None and record.data["card_type"] == "KTP-EL"
        year, rest = record.data["tanggal_lahir"].split("-", 1)
        record.data = {**record.data, "tanggal_lahir": f"{int(year) + 1}-{rest}"}
    monkeypatch.setenv("PRINTSRV_INSTANCE_DIR", str(settings.instance_dir))
    monkeypatch.setenv("PRINTSRV_DATABASE_URL", settings.sqlalchemy_url)
    out = tmp_path / "cards.pdf"
    for extra in ([], ["--ink"]):
        with pytest.raises(SystemExit) as info:
            main(["render", "--queued", "--limit", "3", "--out", str(out), *extra])
        assert info.value.code == 0
        printed = capsys.readouterr()
        assert ("mean ink C=" in printed.out) == bool(extra)
        warnings = [line for line in printed.err.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1
        assert warnings[0].startswith(f"warning: record {queued[0]}: photo background looks ")


def test_a_failing_warm_up_does_not_stop_the_workers(
    settings: Settings, queued: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers' warm-up is only an optimisation: if it raises, they still render (a pool
    would otherwise replace the failing workers forever and never answer)."""
    from printsrv.layout import batch
    from printsrv.renderpool import start_workers

    def broken() -> None:
        raise OSError("sample photo missing")

    from printsrv import batchrender

    monkeypatch.setattr(batch, "warm_up", broken)
    monkeypatch.setattr(batchrender, "CHUNK_TIMEOUT", 20.0)  # a failure shows in 20 s, not 300
    workers = start_workers(2)
    try:
        result = render_queued(settings, tmp_path / "c.pdf", workers=workers, limit=CHUNK + 5)
    finally:
        workers.terminate()
        workers.join()
    assert (result.rendered, result.problems) == (CHUNK + 5, [])


def _hang(*_args: object) -> list[object]:
    import time

    time.sleep(30)
    return []


def test_a_silent_worker_fails_the_run_and_leaves_no_pdf(
    settings: Settings, queued: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from printsrv import batchrender
    from printsrv.errors import PrintSrvError

    monkeypatch.setattr(batchrender, "render_chunk", _hang)
    monkeypatch.setattr(batchrender, "CHUNK_TIMEOUT", 0.5)
    with pytest.raises(PrintSrvError, match="gave no answer"):
        render_queued(settings, tmp_path / "cards.pdf", processes=2)
    assert list(tmp_path.glob("cards.pdf*")) == []


def test_progress_reaches_the_total_with_refused_and_skipped_records(
    settings: Settings, queued: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A purged record is refused, and a record a station took between the selection and its
    chunk's read is skipped: the bar still ends at the total."""
    from printsrv import batchrender

    with unit_of_work(settings) as session:
        session.execute(delete(RecordKey).where(RecordKey.record_id == select(Record.id).where(
            Record.request_id == queued[1]).scalar_subquery()))  # fmt: skip
    with batchrender.open_database(settings) as db:
        selected = batchrender.queued_ids(db)
    with unit_of_work(settings) as session:
        session.execute(update(Record).where(Record.request_id == queued[2])
                        .values(state=RecordState.PRINTING))  # fmt: skip
    monkeypatch.setattr(batchrender, "queued_ids", lambda *a, **k: selected)
    totals: list[int] = []
    done: list[int] = []
    result = render_queued(settings, tmp_path / "c.pdf", processes=2,
                           on_total=totals.append, progress=done.append)  # fmt: skip
    assert totals == [len(queued)] and sum(done) == len(queued)
    assert result.rendered == len(queued) - 2


def test_each_card_carries_its_office_local_issue_date(
    settings: Settings, queued: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16:30 UTC on 1 January is already 2 January in WIT (Papua, Maluku) and WITA, still
    1 January in WIB: the issue date printed is the office's, as for one card."""
    from datetime import UTC, datetime

    from printsrv import localtime
    from printsrv.layout import batch

    monkeypatch.setattr(localtime, "now_utc", lambda: datetime(2026, 1, 1, 16, 30, tzinfo=UTC))
    seen: dict[str, object] = {}
    render_page = batch.render_page

    def spy(card, **kw):  # type: ignore[no-untyped-def]
        seen[card.fields["office_code"]] = card.issue_date
        return render_page(card, **kw)

    monkeypatch.setattr(batch, "render_page", spy)
    render_queued(settings, tmp_path / "c.pdf", processes=1)
    assert seen and all(day == localtime.local_date(code) for code, day in seen.items())
    assert len(set(seen.values())) == 2  # the demo batch spans zones on both sides of midnight


def test_a_pdf_in_a_missing_folder_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    from printsrv.errors import PrintSrvError

    with pytest.raises(PrintSrvError, match="no such folder"):
        render_queued(settings, tmp_path / "missing" / "cards.pdf")
