"""Start workers at the same instant, in threads, and fail with the first error any raised."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence


def run_together(workers: Sequence[Callable[[], None]], *, timeout: float = 120) -> None:
    """Run each of ``workers`` in its own thread, all released by one barrier; wait for all;
    re-raise the first exception one raised (after every thread ended or timed out)."""
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        try:
            start.wait()
            work()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), f"a worker still runs after {timeout} s"
    if errors:
        raise errors[0]
