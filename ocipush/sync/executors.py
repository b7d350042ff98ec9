"""Where image tasks run: a thread pool in this process (the default), or a Dask cluster (`ocipush[dask]`).

Either way each task is `copy_image`, idempotent: a task run twice (a Dask worker died after copying, a sync
killed and run again) finds the image at the destination and does nothing more."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Protocol

from ocipush.registry.options import RegistryOptions
from ocipush.registry.session import RegistrySession
from ocipush.sync.copier import CopyContext, copy_image
from ocipush.sync.report import ImageResult, ImageTask
from ocipush.sync.spec import RateLimits

# Called with each task's results as it finishes; False stops the sync (a failure without keep-going).
OnDone = Callable[[list[ImageResult]], bool]


class Executor(Protocol):
    def run(self, tasks: Sequence[ImageTask], on_done: OnDone) -> int:
        """Run the tasks; returns how many were never run because `on_done` asked to stop."""
        ...


class ThreadExecutor:
    def __init__(self, context: CopyContext, workers: int) -> None:
        self.context = context
        self.workers = max(1, workers)

    def run(self, tasks: Sequence[ImageTask], on_done: OnDone) -> int:
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ocipush-sync")
        futures = [pool.submit(copy_image, task, self.context) for task in tasks]
        not_run = 0
        try:
            for future in as_completed(futures):
                if not on_done(future.result()):
                    not_run = sum(1 for f in futures if f.cancel())
                    break
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return not_run


# --- Dask ---------------------------------------------------------------------------------------------------------

_WORKER_CONTEXTS: dict[str, CopyContext] = {}
_WORKER_LOCK = threading.Lock()


def run_on_worker(task: ImageTask, options: RegistryOptions, limits: RateLimits) -> list[ImageResult]:
    """The Dask task: one image, with a registry session kept per worker process (connections and tokens are
    reused across tasks). Credentials come from the worker's own environment."""
    key = repr((options, limits))
    with _WORKER_LOCK:
        context = _WORKER_CONTEXTS.get(key)
        if context is None:
            context = _WORKER_CONTEXTS[key] = CopyContext(RegistrySession(options), limits)
    return copy_image(task, context)


class DaskExecutor:
    """Image tasks on a Dask cluster: the scheduler at `scheduler` (tcp://HOST:8786), or a LocalCluster of
    `workers` processes. A task on a worker that dies is run again elsewhere by Dask (its allowed-failures
    setting); `retries` covers errors that escape a task (a bug, a worker out of memory)."""

    def __init__(
        self,
        options: RegistryOptions,
        limits: RateLimits,
        scheduler: str | None,
        workers: int,
        threads_per_worker: int = 2,
        retries: int = 2,
    ) -> None:
        # Passwords given to this process stay here: workers read their own (instance role, env, docker config).
        self.options = dataclasses.replace(options, username=None, password=None)
        self.limits = limits
        self.scheduler = scheduler
        self.workers = max(1, workers)
        self.threads_per_worker = threads_per_worker
        self.retries = retries
        self.start_seconds = 0.0  # the LocalCluster's start and the client's connection

    def run(self, tasks: Sequence[ImageTask], on_done: OnDone) -> int:
        from distributed import Client, LocalCluster, as_completed

        started = time.monotonic()
        cluster = None
        if self.scheduler is None:
            cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=self.threads_per_worker,
                processes=True,
                dashboard_address=None,
            )
        run = uuid.uuid4().hex[:8]  # keys unique to this run: a long-lived scheduler must not reuse old results
        try:
            with Client(self.scheduler or cluster) as client:
                self.start_seconds = time.monotonic() - started
                futures = [
                    client.submit(
                        run_on_worker,
                        task,
                        self.options,
                        self.limits,
                        key=f"ocipush-sync-{run}-{hashlib.sha256(task.key.encode()).hexdigest()[:16]}",
                        retries=self.retries,
                        pure=False,
                    )
                    for task in tasks
                ]
                for future in as_completed(futures):
                    if not on_done(future.result()):
                        pending = [f for f in futures if not f.done()]
                        client.cancel(pending)
                        return len(pending)
                return 0
        finally:
            if cluster is not None:
                cluster.close()
