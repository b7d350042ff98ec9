"""ocipush.workers: the transfer engine's threads, which stand in for concurrent.futures."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

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


def test_closing_early_starts_no_further_call_and_does_not_wait() -> None:
    called: list[int] = []
    release = threading.Event()

    def slow_after_the_first(n: int) -> int:
        called.append(n)
        if n:
            assert release.wait(10)  # the second call is still under way when the caller leaves
        return n

    outcomes = each_on_threads(slow_after_the_first, list(range(5)), 1, "test-early")
    assert next(outcomes) == (0, 0, None)
    outcomes.close()  # the caller leaves, as move_blobs does on Ctrl-C
    release.set()
    for thread in _alive("test-early"):
        thread.join(10)
    assert called in ([0], [0, 1]) and not _alive("test-early")


def test_ctrl_c_while_blobs_move_stops_the_uploads_under_way_and_starts_no_other() -> None:
    """move_blobs on Ctrl-C: the stop event is set (each upload ends at its next piece) and no further blob starts.
    A fake target, since the interrupt must land while uploads are under way: the first upload delivers it to
    the main thread (as SIGINT would) and then waits, as a long upload does, until it is told to stop."""
    import _thread

    from ocipush.errors import TransferStopped
    from ocipush.models import Descriptor
    from ocipush.transfer import move_blobs

    started: list[str] = []
    stop = threading.Event()

    class Uploading:
        def __init__(self) -> None:
            self.stop = stop

        def put_blob(self, source: object, descriptor: Descriptor) -> str:
            started.append(descriptor.digest)
            if len(started) == 1:
                _thread.interrupt_main()
            assert stop.wait(10)  # an upload ends at its next piece once stop is set
            raise TransferStopped

    blobs = [Descriptor(media_type="application/octet-stream", digest=f"sha256:{n:064x}", size=n) for n in range(6)]
    with pytest.raises(KeyboardInterrupt):
        move_blobs(cast(Any, None), cast(Any, Uploading()), blobs, 2)
    assert stop.is_set()
    for thread in _alive("ocipush-blob"):
        thread.join(10)
    assert not _alive("ocipush-blob")
    assert len(started) <= 2  # the two under way when Ctrl-C came; none of the four waiting started
