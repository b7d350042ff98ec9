"""`ocipush blob get | cat | export`: bytes out of an image in a registry, streamed to a file or stdout."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from ocipush.cli.common import add_registry_arguments, registry_options
from ocipush.errors import UsageError


def register(subparsers: Any) -> None:
    def command(parent: Any, name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(handler=handler)
        add_registry_arguments(parser)
        return parser

    blob = subparsers.add_parser("blob", help="read a blob of a repository", description="read blobs")
    blobs = blob.add_subparsers(dest="blob_command", metavar="SUBCOMMAND", required=True)
    get = command(blobs, "get", _blob_get, "write a blob (verified against its digest) to a file or stdout")
    get.add_argument("reference", help="the repository: REGISTRY/REPO (a tag or digest is ignored)")
    get.add_argument("digest")
    get.add_argument("--output", "-o", default="-", metavar="FILE|-", help="where to write (default stdout)")

    cat = command(subparsers, "cat", _cat, "print one file of an image, reading layers top-down")
    cat.add_argument("reference")
    cat.add_argument("path", help="the file's path in the image, e.g. /etc/os-release")
    cat.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="the image to take from an index")

    export = command(subparsers, "export", _export, "write an image's filesystem as one tar (whiteouts applied)")
    export.add_argument("reference")
    export.add_argument("--output", "-o", required=True, metavar="FILE|-", help="the tar file, or - for stdout")
    export.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="the image to take from an index")


@contextlib.contextmanager
def _output(path: str, binary_for: str) -> Iterator[BinaryIO]:
    """stdout for '-', else a file that appears only when everything was written (nothing half-written)."""
    if path == "-":
        if sys.stdout.isatty():
            raise UsageError(f"refusing to write {binary_for} to a terminal: use -o FILE or a pipe")
        yield sys.stdout.buffer
        sys.stdout.flush()
        return
    from ocipush.fsutil import atomic_writer

    with atomic_writer(path, durable=False) as out:
        yield out


def _blob_get(args: argparse.Namespace) -> int:
    from ocipush.ops.files import get_blob

    with _output(args.output, "a blob") as out:
        get_blob(args.reference, args.digest, out, options=registry_options(args))
    return 0


def _cat(args: argparse.Namespace) -> int:
    from ocipush.ops.files import cat

    cat(args.reference, args.path, sys.stdout.buffer, platform=args.platform, options=registry_options(args))
    sys.stdout.flush()
    return 0


def _export(args: argparse.Namespace) -> int:
    from ocipush.ops.flatten import export

    with _output(args.output, "a tar stream") as out:
        export(args.reference, out, platform=args.platform, options=registry_options(args))
    return 0
