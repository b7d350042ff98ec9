"""`ocipush sync`: mirror what a sync file names, or one repository (`ocipush sync SRC_REPO DST_REPO --all-tags`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ocipush.cli.common import add_registry_arguments, blob_summary, registry_options
from ocipush.errors import SyncIncomplete, UsageError

if TYPE_CHECKING:
    from ocipush.sync.report import ImageResult, SyncEvent, SyncReport
    from ocipush.sync.spec import Destination, SyncSpec


def register(subparsers: Any) -> None:
    from ocipush.cli.ecr import add_create_repo_arguments

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sync",
        help="mirror repositories or whole registries (a sync file, or SRC_REPO DST_REPO)",
        description="Mirror images: tags whose digest already matches at the destination cost one HEAD and are "
        "skipped, so running the same sync again (after a failure, a kill, or a day) copies only what changed.",
        epilog="exit code 12: some images failed or were not run (see the summary or --json).",
    )
    parser.set_defaults(handler=_sync)
    parser.add_argument("source", nargs="?", help="source repository, e.g. docker.io/library/alpine[:tag]")
    parser.add_argument("target", nargs="?", help="destination repository, e.g. HOST/mirror/alpine")
    parser.add_argument("--file", "-f", help="sync file (YAML; the ocipush shape or skopeo-sync's)")
    parser.add_argument(
        "--dest", action="append", default=[], metavar="REGISTRY[/PREFIX]", help="destination for a skopeo-sync file"
    )
    tags = parser.add_argument_group("tags (one-off form)")
    tags.add_argument("--all-tags", "-a", action="store_true", help="every tag of the source repository")
    tags.add_argument("--include", action="append", default=[], metavar="REGEX", help="only tags matching")
    tags.add_argument("--exclude", action="append", default=[], metavar="REGEX", help="no tags matching")
    tags.add_argument("--semver", metavar="RANGE", help="only versions in RANGE, e.g. '>=1.2 <2' or '^3.19'")
    tags.add_argument("--newest", type=int, metavar="N", help="only the newest N tags")
    tags.add_argument("--newest-by", choices=("semver", "pushed"), default="semver")
    tags.add_argument("--platform", action="append", default=[], help="keep only these platforms of an index")
    run = parser.add_argument_group("running")
    run.add_argument("--dry-run", action="store_true", help="print the plan (what would be copied) and stop")
    run.add_argument("--keep-going", "-k", action="store_true", help="copy the rest when an image fails")
    run.add_argument("--executor", choices=("threads", "dask"), default="threads")
    run.add_argument("--scheduler", metavar="tcp://HOST:8786", help="a running Dask scheduler (with --executor dask)")
    run.add_argument("--workers", type=int, default=4, help="images at once; Dask LocalCluster processes (default 4)")
    run.add_argument("--no-referrers", action="store_true", help="leave signatures, SBOMs and other referrers behind")
    run.add_argument("--rate-limit-floor", type=int, metavar="N", help="Docker Hub pulls to keep in reserve")
    run.add_argument("--on-rate-limit", choices=("pause", "stop"), help="below the floor (default pause)")
    add_create_repo_arguments(parser)
    add_registry_arguments(parser)


def _spec(args: argparse.Namespace) -> SyncSpec:
    from ocipush.sync.spec import load_spec, parse_spec

    if args.file:
        if args.source or args.target:
            raise UsageError("give a sync file or SRC_REPO DST_REPO, not both")
        destinations = [_destination(text) for text in args.dest]
        spec = load_spec(args.file, destinations)
    else:
        if not (args.source and args.target):
            raise UsageError("give SRC_REPO DST_REPO, or --file SYNC.yaml")
        spec = parse_spec(_one_off(args), [])
    from dataclasses import replace  # here: `ocipush --help` loads every command's module, and dataclasses is 4 ms

    updates: dict[str, Any] = {}
    if args.rate_limit_floor is not None or args.on_rate_limit:
        limits = spec.rate_limits
        floor = limits.floor if args.rate_limit_floor is None else args.rate_limit_floor
        updates["rate_limits"] = replace(limits, floor=floor, action=args.on_rate_limit or limits.action)
    if args.no_referrers:
        updates["referrers"] = False
    if args.create_repo:
        from ocipush.cli.ecr import repository_options_from_args
        from ocipush.sync.spec import RepositorySettings

        settings = RepositorySettings(**repository_options_from_args(args).model_dump())
        updates["destinations"] = tuple(
            replace(d, create_repo=True, repository_settings=settings) for d in spec.destinations
        )
    return replace(spec, **updates) if updates else spec


def _destination(text: str) -> Destination:
    from ocipush.sync.spec import Destination

    registry, _, prefix = text.partition("/")
    return Destination(registry=registry, prefix=f"{prefix}/" if prefix else "")


def _one_off(args: argparse.Namespace) -> dict[str, Any]:
    from ocipush.reference import parse_reference

    source = parse_reference(args.source)
    target = parse_reference(args.target)
    if _names_version(args.target):
        raise UsageError(f"{args.target}: name a repository (tags come from the source)")
    filtered = args.all_tags or args.include or args.exclude or args.semver or args.newest
    tagged = _names_version(args.source)
    if source.digest:
        entries = [f"{source.tag}@{source.digest}" if ":" in args.source.rsplit("/", 1)[-1].split("@")[0] else
                   source.digest]  # fmt: skip
    elif tagged and source.tag and not filtered:
        entries = [source.tag]
    elif filtered and not tagged:
        entries = []
    else:
        raise UsageError(f"{args.source}: name one tag, or pass --all-tags (or tag filters) for several")
    tags = {"include": args.include, "exclude": args.exclude, "semver": args.semver, "newest": args.newest,
            "newest-by": args.newest_by}  # fmt: skip
    return {
        "sources": [
            {
                "registry": source.registry,
                "images": {source.repository: entries},
                "tags": {k: v for k, v in tags.items() if v} if filtered else None,
                "platforms": args.platform,
            }
        ],
        "destinations": [{"registry": target.registry, "template": target.repository}],
    }


def _names_version(text: str) -> bool:
    """Whether a reference as typed names a tag or digest (parsing adds `latest` to a bare repository)."""
    return "@" in text or ":" in text.rsplit("/", 1)[-1]


def _line(result: ImageResult) -> str:
    tags = ",".join(result.tags) or result.digest[:19]
    text = f"{result.status:8} {result.source} -> {result.target or '-'} [{tags}]"
    if result.blobs:
        text += f" ({blob_summary(result.blobs)})"
    if result.referrers:
        text += f" + {result.referrers} attached"
    if result.error:
        text += f": {result.error}"
    return text


def _sync(args: argparse.Namespace) -> int:
    from ocipush.sync.run import sync

    spec = _spec(args)
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.scheduler and args.executor != "dask":
        raise UsageError("--scheduler needs --executor dask")

    def show(event: SyncEvent) -> None:
        if args.quiet or args.json:
            return
        if event.result is None:
            print(f"info     {event.message}", file=sys.stderr)
        elif event.kind == "planned":
            print(_line(event.result))
        else:
            print(_line(event.result), file=sys.stderr)
        sys.stderr.flush()

    report = sync(
        spec,
        options=registry_options(args),
        dry_run=args.dry_run,
        keep_going=args.keep_going,
        workers=args.workers,
        executor=args.executor,
        scheduler=args.scheduler,
        on_event=show,
    )
    _render(args, report)
    return 0 if report.ok or report.dry_run else SyncIncomplete.exit_code


def _render(args: argparse.Namespace, report: SyncReport) -> None:
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    counts = report.summary()
    text = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())
    print(f"sync: {text} in {report.seconds:.1f} s" + (" (dry run)" if report.dry_run else ""))
