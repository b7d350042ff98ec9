"""The `ocipush` command line: parse arguments, call the library, render progress, map errors to exit codes.

Each module in COMMAND_MODULES has `register(subparsers)` adding its sub-commands, each with
`set_defaults(handler=FUNCTION)` where FUNCTION(args) -> int. Heavy imports happen inside the handlers."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ocipush import __version__

COMMAND_MODULES = (
    "ocipush.cli.transfer",
    "ocipush.cli.build",
    "ocipush.cli.buildpush",
    "ocipush.cli.ecr",
    "ocipush.cli.demo",
)

EXIT_CODES_HELP = """exit codes:
  0 success          2 bad input or usage   3 not found        4 authentication or permission
  5 registry error   6 network failure      7 digest mismatch  8 unsafe archive
  9 bad local layout 10 AWS API error       1 other error      130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocipush",
        description="Daemonless OCI registry client: push, pull, copy and build images; manage Amazon ECR.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ocipush {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from ocipush.errors import OcipushError

    try:
        code: int = args.handler(args)
        return code
    except OcipushError as exc:
        print(f"ocipush: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ocipush: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:
        # Local I/O problems (permission denied, disk full) are the user's to fix: one line, no traceback.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"ocipush: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
