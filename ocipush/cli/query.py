"""`ocipush tags | catalog | inspect | digest`: questions to a registry that move no blobs.

Apart from the transfer commands so that these, which scripts call in loops, register and import only what they
use (no transfer engine, signing or ECR flags)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from ocipush.cli.common import add_registry_arguments, emit, printable, registry_options

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from typing import Any


def register(subparsers: Any) -> None:
    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(handler=handler)
        add_registry_arguments(parser, transfers=False)
        return parser

    tags = command("tags", _tags, "list the tags of a repository")
    tags.add_argument("repository")

    catalog = command("catalog", _catalog, "list the repositories of a registry")
    catalog.add_argument("registry", help="registry host, e.g. localhost:5000")

    inspect = command("inspect", _inspect, "show the manifest, digest and config of an image")
    inspect.add_argument("reference")
    inspect.add_argument("--platform", help="pick this platform's image from an index")
    inspect.add_argument("--raw", action="store_true", help="print only the manifest bytes as served")
    inspect.add_argument("--config", action="store_true", help="print only the config")

    digest = command("digest", _digest, "print the digest of the manifest a reference names")
    digest.add_argument("reference")


def _tags(args: argparse.Namespace) -> int:
    from ocipush.query import list_tags

    tags = list_tags(args.repository, options=registry_options(args))
    emit(args, {"tags": tags}, "\n".join(map(printable, tags)))
    return 0


def _catalog(args: argparse.Namespace) -> int:
    from ocipush.query import catalog

    repositories = catalog(args.registry, options=registry_options(args))
    emit(args, {"repositories": repositories}, "\n".join(map(printable, repositories)))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from ocipush.query import inspect

    found = inspect(args.reference, platform=args.platform, options=registry_options(args))
    if args.config:
        if found.config is None:
            from ocipush.errors import UsageError
            from ocipush.mediatypes import INDEXES

            if found.media_type in INDEXES:
                raise UsageError(f"{args.reference} is an index, which has no config: pick an image with --platform")
            raise UsageError(f"{args.reference} has no JSON config ({found.media_type})")
        print(json.dumps(found.config, indent=2))
    elif args.raw:
        sys.stdout.buffer.write(found.raw)
        sys.stdout.flush()
    else:
        print(json.dumps(found.to_dict(), indent=2))
    return 0


def _digest(args: argparse.Namespace) -> int:
    from ocipush.query import resolve_digest

    digest = resolve_digest(args.reference, options=registry_options(args))
    emit(args, {"reference": args.reference, "digest": digest}, digest)
    return 0
