"""`ocipush index create | append | filter | remove`: author an index from images already in registries."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ocipush.cli.common import add_registry_arguments, registry_options, run_and_report

if TYPE_CHECKING:
    from ocipush.progress import ProgressCallback
    from ocipush.transfer import TransferResult

Run = Callable[..., "TransferResult"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "index",
        help="create or edit an image index from images already in registries",
        description="Create or edit an image index (multi-platform image) from existing images: children in other "
        "repositories of the registry are mounted, those in other registries streamed. The index is a new "
        "document, so its digest is new; the images keep theirs.",
    )
    commands = parser.add_subparsers(dest="index_command", metavar="SUBCOMMAND", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("target", help="the index: REGISTRY/REPO:TAG (a tag, never a digest)")
        sub.set_defaults(handler=handler)
        add_registry_arguments(sub)
        return sub

    create = command("create", _create, "create an index from images (platforms read from each image's config)")
    _add_manifests(create)
    append = command("append", _append, "add images to an existing index")
    _add_manifests(append)
    _add_output(append)
    filter_ = command("filter", _filter, "keep only the images of the given platforms")
    filter_.add_argument("--platform", action="append", default=[], metavar="OS/ARCH[/VARIANT]",
                         help="a platform to keep (repeatable; each must be in the index)")  # fmt: skip
    _add_output(filter_)
    remove = command("remove", _remove, "drop images by platform or digest")
    remove.add_argument("--platform", action="append", default=[], metavar="OS/ARCH[/VARIANT]",
                        help="a platform to drop (repeatable)")  # fmt: skip
    remove.add_argument("--digest", action="append", default=[], help="an entry to drop (repeatable)")
    _add_output(remove)


def _add_manifests(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", "-m", action="append", default=[], metavar="REF",
                        help="an image (or an index, adding all its images); repeatable")  # fmt: skip
    parser.add_argument("--annotation", action="append", default=[], metavar="K=V", help="index annotation")


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", "-t", dest="output", metavar="TAG|REF",
                        help="write the result here instead of back to TARGET")  # fmt: skip


def _annotations(args: argparse.Namespace) -> dict[str, str]:
    from ocipush.build.spec import parse_pair

    return dict(parse_pair(text, "--annotation") for text in args.annotation)


def _run(args: argparse.Namespace, verb: str, call: Run, **kwargs: Any) -> int:
    def transfer(progress: ProgressCallback) -> TransferResult:
        return call(args.target, options=registry_options(args), progress=progress, **kwargs)

    return run_and_report(args, verb, getattr(args, "output", None) or args.target, transfer)


def _create(args: argparse.Namespace) -> int:
    from ocipush.ops.index import create_index

    return _run(args, "created", create_index, manifests=args.manifest, annotations=_annotations(args))


def _append(args: argparse.Namespace) -> int:
    from ocipush.ops.index import append_index

    return _run(args, "appended to", append_index, manifests=args.manifest, annotations=_annotations(args),
                output=args.output)  # fmt: skip


def _filter(args: argparse.Namespace) -> int:
    from ocipush.ops.index import filter_index

    return _run(args, "filtered", filter_index, platforms=args.platform, output=args.output)


def _remove(args: argparse.Namespace) -> int:
    from ocipush.ops.index import remove_from_index

    return _run(args, "removed from", remove_from_index, platforms=args.platform, digests=args.digest,
                output=args.output)  # fmt: skip
