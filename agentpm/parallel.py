"""One way to spread per-file work over the cores: forked workers, results in input order."""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

#: Young-generation collections every this many allocations (Python's default is 700): runs
#: build many small long-lived objects and few cycles. The CLI sets it for the whole process.
GC_YOUNG_THRESHOLD = 50_000

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_in_order(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    minimum: int,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    chunksize: int = 16,
    every: int = 1,
) -> list[Result]:
    """``[function(item) for item in items]``, on every core once there are ``minimum`` items.

    fork, not spawn: `python -m agentpm` has no __main__ guard to re-import safely, and workers
    then share what the parent already loaded (a model's arrays) copy-on-write. ``function``
    must be a module-level function. ``progress(done, total)`` is called every ``every`` items
    (and at the end), always from this process.
    """
    return list(iter_in_order(function, items, minimum, progress, workers, chunksize, every))


def iter_in_order(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    minimum: int,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    chunksize: int = 16,
    every: int = 1,
) -> Iterator[Result]:
    """:func:`map_in_order` as results arrive, so the caller's own work on them overlaps the
    workers' (the pool is closed when the iteration ends or is abandoned)."""
    total = len(items)
    count = workers if workers is not None else (os.cpu_count() or 1)
    done = 0

    def tick() -> None:
        if progress and (done % every == 0 or done == total):
            progress(done, total)

    if count > 1 and total >= minimum and sys.platform != "win32":
        import multiprocessing

        with (
            _lighter_gc(),
            multiprocessing.get_context("fork").Pool(count, initializer=_worker_start) as pool,
        ):
            for result in pool.imap(function, items, chunksize=chunksize):
                done += 1
                tick()
                yield result
        return
    for item in items:
        result = function(item)
        done += 1
        tick()
        yield result


def _worker_start() -> None:
    # The CLI turns SIGTERM into SystemExit so `finally` blocks run; a worker that inherits that
    # handler can swallow the SIGTERM with which the pool ends it and then wait forever on the
    # task queue, hanging the run at its very end. Workers hold nothing to clean up: die at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def _lighter_gc() -> Iterator[None]:
    """Less garbage-collector work while a pool runs: ~6 % of a large batch's time.

    Objects alive at the fork (modules, the loaded model) are frozen out of every collection,
    which also spares the workers' copy-on-write pages, and young collections run less often
    (``GC_YOUNG_THRESHOLD``): results arrive as many small objects; few form cycles.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], GC_YOUNG_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def map_batched(
    function: Callable[[list[Item]], list[Result]],
    items: Sequence[Item],
    batch: int,
    minimum: int,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> list[Result]:
    """Like :func:`map_in_order`, but ``function`` takes a list of up to ``batch`` items and returns
    one result per item: for work that is cheaper per item when done many at a time (numpy)."""
    return list(iter_batched(function, items, batch, minimum, progress, workers))


def batch_spans(total: int, batch: int, workers: int | None) -> list[tuple[int, int]]:
    """(start, size) of each batch: ``batch`` items each, but the last round in quarter
    batches, so the workers finish together instead of one idling through another's last batch."""
    tail = min(total, (workers or os.cpu_count() or 1) * batch) if batch >= 8 else 0
    small = max(1, batch // 4)
    spans = [(start, min(batch, total - tail - start)) for start in range(0, total - tail, batch)]
    spans += [(start, min(small, total - start)) for start in range(total - tail, total, small)]
    return spans


def iter_batched(
    function: Callable[[list[Item]], list[Result]],
    items: Sequence[Item],
    batch: int,
    minimum: int,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> Iterator[Result]:
    """:func:`map_batched` as results arrive (see :func:`iter_in_order`)."""
    batches = [list(items[start : start + size]) for start, size in batch_spans(len(items), batch, workers)]
    done = 0

    def tick(finished: int, _: int) -> None:
        nonlocal done
        done += len(batches[finished - 1])
        if progress:
            progress(done, len(items))

    # Workers or not is decided on the number of items, as for :func:`iter_in_order`.
    batches_minimum = 1 if len(items) >= minimum else len(batches) + 1
    for part in iter_in_order(function, batches, batches_minimum, tick, workers, chunksize=1):
        yield from part


class Helper:
    """One forked process that runs ``prepare`` at once (slow imports, say) and then, when asked,
    one call for this process: the preparing overlaps whatever this process does meanwhile.

    Where fork is not available, or the helper fails in any way, :meth:`call` runs the function
    here instead, so the result (or the error a user sees) is the same either way.
    """

    def __init__(self, prepare: Callable[[], object], start: bool = True):
        self._process = None
        self._connection = None
        self._pending: tuple[Callable[[Any], Any], Any] | None = None
        if not start or sys.platform != "linux":  # fork is unsafe on macOS and absent on Windows
            return
        import multiprocessing

        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(theirs, prepare), daemon=True)
        try:
            self._process.start()
        except OSError:
            self._process = None
            return
        theirs.close()
        self._connection = ours

    @property
    def pid(self) -> int | None:
        """The helper's process id while it runs, else None (no helper, or it has finished)."""
        return self._process.pid if self._process is not None else None

    def submit(self, function: Callable[[Item], Result], argument: Item) -> None:
        """Start ``function(argument)`` in the helper (``function`` must be module-level); one
        call at a time, collected with :meth:`result`."""
        self._pending = (function, argument)
        if self._connection is not None:
            try:
                self._connection.send((function, argument))
            except (OSError, ValueError, TypeError, AttributeError):
                self.close()  # gone, or the call could not be sent: result() runs it here

    def result(self) -> Any:
        """What the submitted call returned, from the helper or, if it failed there, run here."""
        if self._pending is None:
            raise RuntimeError("nothing was submitted")
        function, argument = self._pending
        if self._connection is not None:
            try:
                done, result = self._connection.recv()
            except (OSError, EOFError):
                done, result = False, None
            self._pending = None  # answered, or gone: nothing runs in the helper now
            self.close()
            if done:
                return result
        self._pending = None
        return function(argument)

    def call(self, function: Callable[[Item], Result], argument: Item) -> Result:
        """``function(argument)``, in the helper when it is alive."""
        self.submit(function, argument)
        return self.result()

    def close(self) -> None:
        """End the helper: at once when a call is still running in it (an error or Ctrl-C came
        first, and nothing will collect its result), else when it has read the stop request."""
        busy = self._pending is not None
        if self._connection is not None:
            try:
                self._connection.send(None)
            except (OSError, ValueError):
                pass
            self._connection.close()
            self._connection = None
        if self._process is not None:
            if busy:
                self._process.kill()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(connection, prepare: Callable[[], object]) -> None:  # type: ignore[no-untyped-def]
    # Ctrl-C and the end of the run are the parent's to handle: this process just stops
    # (an interrupted helper must not print a traceback of its own).
    _worker_start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        prepare()
        while (request := connection.recv()) is not None:
            function, argument = request
            try:
                connection.send((True, function(argument)))
            except Exception:  # noqa: BLE001 - the parent runs it again and reports the error itself
                connection.send((False, None))
    except (Exception, KeyboardInterrupt):  # noqa: BLE001 - the parent falls back to its own work
        pass
    finally:
        connection.close()
