"""ocipush.workers: the transfer engine's threads, which stand in for concurrent.futures."""

from __future__ import annotations

import threading

from ocipush.workers import each_on_threads


def _alive(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(name)]


def test_every_item_is_called_and_errors_come_back_as_values() -> None:
    def halve(n: int) -> int:
        if n % 2:
            raise ValueError(f"{n} is odd")
        return n // 2

    outcomes = list(each_on_threads(halve, list(range(10)), 3, "test-halve"))
    assert sorted(item for item, _, _ in outcomes) == list(range(10))
    assert {item: result for item, result, error in outcomes if error is None} == {0: 0, 2: 1, 4: 2, 6: 3, 8: 4}
    assert {item: str(error) for item, _, error in outcomes if error} == {n: f"{n} is odd" for n in (1, 3, 5, 7, 9)}
    assert not _alive("test-halve")  # run to the end, every thread has been joined


def test_calls_start_in_the_list_order_on_at_most_jobs_threads() -> None:
    started: list[str] = []
    names: set[str] = set()

    def note(item: str) -> str:
        started.append(item)
        names.add(threading.current_thread().name)
        return item

    assert [item for item, _, _ in each_on_threads(note, ["a", "b", "c", "d"], 1, "test-order")] == list("abcd")
    assert started == list("abcd") and names == {"test-order-0"}
    assert not list(each_on_threads(note, [], 4, "test-empty"))


def test_leaving_early_starts_no_further_call_and_does_not_wait() -> None:
    called: list[int] = []
    release = threading.Event()

    def slow_after_the_first(n: int) -> int:
        called.append(n)
        if n:
            assert release.wait(10)  # the second call is still under way when the caller leaves
        return n

    for item, _, _ in each_on_threads(slow_after_the_first, list(range(5)), 1, "test-early"):
        assert item == 0
        break  # the caller leaves, as an exception or Ctrl-C would take it out
    release.set()
    for thread in _alive("test-early"):
        thread.join(10)
    assert called in ([0], [0, 1]) and not _alive("test-early")
