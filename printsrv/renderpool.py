"""The worker processes of ``run.py render --queued``, started before anything heavy is loaded.

Forking first lets the workers import the renderer and warm it up (templates, fonts, font
subsets: :func:`printsrv.layout.batch.warm_up`) on the other cores while the calling process
loads its data layer; this module imports nothing of the project at its top for that reason.
"""

from __future__ import annotations

import multiprocessing
from contextlib import suppress
from multiprocessing.pool import Pool


def _worker_start() -> None:
    # Never fatal: a pool replaces a worker whose initializer raised, forever. A warm-up that
    # fails (a sample's file missing, say) only leaves the first chunk to fill the caches.
    with suppress(Exception):
        from printsrv.layout.batch import warm_up

        warm_up()


def start_workers(processes: int) -> Pool:
    """``processes`` forked workers, each warming the renderer up as it starts."""
    return multiprocessing.get_context("fork").Pool(processes, initializer=_worker_start)
