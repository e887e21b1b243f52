"""One way to spread per-file work over the cores: forked workers, results in input order."""

from __future__ import annotations

import os
import sys
from typing import Callable, Optional, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_in_order(function: Callable[[Item], Result], items: Sequence[Item], minimum: int,
                 progress: Optional[Callable[[int, int], None]] = None, workers: Optional[int] = None,
                 chunksize: int = 16, every: int = 1) -> list[Result]:
    """``[function(item) for item in items]``, on every core once there are ``minimum`` items.

    fork, not spawn: `python -m agentpm` has no __main__ guard to re-import safely, and workers
    then share what the parent already loaded (a model's arrays) copy-on-write. ``function``
    must be a module-level function. ``progress(done, total)`` is called every ``every`` items
    (and at the end), always from this process.
    """
    total = len(items)
    count = workers if workers is not None else (os.cpu_count() or 1)
    results: list[Result] = []

    def tick() -> None:
        if progress and (len(results) % every == 0 or len(results) == total):
            progress(len(results), total)

    if count > 1 and total >= minimum and sys.platform != "win32":
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(count) as pool:
            for result in pool.imap(function, items, chunksize=chunksize):
                results.append(result)
                tick()
        return results
    for item in items:
        results.append(function(item))
        tick()
    return results


def map_batched(function: Callable[[list[Item]], list[Result]], items: Sequence[Item], batch: int, minimum: int,
                progress: Optional[Callable[[int, int], None]] = None, workers: Optional[int] = None
                ) -> list[Result]:
    """Like :func:`map_in_order`, but ``function`` takes a list of up to ``batch`` items and returns
    one result per item: for work that is cheaper per item when done many at a time (numpy)."""
    batches = [list(items[start:start + batch]) for start in range(0, len(items), batch)]
    done = [0]

    def tick(finished: int, _: int) -> None:
        done[0] += len(batches[finished - 1])
        if progress:
            progress(done[0], len(items))

    results: list[Result] = []
    for part in map_in_order(function, batches, -(-minimum // batch), tick, workers, chunksize=1):
        results.extend(part)
    return results
