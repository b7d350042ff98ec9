"""`ocipush build`: build an image from directories and tarballs into an OCI layout or a docker archive."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ocipush.errors import UsageError

if TYPE_CHECKING:
    from ocipush.build import BuildResult
    from ocipush.layout import OCILayout


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ocipush.build.args import add_build_arguments

    parser = subparsers.add_parser(
        "build",
        help="build an image from directories (no daemon), reproducibly",
        description="Build an image from directories and tarballs on top of a base image, without a daemon. "
        "The same inputs give the same digests (SOURCE_DATE_EPOCH sets every timestamp).",
    )
    parser.add_argument("--output", "-o", required=True, metavar="oci:DIR[:tag]|docker-archive:FILE[:ref]",
                        help="where the image goes")  # fmt: skip
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the digest")
    add_build_arguments(parser)
    parser.set_defaults(handler=run_build)


@contextlib.contextmanager
def _output_layout(path: str) -> Iterator[str]:
    """The layout directory; one this command created is removed again when the build fails."""
    created = not os.path.exists(path)
    try:
        yield path
    except BaseException:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        raise


def _lambda_gate(wanted: bool, store: OCILayout, result: BuildResult) -> None:
    if wanted:
        from ocipush.api import check_built_for_lambda
        from ocipush.registry.options import RegistryOptions

        check_built_for_lambda(store, result, RegistryOptions.from_env())


def run_build(args: argparse.Namespace) -> int:
    from ocipush.build import build_image, previous_manifests, spec_from_args
    from ocipush.layout import OCILayout
    from ocipush.reference import ArchiveLocation, LayoutLocation, parse_location

    spec = spec_from_args(args)
    target = parse_location(args.output, default_tag=None)
    if isinstance(target, LayoutLocation):
        if target.digest:
            raise UsageError(f"--output {args.output}: name a tag, not a digest")
        with _output_layout(target.path) as path:
            store = OCILayout(path, create=True)
            result = build_image(spec, store, target.tag, previous=previous_manifests(store, target.tag))
            _lambda_gate(spec.lambda_check, store, result)
    elif isinstance(target, ArchiveLocation):
        from ocipush.archive import write_docker_archive

        with tempfile.TemporaryDirectory(prefix="ocipush-build-") as scratch:
            store = OCILayout(scratch, create=True)
            result = build_image(spec, store, None)
            _lambda_gate(spec.lambda_check, store, result)
            reference = str(target.reference) if target.reference else None
            write_docker_archive(store, result.descriptor, target.path, reference)
    else:
        raise UsageError(f"--output {args.output}: build writes oci:DIR[:tag] or docker-archive:FILE; "
                         "use build-push for a registry")  # fmt: skip
    if args.quiet:
        print(result.descriptor.digest)
        return 0
    for layer in result.layers:
        state = "reused" if layer.reused else "built "
        print(f"{state} {layer.digest} {layer.size:>12,} B  {layer.dest}", file=sys.stderr)
    print(f"{result.descriptor.digest} -> {args.output}")
    return 0
