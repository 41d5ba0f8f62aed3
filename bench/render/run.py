"""Benchmark of the card faces: the real path against gLabels, and the renderer in memory.

    python bench/render/run.py [--count 1000] [--pairs 5] [--processes N] [--skip-memory]

**Real path** (goal: ``render --queued`` ≥ 10× faster than ``glabels-3-batch``): in a temporary
instance, ``run.py init``, ``run.py demo-data --count N`` and ``run.py import`` (the records go
through intake: signature, validation, encrypted media). Then, as A/B pairs in alternating
order, the whole process of ``run.py render --queued --out cards.pdf`` (database → decrypt →
faces → one PDF), the same with ``--ink`` (each card's ink coverage estimated too) and of
``glabels-3-batch`` merging a gLabels document with the same fields,
photo and signature (``bench/render/glabels.py``) from a CSV of the same batch. Medians.

**In memory**: ``render_card`` on synthetic records (no database, no decryption), cards/s on one
process and on all: the second is the wall time from the instant all workers start together
(a barrier) until the last one ends.

Everything is written under one temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from printsrv.cardinput import CardInput  # noqa: E402
from printsrv.layout import load_template, render_card, sample_card  # noqa: E402
from printsrv.layout.sample import synthetic_photo, synthetic_signature  # noqa: E402

NAMES = ("SITI", "BUDI", "AGUS", "DEWI", "RINA", "YUSUF", "AHMAD", "NURUL", "PUTRI", "EKO", "SRI",
         "WAHYU", "FITRI", "HENDRA")  # fmt: skip
STREETS = ("MERDEKA", "SUDIRMAN", "DIPONEGORO", "GAJAH", "MADA", "PEMUDA", "KARTINI", "VETERAN",
           "PAHLAWAN")  # fmt: skip

MODES = {
    # mode: (photo size, render_card keyword arguments)
    "pdf, photo print-ready": ((236, 315), {"coverage": False}),
    "pdf+coverage, photo print-ready": ((236, 315), {}),
    "pdf+coverage, photo 300x400 (scaled by the page)": ((300, 400), {}),
    "pdf+coverage, photo 1200x1600 (resampled)": ((1200, 1600), {}),
    "pdf+png 300 dpi+coverage": ((300, 400), {"png": True}),
    "pdf via reportlab, resampled": ((300, 400), {"backend": "reportlab"}),
}


# --- real path ----------------------------------------------------------------------------------
#: CPU seconds (user + system) of each process run by :func:`_run` and its children.
CPU: dict[tuple[str, ...], list[float]] = {}


def _run(args: list[str], env: dict[str, str]) -> float:
    """Wall time of one whole process (its CPU time, workers included, goes to :data:`CPU`);
    fails loudly when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr.decode()[-2000:]}")
    CPU.setdefault(tuple(args), []).append(
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    )
    return seconds


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    return int(next(x for x in info.splitlines() if x.startswith("Pages:")).split()[1])


