"""The ordered pipeline (``loads/pipeline.py``) on a real thread pool, paced by events: no sleeps.

Its rules (``ordered``'s docstring): results in the order of the items whatever the order the work
finishes in; at most ``ahead + 1`` items submitted and not yet yielded, so a lazy input is never
read far ahead; an error reading the items comes after the work already submitted; work not yet
started when the consumer stops early is cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest

from airflow_provider_wolkvox.loads.pipeline import ordered

# Seconds any wait may take before the test fails: a bound against hanging, never a pace.
HANG = 10.0


class Paced:
    """Work whose items start and finish when the test says: ``release(i)`` lets item ``i`` finish."""

    def __init__(self, count: int, *, released: tuple[int, ...] = ()) -> None:
        self.started = [threading.Event() for _ in range(count)]
        self.released = [threading.Event() for _ in range(count)]
        self.finished = [threading.Event() for _ in range(count)]
        self.order: list[int] = []  # the order the work finished in
        self._lock = threading.Lock()
        for item in released:
            self.released[item].set()

    def __call__(self, item: int) -> int:
        self.started[item].set()
        assert self.released[item].wait(HANG), f"item {item} was never released"
        with self._lock:
            self.order.append(item)
        self.finished[item].set()
        return item * 10

    def release(self, item: int) -> None:
        self.released[item].set()
        assert self.finished[item].wait(HANG)

    def release_all(self) -> None:
        for event in self.released:
            event.set()

    def started_items(self) -> list[int]:
        return [item for item, event in enumerate(self.started) if event.is_set()]


class Source:
    """A lazy input that counts what was read of it, and may fail after ``fail_after`` items."""

    def __init__(self, count: int, fail_after: int | None = None) -> None:
        self.count = count
        self.fail_after = fail_after
        self.read = 0

    def __iter__(self) -> Iterator[int]:
        for item in range(self.count):
            if item == self.fail_after:
                raise ValueError(f"bad record {item}")
            self.read += 1
            yield item


class Consumer(threading.Thread):
    """Reads every result of ``ordered`` in a thread of its own, as a load's caller does."""

    def __init__(self, results: Iterator[Any]) -> None:
        super().__init__(daemon=True)
        self.results = results
        self.received: list[Any] = []

    def run(self) -> None:
        for result in self.results:
            self.received.append(result)

    def finish(self) -> list[Any]:
        self.join(HANG)
        assert not self.is_alive()
        return self.received


@pytest.mark.parametrize(
    "finishing_order",
    [(0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2), (2, 0, 3, 1)],
    ids=["in-order", "reversed", "mixed", "interleaved"],
)
def test_results_come_in_input_order_whatever_order_the_work_finishes_in(
    finishing_order: tuple[int, ...],
) -> None:
    work = Paced(4)
    with ThreadPoolExecutor(max_workers=4) as pool:
        try:
            consumer = Consumer(ordered(pool, work, range(4), ahead=3))
            consumer.start()
            for event in work.started:  # all four in flight at once
                assert event.wait(HANG)
            for item in finishing_order:
                work.release(item)
            received = consumer.finish()
        finally:
            work.release_all()
    assert work.order == list(finishing_order)  # the work did finish in that order
    assert received == [0, 10, 20, 30]


@pytest.mark.parametrize(("ahead", "count"), [(0, 5), (1, 5), (3, 6), (8, 4)])
def test_at_most_ahead_plus_one_items_are_read_and_submitted_before_their_results_are_taken(
    ahead: int, count: int
) -> None:
    work, source = Paced(count), Source(count)
    with ThreadPoolExecutor(max_workers=count) as pool:
        try:
            consumer = Consumer(ordered(pool, work, source, ahead=ahead))
            consumer.start()
            for done in range(count):  # results 0 .. done-1 are taken, item ``done`` is unfinished
                in_flight = min(count, done + ahead + 1)
                for event in work.started[done:in_flight]:
                    assert event.wait(HANG)
                # The consumer now waits for item ``done``: nothing more is read until it finishes.
                assert source.read == in_flight
                assert work.started_items() == list(range(in_flight))
                work.release(done)
            received = consumer.finish()
        finally:
            work.release_all()
    assert received == [item * 10 for item in range(count)]


@pytest.mark.parametrize(("good", "ahead"), [(0, 2), (2, 0), (2, 5), (5, 2)])
def test_an_error_reading_the_items_comes_after_the_results_of_the_items_before_it(
    good: int, ahead: int
) -> None:
    received: list[int] = []
    with ThreadPoolExecutor(max_workers=2) as pool, pytest.raises(ValueError, match=f"bad record {good}"):
        received.extend(ordered(pool, lambda item: item * 10, Source(good + 3, fail_after=good), ahead))
    assert received == [item * 10 for item in range(good)]


def test_work_not_started_when_the_consumer_stops_is_cancelled() -> None:
    work, source = Paced(6, released=(0,)), Source(6)
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            results = cast("Generator[int, None, None]", ordered(pool, work, source, ahead=3))
            assert next(results) == 0  # items 0-3 submitted; the one worker finished 0
            assert work.started[1].wait(HANG)  # ... and runs 1; 2 and 3 wait for it
            results.close()  # the consumer stops
            work.release(1)
        finally:
            work.release_all()
    assert work.order == [0, 1]  # 2 and 3 were cancelled, never run
    assert work.started_items() == [0, 1]
    assert source.read == 4  # and nothing past the look-ahead was read
