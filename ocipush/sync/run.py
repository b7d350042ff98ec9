"""`ocipush.sync(spec, …)`: plan, then copy what differs, on threads or on Dask; return the report."""

from __future__ import annotations

import dataclasses
import importlib.util
import threading
import time
from typing import Literal

from ocipush.errors import UsageError
from ocipush.log import get_logger
from ocipush.registry.options import RegistryOptions
from ocipush.registry.session import RegistrySession
from ocipush.sync.planner import Planner
from ocipush.sync.ratelimit import QuotaGate
from ocipush.sync.report import ImageResult, SyncCallback, SyncEvent, SyncReport, ignore_events
from ocipush.sync.spec import SyncSpec, load_spec

log = get_logger("ocipush.sync")
# Requests in flight while planning: each is a HEAD or a tag list, so round trips, not bandwidth, set the pace.
PLAN_JOBS = 16


def sync(
    spec: SyncSpec | str,
    *,
    options: RegistryOptions | None = None,
    dry_run: bool = False,
    keep_going: bool = False,
    workers: int = 4,
    executor: Literal["threads", "dask"] = "threads",
    scheduler: str | None = None,
    on_event: SyncCallback = ignore_events,
) -> SyncReport:
    """Mirror what `spec` (a SyncSpec, or the path of a sync file) names. Tags whose digest at a destination
    already equals the source's cost one HEAD and nothing else. Without `keep_going` the first failed image stops
    the sync (images not started are counted in `not_run`). `workers`: images copied at once (threads), or the
    LocalCluster's worker processes with `executor="dask"` and no `scheduler`."""
    if executor == "dask" and not dry_run and importlib.util.find_spec("distributed") is None:
        # Before any request, not after a whole plan. find_spec looks for the package without importing it.
        raise UsageError("the dask executor needs Dask's distributed package: pip install 'ocipush[dask]'")
    if isinstance(spec, str):
        spec = load_spec(spec)
    options = options or RegistryOptions.from_env()
    # One session serves every image copied at once: its connection pools (sized by `jobs`) must hold the blobs
    # of all of them, or copies wait on one another for a connection.
    pooled = dataclasses.replace(options, jobs=max(options.jobs * max(1, workers), PLAN_JOBS))
    started = time.monotonic()
    report = SyncReport(dry_run=dry_run)
    lock = threading.Lock()

    def record(result: ImageResult) -> None:
        with lock:
            report.results.append(result)

    def planning_event(event: SyncEvent) -> None:
        if event.result is not None:
            record(event.result)
        on_event(event)

    with RegistrySession(pooled) as session:
        gate = QuotaGate(spec.rate_limits, on_event)
        plan = Planner(spec, session, gate, planning_event, jobs=PLAN_JOBS).plan()
        report.phases["plan"] = time.monotonic() - started
        log.info("sync plan: %d images to copy, %d results so far", len(plan.tasks), len(plan.results))
        if dry_run:
            for task in plan.tasks:
                for target in task.targets:
                    planned = ImageResult(task.source, target.name, list(target.tags), task.digest, "planned")
                    record(planned)
                    on_event(SyncEvent("planned", planned))
            report.seconds = time.monotonic() - started
            return report

        def on_done(results: list[ImageResult]) -> bool:
            for result in results:
                record(result)
                on_event(SyncEvent("copied" if result.status == "copied" else "failed", result))
            return keep_going or all(r.status != "failed" for r in results)

        if report.failed and not keep_going:
            report.not_run = len(plan.tasks)
        elif plan.tasks:  # nothing to copy starts no pool and no cluster, and loads no copier
            from ocipush.sync.copier import CopyContext
            from ocipush.sync.executors import DaskExecutor, Executor, ThreadExecutor

            runner: Executor
            if executor == "dask":
                runner = DaskExecutor(options, spec.rate_limits, scheduler, workers)
            else:
                runner = ThreadExecutor(CopyContext(session, spec.rate_limits, gate, options.jobs), workers)
            copying = time.monotonic()
            report.not_run = runner.run(plan.tasks, on_done)
            report.phases["copy"] = time.monotonic() - copying
            if isinstance(runner, DaskExecutor):
                report.phases["start"] = runner.start_seconds
                report.phases["copy"] -= runner.start_seconds
    report.seconds = time.monotonic() - started
    return report
