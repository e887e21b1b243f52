"""Worker processes: results in order, and a pool that always ends."""

from __future__ import annotations

import signal

from agentpm.parallel import map_batched, map_in_order


def _square(number: int) -> int:
    return number * number


def _sigterm_is_default(_: int) -> bool:
    return signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_results_come_back_in_input_order_from_several_workers():
    assert map_in_order(_square, list(range(500)), minimum=1, workers=2, chunksize=7) == [
        n * n for n in range(500)
    ]
    assert map_batched(lambda batch: [n + 1 for n in batch], list(range(50)), batch=8, minimum=10**9) == list(
        range(1, 51)
    )


def test_workers_die_on_the_sigterm_that_ends_the_pool():
    # The CLI raises SystemExit on SIGTERM; a worker that inherited that handler could swallow the
    # pool's SIGTERM and wait forever on its task queue (a run that hung at its very end).
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        assert all(map_in_order(_sigterm_is_default, list(range(8)), minimum=1, workers=2, chunksize=1))
    finally:
        signal.signal(signal.SIGTERM, previous)
