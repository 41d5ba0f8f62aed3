"""``render``: the card face of a queued record (or the built-in sample) as PDF or PNG."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from printsrv.errors import PrintSrvError


def _size(text: str) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WxH in mm, e.g. 86.02x54.86, got {text!r}"
        ) from None
    return w, h


def register(sub: Any) -> None:
    p = sub.add_parser(
        "render",
        help="render card faces (one record, the sample, or the queue) to PDF or PNG",
        description="Render the face of a queued record (--request-id) or of the sample data of "
        "a template (--sample): the output format follows the --out suffix (.pdf or .png). "
        "--queued renders every queued record (in queue order) with all cores: --out FILE.pdf "
        "gives one PDF with a page per card, --out DIR one REQUEST_ID.pdf per card.",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--request-id", help="print request id of a queued record")
    what.add_argument("--queued", action="store_true", help="render the queued records")
    what.add_argument(
        "--sample",
        nargs="?",
        const="ktp-el",
        metavar="TEMPLATE",
        help="render the built-in sample of TEMPLATE (default ktp-el)",
    )
    p.add_argument("--out", required=True, type=Path,
                   help="output file: .pdf or .png; with --queued FILE.pdf or a folder")
    p.add_argument("--office", help="--queued: only this office (PP.KK includes its kecamatan)")
    p.add_argument("--limit", type=int, help="--queued: at most N records")
    p.add_argument("--processes", type=int,
                   help="--queued: worker processes (default: one per CPU)")
    p.add_argument("--template", help="override the template chosen from the card type")
    p.add_argument("--bleed", type=_size, metavar="WxH", help="page = printer image area, in mm")
    p.add_argument("--profile", help="printer profile id (printers.profiles): its image area")
    p.add_argument("--dpi", type=int, default=300, help="PNG resolution (default 300)")
    p.add_argument("--blank", action="store_true", help="PNG: tint with the blank's colour")
    p.add_argument("--issue-date", type=date.fromisoformat, help="date printed (default: today)")
    p.add_argument("--ink", action="store_true",
                   help="--queued: also estimate each card's ink coverage and print the mean "
                   "(about a third more work per card; a single card always shows it)")
    p.add_argument("--json", action="store_true", help="print warnings, coverage and boxes as JSON")
    p.set_defaults(func=cmd_render)


def _bleed_from_profile(profile_id: str) -> tuple[float, float]:
    try:
        from printers.profiles import get_profile
    except ImportError as exc:  # pragma: no cover - printers/ is part of the project
        raise PrintSrvError("printer profiles are not available") from exc
    try:
        media = get_profile(profile_id).media
    except Exception as exc:  # printers has its own error root; show its message
        raise PrintSrvError(f"printer profile {profile_id!r}: {exc}") from exc
    return media.image_width_mm, media.image_height_mm


def cmd_render(args: argparse.Namespace) -> int:
    from dataclasses import replace

    if args.queued:
        return cmd_render_queued(args)
    from printsrv.layout import render_card, sample_card

    suffix = args.out.suffix.lower()
    if suffix not in (".pdf", ".png"):
        print("error: --out must end in .pdf or .png", file=sys.stderr)
        return 2
    if args.request_id:
        from printsrv.config import load_settings
        from printsrv.records import load_card_input

        card = load_card_input(load_settings(), args.request_id, actor="cli", purpose="render")
    else:
        card = sample_card(args.sample)
    if args.issue_date:
        card = replace(card, issue_date=args.issue_date)
    bleed = args.bleed or (_bleed_from_profile(args.profile) if args.profile else None)
    result = render_card(
        card,
        template=args.template or (args.sample if args.sample else None),
        page="bleed" if bleed else "card",
        bleed_mm=bleed,
        png=suffix == ".png",
        png_dpi=args.dpi,
        preview_blank=args.blank,
    )
    data = result.png if suffix == ".png" else result.pdf
    assert data is not None
    args.out.write_bytes(data)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "template": result.template,
                    "out": str(args.out),
                    "page_mm": result.page_mm,
                    "warnings": list(result.warnings),
                    "ink_coverage": result.ink_coverage,
                    "font_sizes": result.font_sizes,
                    "photo_passthrough": result.photo_passthrough,
                    "boxes": {
                        k: [[round(v, 3) for v in (b.x, b.y, b.w, b.h)] for b in boxes]
                        for k, boxes in result.boxes.items()
                    },
                },
                indent=2,
            )
        )
    else:
        cov = " ".join(f"{k}={v:.3f}" for k, v in result.ink_coverage.items())
        w, h = result.page_mm
        print(f"{args.out}: {result.template}, page {w:.2f} x {h:.2f} mm, ink {cov}")
    return 0


@contextmanager
def _progress_bar(show: bool) -> Iterator[Any]:
    """A tqdm bar on a terminal; elsewhere a stand-in that shows nothing (tqdm is not even
    imported: ~50 ms of the command's start-up)."""
    if not show:
        yield SimpleNamespace(update=lambda n=1: None, total=0)
        return
    from tqdm import tqdm

    with tqdm(total=0, desc="rendering", unit="card", file=sys.stderr) as bar:
        yield bar


def cmd_render_queued(args: argparse.Namespace) -> int:
    """``render --queued``: the queue to one PDF or a folder of PDFs, with a progress bar.

    The workers are forked first, before this process loads its data layer: they import the
    renderer and load the templates on the other cores meanwhile (a second or more of start-up
    saved on a small machine is a large part of a batch)."""
    import os

    from printsrv.renderpool import start_workers

    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    bleed = args.bleed or (_bleed_from_profile(args.profile) if args.profile else None)
    processes = args.processes or os.cpu_count() or 1
    workers = start_workers(processes) if processes > 1 and args.limit != 1 else None
    try:
        from printsrv.batchrender import render_queued
        from printsrv.config import load_settings
        from printsrv.layout.batch import PageOptions

        options = PageOptions(page="bleed" if bleed else "card", bleed_mm=bleed,
                              template=args.template, coverage=args.ink)  # fmt: skip

        show = sys.stderr.isatty() and not args.json
        with _progress_bar(show) as bar:
            result = render_queued(
                load_settings(), args.out, office=args.office, limit=args.limit,
                processes=processes, options=options, progress=bar.update,
                on_total=lambda n: setattr(bar, "total", n), workers=workers,
            )  # fmt: skip
    finally:
        if workers is not None:
            workers.terminate()
            workers.join()
    for problem in result.problems:
        print(problem, file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps({
            "out": str(result.out), "selected": result.selected, "rendered": result.rendered,
            "problems": result.problems, "warnings": result.warnings,
            "ink_coverage_mean": result.ink_mean,
        }, indent=2))  # fmt: skip
    else:
        cov = " ".join(f"{k}={v:.3f}" for k, v in result.ink_mean.items())
        print(f"{result.out}: {result.rendered} of {result.selected} queued record(s) rendered"
              + (f", {len(result.problems)} not" if result.problems else "")
              + (f"; mean ink {cov}" if cov else ""))  # fmt: skip
    return 1 if result.problems else 0
