"""`ocipush push | pull | copy | delete` (the queries `tags`, `catalog`, `inspect`, `digest` are in cli/query.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ocipush.cli.common import (
    add_registry_arguments,
    byte_size,
    emit,
    local_location,
    progress_for,
    registry_options,
    report_transfer,
)

if TYPE_CHECKING:
    from ocipush.ops.convert import Conversion
    from ocipush.registry.options import RegistryOptions

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: Any) -> None:
    def command(name: str, handler: Handler, help_text: str, transfers: bool = False) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(handler=handler)
        add_registry_arguments(parser, transfers)
        return parser

    push = command("push", _push, "push an image from an OCI layout or docker archive to a registry", True)
    push.add_argument(
        "source", help="oci:DIR[:tag], oci-archive:FILE[:tag], docker-archive:FILE[:ref], or a directory / tarball path"
    )
    push.add_argument("target", help="registry reference, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1")
    push.add_argument("--tag", "-t", action="append", default=[], help="also tag the image with TAG (repeatable)")
    push.add_argument("--referrers", action="store_true", help="also push the referrers the layout holds for it")
    _add_sign(push)
    _add_create_repo(push)
    add_conversion_arguments(push)

    pull = command("pull", _pull, "pull an image to an OCI layout, a docker archive or a root filesystem", True)
    pull.add_argument("source", help="registry reference (or oci:/oci-archive:/docker-archive: location)")
    pull.add_argument(
        "target", help="oci:DIR[:tag], oci-archive:FILE[:tag], docker-archive:FILE[:ref], or a path (see --format)"
    )
    pull.add_argument(
        "--format", choices=("oci", "oci-archive", "docker-archive", "rootfs"), default="oci", help="for a plain path"
    )
    pull.add_argument("--platform", help="os/arch[/variant] to take from an index (default: this machine's)")
    pull.add_argument("--all-platforms", action="store_true", help="keep the whole index (oci and oci-archive only)")
    pull.add_argument("--no-devices", action="store_true",
                      help="rootfs: refuse device nodes and fifos (created by default when running as root; "
                      "without root, device nodes are always refused)")  # fmt: skip
    pull.add_argument("--referrers", action="store_true",
                      help="keep its signatures, SBOMs and other referrers (oci format only)")  # fmt: skip
    pull.add_argument("--max-size", type=byte_size, metavar="SIZE",
                      help="rootfs: refuse to unpack files holding more than SIZE bytes in all (suffix K, M, G, T: "
                      "powers of 1024), a guard against layers that expand enormously")  # fmt: skip

    copy = command("copy", _copy, "copy an image between registries (or any two locations), streaming blobs", True)
    copy.add_argument("source", help="what to copy: a registry reference, oci:DIR[:tag] or docker-archive:FILE[:ref]")
    copy.add_argument("target", help="where to copy it: a registry reference, oci:DIR[:tag] or docker-archive:FILE")
    copy.add_argument("--tag", "-t", action="append", default=[], help="also tag the copy with TAG")
    copy.add_argument("--platform", help="copy only this platform's image from an index (default: all)")
    copy.add_argument("--no-referrers", dest="referrers", action="store_false",
                      help="leave signatures, SBOMs and other referrers behind (default: copied)")  # fmt: skip
    _add_sign(copy)
    _add_create_repo(copy)
    add_conversion_arguments(copy)

    delete = command("delete", _delete, "delete the manifest a tag or digest names")
    delete.add_argument("reference")


def add_conversion_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("conversion (the converted image has new digests)")
    group.add_argument("--compression", choices=("gzip", "zstd", "keep"),
                       help="recompress the layers; keep: as they are (default: keep, except that a docker "
                       "archive's plain layers are gzip-compressed)")  # fmt: skip
    group.add_argument("--format", dest="manifest_format", choices=("oci", "docker"),
                       help="write OCI or Docker v2.2 manifests (default: as the source has them)")  # fmt: skip


def conversion_from_args(args: argparse.Namespace) -> Conversion | None:
    """The conversion asked for; None when no flag was given, so that the library's default applies."""
    if args.compression is None and args.manifest_format is None:
        return None  # before the import: the converter brings the models and decompressors, a push needs neither
    from ocipush.ops.convert import Conversion

    return Conversion(args.compression or "keep", args.manifest_format)


def _add_sign(parser: argparse.ArgumentParser) -> None:
    from ocipush.cli.sign import add_sign_arguments

    add_sign_arguments(parser)


def _add_create_repo(parser: argparse.ArgumentParser) -> None:
    from ocipush.cli.ecr import add_create_repo_arguments

    add_create_repo_arguments(parser)


def create_repository_callback(
    args: argparse.Namespace, target: str, options: RegistryOptions
) -> Callable[[], bool] | None:
    """For --create-repo on ECR: a callback that creates the missing repository when the registry says so."""
    if not getattr(args, "create_repo", False):
        return None
    from ocipush.cli.ecr import repository_options_from_args
    from ocipush.ecr_admin.repositories import create_missing_repository

    return create_missing_repository(target, repository_options_from_args(args), options.aws_profile)


def _push(args: argparse.Namespace) -> int:
    return _copy_to(args, "pushed", local_location(args.source), platform=None)


def _copy(args: argparse.Namespace) -> int:
    # A docker archive cannot hold referrers: there, the default quietly means "none".
    args.referrers = args.referrers and not args.target.startswith("docker-archive:")
    return _copy_to(args, "copied", args.source, platform=args.platform)


def _copy_to(args: argparse.Namespace, verb: str, source: str, platform: str | None) -> int:
    from ocipush import api
    from ocipush.errors import UsageError
    from ocipush.reference import Reference, parse_location

    if args.sign_key and not isinstance(parse_location(args.target), Reference):
        raise UsageError("--sign-key signs in a registry: the target must be a registry reference")
    options = registry_options(args)
    progress, printer = progress_for(args)
    try:
        result = api.copy(
            source,
            args.target,
            tags=args.tag,
            platform=platform,
            options=options,
            progress=progress,
            create_repository=create_repository_callback(args, args.target, options),
            conversion=conversion_from_args(args),
            referrers=args.referrers,
        )
    finally:
        printer.finish()
    from ocipush.cli.sign import sign_pushed

    sign_pushed(args, args.target, result.digest, options)
    return report_transfer(args, verb, args.target, result)


def _pull(args: argparse.Namespace) -> int:
    from ocipush import api
    from ocipush.reference import has_prefix

    options = registry_options(args)
    progress, printer = progress_for(args)
    target = args.target
    try:
        if args.format == "rootfs" and not has_prefix(target):
            result = api.pull_rootfs(
                args.source,
                target,
                platform=args.platform,
                allow_devices=False if args.no_devices else None,
                max_size=args.max_size,
                options=options,
                progress=progress,
            )
        else:
            if not has_prefix(target):  # an unknown `word:` is refused by the parser, never made a path
                target = f"{args.format}:{target}"
            result = api.pull(
                args.source,
                target,
                platform=args.platform,
                all_platforms=args.all_platforms,
                options=options,
                progress=progress,
                referrers=args.referrers,
            )
    finally:
        printer.finish()
    return report_transfer(args, "pulled", target, result)


def _delete(args: argparse.Namespace) -> int:
    from ocipush import api

    digest = api.delete(args.reference, options=registry_options(args))
    emit(args, {"deleted": digest}, digest if args.quiet else f"deleted {digest}")
    return 0
