"""An ordered pipeline: work on items in a thread pool, results in input order, a bounded look-ahead."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered(pool: ThreadPoolExecutor, work: Callable[[T], R], items: Iterable[T], ahead: int) -> Iterator[R]:
    """``work(item)`` for every item, run in ``pool``, yielded in the order of ``items``.

    At most ``ahead + 1`` items are submitted and not yet yielded, so a lazy ``items`` is never read
    far ahead. When reading ``items`` raises (a bad record found mid-input), the work already
    submitted is yielded first, then the error is raised. Work not yet started when the consumer
    stops early is cancelled.
    """
    pending: deque[Future[R]] = deque()
    source = iter(items)
    try:
        while True:
            try:
                item = next(source)
            except StopIteration:
                break
            except Exception:
                while pending:
                    yield pending.popleft().result()
                raise
            pending.append(pool.submit(work, item))
            while len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
