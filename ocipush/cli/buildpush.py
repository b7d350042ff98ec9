"""`ocipush build-push`: build directories and tarballs onto a base image and push the result, no daemon."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ocipush.cli.build import layers_json
from ocipush.cli.common import add_registry_arguments, progress_for, registry_options, report_transfer


def register(subparsers: Any) -> None:
    from ocipush.build.args import add_build_arguments
    from ocipush.cli.ecr import add_create_repo_arguments

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "build-push",
        help="build an image from directories onto a base and push it (base layers are never stored)",
        description="Build directories (each a layer at /, or DIR:DEST) and tarballs onto --from BASE, "
        "reproducibly, and push the image to every --tag. Base layers are mounted or streamed registry to "
        "registry; unchanged layers are reused without compressing or uploading them again.",
    )
    parser.add_argument("directories", nargs="*", metavar="DIR[:DEST]", help="directories to add as layers")
    parser.add_argument("--tag", "-t", action="append", required=True, metavar="REF",
                        help="where to push: a full reference; more --tag values add tags (a bare TAG or a "
                        "full reference in the same repository)")  # fmt: skip
    add_build_arguments(parser)
    add_registry_arguments(parser)
    add_create_repo_arguments(parser)
    from ocipush.cli.sign import add_sign_arguments

    add_sign_arguments(parser)
    parser.add_argument("--sbom", action="store_true",
                        help="attach an SPDX 2.3 SBOM of the built layers (signed too with --sign-key)")  # fmt: skip
    parser.set_defaults(handler=run_build_push)


def run_build_push(args: argparse.Namespace) -> int:
    from ocipush import api
    from ocipush.build import spec_from_args
    from ocipush.cli.transfer import create_repository_callback
    from ocipush.errors import UsageError
    from ocipush.reference import parse_reference

    args.layer = list(args.directories) + list(args.layer)
    spec = spec_from_args(args)
    target = parse_reference(args.tag[0])
    extra_tags = []
    for text in args.tag[1:]:
        if "/" not in text and "@" not in text:
            extra_tags.append(text)
            continue
        other = parse_reference(text)
        if (other.registry, other.repository) != (target.registry, target.repository) or not other.tag:
            raise UsageError(f"--tag {text}: extra tags must be in {target.registry}/{target.repository}")
        extra_tags.append(other.tag)
    options = registry_options(args)
    progress, printer = progress_for(args)
    try:
        built, pushed = api.build_push(
            spec, target, tags=extra_tags, options=options, progress=progress,
            create_repository=create_repository_callback(args, str(target), options), sbom=args.sbom,
        )  # fmt: skip
    finally:
        printer.finish()
    for warning in built.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not args.quiet and not args.json:
        for layer in built.layers:
            state = "reused" if layer.reused else "built "
            print(f"{state} {layer.digest[:19]} {layer.size:>12,} B  {layer.dest}", file=sys.stderr)
    from ocipush.cli.sign import password_once, sign_pushed

    password = password_once()  # the images and each SBOM are signed with one key: one prompt
    # A multi-platform --lambda build pushes one image per architecture and no index: each one is signed.
    per_arch = spec.lambda_check and len(built.manifests) > 1
    images = [m.digest for m in built.manifests] if per_arch else [pushed.digest]
    for digest in [*images, *pushed.referrers]:
        sign_pushed(args, str(target), digest, options, password)
    return report_transfer(args, "pushed", str(target), pushed, {"layers": layers_json(built)})
