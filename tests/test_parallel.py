"""Worker processes: results in order, a pool that always ends, and a helper that never matters to the result."""

from __future__ import annotations

import os
import signal

import pytest

from agentpm.parallel import Helper, map_batched, map_in_order


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


def _double_all(batch: list[int]) -> list[int]:
    return [n * 2 for n in batch]


def _pid(_: object) -> int:
    return os.getpid()


def _fail(_: object) -> None:
    raise ValueError("bad input")


def test_a_helper_runs_the_call_in_another_process():
    with Helper(lambda: None) as helper:
        assert helper.call(_pid, None) != os.getpid()
        assert helper.call(_square, 12) == 144  # after the first call it has gone: run here
    with Helper(lambda: None, start=False) as helper:
        assert helper.call(_pid, None) == os.getpid()


def test_a_dead_or_failing_helper_costs_nothing_but_time():
    with Helper(lambda: None) as helper:
        assert helper.pid is not None
        os.kill(helper.pid, signal.SIGKILL)
        assert helper.call(_pid, None) == os.getpid()
        assert helper.pid is None
    with Helper(lambda: 1 / 0) as helper:  # preparing failed
        assert helper.call(_square, 3) == 9
    with Helper(lambda: None) as helper:  # the call fails: the error is this process's own
        with pytest.raises(ValueError, match="bad input"):
            helper.call(_fail, None)
    with Helper(lambda: None) as helper:
        helper.submit(_square, 5)
        assert helper.result() == 25
        with pytest.raises(RuntimeError):
            helper.result()


def test_batches_cover_every_item_once_in_order_and_end_small():
    from agentpm.parallel import batch_spans

    for total in (0, 1, 5, 599, 600, 1199, 1200, 1201, 30_000, 30_001):
        spans = batch_spans(total, 600, 2)
        covered = [index for start, size in spans for index in range(start, start + size)]
        assert covered == list(range(total)) and all(size > 0 for _, size in spans)
        if total > 1200:  # the workers' last round is in quarter batches
            assert [size for _, size in spans[-8:]] == [150] * 8
    assert map_batched(_double_all, list(range(1_000)), batch=64, minimum=1, workers=2) == [
        n * 2 for n in range(1_000)
    ]


def _sleep_long(_: object) -> None:
    import time

    time.sleep(60)


def test_a_helper_busy_with_a_call_nobody_collects_ends_at_once():
    import time

    started = time.perf_counter()
    with Helper(lambda: None) as helper:
        helper.submit(_sleep_long, None)  # and then an error: the result is never asked for
    assert time.perf_counter() - started < 3 and helper.pid is None
