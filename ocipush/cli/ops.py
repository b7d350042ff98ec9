"""`ocipush tag | untag | mutate | rebase | flatten`: new tags and new images from images in a registry."""

from __future__ import annotations

import argparse
from typing import Any

from ocipush.cli.common import add_registry_arguments, emit, registry_options, run_and_report


def register(subparsers: Any) -> None:
    def command(
        name: str, handler: Any, help_text: str, description: str | None = None, transfers: bool = True
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(
            name, help=help_text, description=description or help_text
        )
        parser.set_defaults(handler=handler)
        add_registry_arguments(parser, transfers)  # no --jobs/--chunk-size where no blob moves
        return parser

    tag = command("tag", _tag, "add tags to a manifest (one manifest PUT per tag, no blob traffic)", transfers=False)
    tag.add_argument("reference", help="REGISTRY/REPO:TAG or @DIGEST")
    tag.add_argument("tags", nargs="+", metavar="NEWTAG", help="new tag(s) in the same repository")

    untag = command(
        "untag",
        _untag,
        "remove a tag but keep the manifest (Amazon ECR only)",
        "Remove a tag, keeping the manifest and its other tags. Only ECR can (BatchDeleteImage by tag); elsewhere "
        "the registry API can only delete the manifest with all its tags (`ocipush delete`).",
        transfers=False,
    )
    untag.add_argument("reference", help="REGISTRY/REPO:TAG")

    from ocipush.build.args import add_config_arguments

    mutate = command(
        "mutate",
        _mutate,
        "edit an image's config and annotations without downloading layers",
        "Push a copy of an image with config edits (as in build), a new platform or annotations. Only the config "
        "and manifest are new: the digest changes, the layers are the same blobs.",
    )
    mutate.add_argument("reference", help="the image to edit")
    _add_output(mutate)
    _add_platform(mutate)
    edits = mutate.add_argument_group("edits")
    add_config_arguments(edits)
    edits.add_argument("--set-platform", metavar="OS/ARCH[/VARIANT]", help="rewrite the config's platform")

    rebase = command(
        "rebase",
        _rebase,
        "move an image onto a new base without rebuilding it",
        "Replace the image's bottom layers (its old base's) with the new base's; the app layers are neither "
        "downloaded nor changed. The old base comes from the org.opencontainers.image.base.* annotations "
        "(written by ocipush build) or --old-base.",
    )
    rebase.add_argument("reference", help="the image to rebase")
    rebase.add_argument("--new-base", required=True, metavar="REF", help="the base to move onto")
    rebase.add_argument("--old-base", metavar="REF", help="the base the image was built on (default: annotations)")
    _add_output(rebase)
    _add_platform(rebase)

    flatten = command(
        "flatten",
        _flatten,
        "squash an image's layers into one (whiteouts applied)",
        "Push a copy of an image whose layers are merged into one, as a runtime would see the filesystem. The "
        "layers are streamed top-down from the registry and never stored; the new layer is compressed on the way.",
    )
    flatten.add_argument("reference", help="the image to flatten")
    _add_output(flatten)
    _add_platform(flatten)
    flatten.add_argument("--compression", choices=("gzip", "zstd", "none"), default="gzip", help="(default gzip)")


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", "-t", dest="output", required=True, metavar="TAG|REF",
                        help="where the new image goes: a tag of the same repository, or a reference")  # fmt: skip


def _add_platform(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="the image to take from an index")


def _tag(args: argparse.Namespace) -> int:
    from ocipush.ops.tags import tag

    digest = tag(args.reference, args.tags, options=registry_options(args))
    text = digest if args.quiet else f"tagged {digest}: {' '.join(args.tags)}"
    emit(args, {"digest": digest, "tags": args.tags}, text)
    return 0


def _untag(args: argparse.Namespace) -> int:
    from ocipush.ops.tags import untag

    untag(args.reference, options=registry_options(args))
    emit(args, {"untagged": args.reference}, "" if args.quiet else f"untagged {args.reference}")
    return 0


def _mutate(args: argparse.Namespace) -> int:
    from ocipush.build.args import config_overrides
    from ocipush.build.spec import make_spec
    from ocipush.ops.mutate import mutate

    spec = make_spec({}, config_overrides(args))
    return run_and_report(args, "mutated", args.output, lambda progress: mutate(
        args.reference, args.output, spec, set_platform=args.set_platform, platform=args.platform,
        options=registry_options(args), progress=progress,
    ))  # fmt: skip


def _rebase(args: argparse.Namespace) -> int:
    from ocipush.ops.rebase import rebase

    return run_and_report(args, "rebased", args.output, lambda progress: rebase(
        args.reference, args.new_base, args.output, old_base=args.old_base, platform=args.platform,
        options=registry_options(args), progress=progress,
    ))  # fmt: skip


def _flatten(args: argparse.Namespace) -> int:
    from ocipush.ops.flatten import flatten

    return run_and_report(args, "flattened", args.output, lambda progress: flatten(
        args.reference, args.output, platform=args.platform, compression=args.compression,
        options=registry_options(args), progress=progress,
    ))  # fmt: skip
