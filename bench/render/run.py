"""Benchmark of the card-face renderer: cards/s for distinct records with photo and signature.

    python bench/render/run.py [--count 1000] [--processes N] [--mode pdf ...]

Each record has its own name, NIK, address, photo and signature. Prints one table row per mode,
single process and all cores, and the load average (other work on the machine skews the numbers:
run it a few times).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from printsrv.cardinput import CardInput
from printsrv.layout import render_card, sample_card
from printsrv.layout.sample import synthetic_photo, synthetic_signature

NAMES = ("SITI", "BUDI", "AGUS", "DEWI", "RINA", "YUSUF", "AHMAD", "NURUL", "PUTRI", "EKO", "SRI",
         "WAHYU", "FITRI", "HENDRA")  # fmt: skip
STREETS = ("MERDEKA", "SUDIRMAN", "DIPONEGORO", "GAJAH", "MADA", "PEMUDA", "KARTINI", "VETERAN",
           "PAHLAWAN")  # fmt: skip

MODES = {
    # mode: (photo size, render_card keyword arguments)
    "pdf": ((236, 315), {"coverage": False}),
    "pdf, reportlab backend": ((236, 315), {"coverage": False, "backend": "reportlab"}),
    "pdf+coverage": ((236, 315), {}),
    "pdf+coverage, photo resampled": ((300, 400), {}),
    "pdf+png 300 dpi+coverage": ((236, 315), {"png": True}),
}


def records(count: int, photo_size: tuple[int, int]) -> list[CardInput]:
    base = sample_card("ktp-el")
    rng = random.Random(42)
    cards = []
    for i in range(count):
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


def _work(job: tuple[str, int, int]) -> tuple[int, float]:
    mode, start, stop = job
    size, kwargs = MODES[mode]
    cards = records(stop, size)[start:stop]
    render_card(cards[0], **kwargs)  # warm caches (template, fonts)
    t0 = time.perf_counter()
    for card in cards:
        render_card(card, **kwargs)
    return len(cards), time.perf_counter() - t0


def run(mode: str, count: int, processes: int) -> float:
    if processes == 1:
        n, seconds = _work((mode, 0, count))
        return n / seconds
    chunk = -(-count // processes)
    jobs = [(mode, i * chunk, min(count, (i + 1) * chunk)) for i in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        results = pool.map(_work, jobs)
    # Wall time of the slowest worker (each worker's own generation excluded).
    return sum(n for n, _ in results) / max(s for _, s in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--mode", action="append", choices=list(MODES), help="default: all")
    args = parser.parse_args()
    print(f"ktp-el, {args.count} distinct records with photo and signature; "
          f"{os.cpu_count()} CPU(s)")  # fmt: skip
    print(f"{'mode':<34} {'1 process':>14} {f'{args.processes} processes':>16}")
    print("-" * 66)
    for mode in args.mode or MODES:
        single = run(mode, args.count, 1)
        multi = run(mode, args.count, args.processes)
        print(f"{mode:<34} {single:>8.0f} card/s {multi:>10.0f} card/s")
    print("goal: >= 200 card/s on one core for PDF")
    print("load average: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
