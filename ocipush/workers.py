"""One function called for each item of a list on a few threads, each outcome handed back as its call returns.

The transfer engine moves blobs with this rather than `concurrent.futures`, whose import loads `logging` and
`traceback` with theirs: about 6 ms, a twentieth of a push's start-up, for what these few lines do."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def each_on_threads(
    call: Callable[[Item], Result], items: Sequence[Item], jobs: int, name: str
) -> Generator[tuple[Item, Result | None, BaseException | None], None, None]:
    """`call(item)` for every item, started in the list's order on up to `jobs` threads named `name`-N; yields
    (item, result, None), or (item, None, error) for a call that raised, as each returns. Run to the end, it has
    waited for every thread. Closed early (the caller raised, Ctrl-C), it starts no further call and does not wait
    for those under way: the caller stops them (the transfer engine's `stop` event)."""
    waiting = list(reversed(items))  # taken from the end: the list's order
    finished: list[tuple[Item, Result | None, BaseException | None]] = []
    changed = threading.Condition()

    def work() -> None:
        while True:
            with changed:
                if not waiting:
                    return
                item = waiting.pop()
            try:
                outcome: tuple[Item, Result | None, BaseException | None] = (item, call(item), None)
            except BaseException as error:  # handed to the caller, as a future would
                outcome = (item, None, error)
            with changed:
                finished.append(outcome)
                changed.notify()

    threads = [threading.Thread(target=work, name=f"{name}-{n}") for n in range(min(max(1, jobs), len(items)))]
    try:
        for thread in threads:
            thread.start()
        for _ in items:
            with changed:
                while not finished:
                    changed.wait()
                outcome = finished.pop(0)
            yield outcome
    finally:
        with changed:
            waiting.clear()
    for thread in threads:
        thread.join()