def real_path(count: int, pairs: int, processes: int | None, work: Path) -> None:
    glabels = shutil.which("glabels-3-batch")
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(work / "instance"),
           "PRINTSRV_DATABASE_URL": f"sqlite:///{work / 'instance' / 'printsrv.db'}"}
    env.pop("PRINTSRV_CONFIG", None)
    run_py = [sys.executable, str(ROOT / "run.py")]
    print(f"real path: {count} records through demo-data and intake (SQLite) ...", flush=True)
    _run([*run_py, "init"], env)
    _run([*run_py, "demo-data", "--count", str(count), "--out", str(work / "batch")], env)
    intake = _run([*run_py, "import", str(work / "batch")], env)
    print(f"  imported in {intake:.1f} s")
    ours = [*run_py, "render", "--queued", "--out", str(work / "cards.pdf")]
    if processes:
        ours += ["--processes", str(processes)]
    theirs: list[str] | None = None
    if glabels is None:
        print("  glabels-3-batch not found (apt-get install glabels): gLabels not measured")
    else:
        from glabels import write_merge

        rows = write_merge(load_template("ktp-el"), work / "batch", work / "glabels",
                           issue=date.today())  # fmt: skip
        theirs = [glabels, "-i", str(work / "glabels" / "records.csv"),
                  "-o", str(work / "glabels.pdf"), str(work / "glabels" / "face.glabels")]
        print(f"  gLabels document and CSV: {rows} rows")
    ours_ink = [*ours, "--ink"]
    a: list[float] = []
    b: list[float] = []
    c: list[float] = []
    for i in range(pairs):
        order = [("ours", ours), ("theirs", theirs), ("ink", ours_ink)]
        if i % 2:
            order.reverse()
        for name, cmd in order:
            if cmd is None:
                continue
            {"ours": a, "theirs": b, "ink": c}[name].append(_run(cmd, env))
        print(f"  round {i + 1}: render --queued {a[-1]:.2f} s, with --ink {c[-1]:.2f} s"
              + (f", glabels-3-batch {b[-1]:.2f} s" if b else ""), flush=True)
    pages = _pages(work / "cards.pdf")
    print(f"\n{'command (whole process)':<44} {'pages':>6} {'median s':>9} {'cards/s':>8} "
          f"{'CPU s':>6}")  # fmt: skip
    print("-" * 77)
    med_a, cpu_a = statistics.median(a), statistics.median(CPU[tuple(ours)])
    med_c, cpu_c = statistics.median(c), statistics.median(CPU[tuple(ours_ink)])
    print(f"{'run.py render --queued --out cards.pdf':<44} {pages:>6} {med_a:>9.2f} "
          f"{pages / med_a:>8.0f} {cpu_a:>6.2f}")  # fmt: skip
    print(f"{'  the same with --ink (ink coverage estimated)':<44} {pages:>6} {med_c:>9.2f} "
          f"{pages / med_c:>8.0f} {cpu_c:>6.2f}")  # fmt: skip
    if b and theirs:
        med_b, cpu_b = statistics.median(b), statistics.median(CPU[tuple(theirs)])
        gl_pages = _pages(work / "glabels.pdf")
        print(f"{'glabels-3-batch (same records)':<44} {gl_pages:>6} {med_b:>9.2f} "
              f"{gl_pages / med_b:>8.0f} {cpu_b:>6.2f}")  # fmt: skip
        print(f"ratio (gLabels / ours, medians of {pairs} interleaved rounds): wall "
              f"{med_b / med_a:.1f}x (goal >= 10x), CPU time {cpu_b / cpu_a:.1f}x; "
              f"with --ink: wall {med_b / med_c:.1f}x, CPU time {cpu_b / cpu_c:.1f}x")
    print("all runs (s): ours " + " ".join(f"{x:.2f}" for x in a)
          + "; with --ink " + " ".join(f"{x:.2f}" for x in c)
          + ("; gLabels " + " ".join(f"{x:.2f}" for x in b) if b else ""))


# --- in memory ----------------------------------------------------------------------------------
def records(count: int, photo_size: tuple[int, int], first: int = 0) -> list[CardInput]:
    base = sample_card("ktp-el")
    cards = []
    for i in range(first, first + count):
        rng = random.Random(i)
        year = 1960 + i % 45
        fields = dict(base.fields)
        fields.update(
            nik=f"3526{i % 99 + 1:02d}0508{year % 100:02d}{i + 1:04d}",
            nama=" ".join(rng.sample(NAMES, rng.randint(2, 5))),
            tanggal_lahir=f"{year}-08-05",
            alamat=f"JL. {rng.choice(STREETS)} NO. {rng.randint(1, 300)} "
            + " ".join(rng.sample(STREETS, rng.randint(0, 4))),
        )
        photo = synthetic_photo(i, "RED" if year % 2 else "BLUE", photo_size)
        signature = synthetic_signature(i, transparent=bool(i % 2))
        cards.append(replace(base, request_id=f"B{i}", fields=fields, photo_jpeg=photo,
                             signature_png=signature))  # fmt: skip
    return cards


def _worker(mode: str, first: int, count: int, start: object, done: object) -> None:
    size, kwargs = MODES[mode]
    cards = records(count, size, first)
    render_card(cards[0], **kwargs)  # warm caches (template, fonts)
    start.wait()  # type: ignore[attr-defined]
    for card in cards:
        render_card(card, **kwargs)
    done.put(len(cards))  # type: ignore[attr-defined]


def in_memory(mode: str, count: int, processes: int) -> float:
    """Cards/s from the instant all ``processes`` workers start together until the last ends."""
    ctx = multiprocessing.get_context("fork")
    start, done = ctx.Barrier(processes + 1), ctx.Queue()
    chunk = -(-count // processes)
    workers = [ctx.Process(target=_worker, args=(mode, i * chunk, min(chunk, count - i * chunk),
                                                 start, done))
               for i in range(processes)]  # fmt: skip
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    total = sum(done.get() for _ in workers)
    seconds = time.perf_counter() - t0
    for w in workers:
        w.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=5, help="A/B pairs of the real path")
    parser.add_argument("--processes", type=int, help="render --queued workers (default: CPUs)")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--mode", action="append", choices=list(MODES), help="default: all")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {cpus} CPU(s); load average "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        if not args.skip_real:
            real_path(args.count, args.pairs, args.processes, Path(tmp))
    if not args.skip_memory:
        print(f"\nin memory: render_card, {args.count} distinct synthetic records")
        print(f"{'mode':<34} {'1 process':>14} {f'{cpus} processes':>16}")
        print("-" * 66)
        for mode in args.mode or MODES:
            single = in_memory(mode, args.count, 1)
            multi = in_memory(mode, args.count, cpus)
            print(f"{mode:<34} {single:>8.0f} card/s {multi:>10.0f} card/s", flush=True)
    print("load average at the end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
