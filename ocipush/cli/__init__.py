"""The `ocipush` command line: parse arguments, call the library, render progress, map errors to exit codes.

Each module named in COMMAND_HOMES has `register(subparsers)` adding its sub-commands, each with
`set_defaults(handler=FUNCTION)` where FUNCTION(args) -> int. Heavy imports happen inside the handlers."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from ocipush import __version__

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from typing import Any, NoReturn

EXIT_CODES_HELP = """exit codes:
  0 success          2 bad input or usage   3 not found        4 authentication or permission
  5 registry error   6 network failure      7 digest mismatch  8 unsafe archive
  9 bad local layout 10 AWS API error       11 a gate said no (lambda-check, verify, scan --fail-on)
  12 partly failed (some items of a batch)   1 other error      130 interrupted"""


class _Parser(argparse.ArgumentParser):
    """argparse, plus "did you mean" for a mistyped command (sub-command parsers are made of the same class)."""

    def error(self, message: str) -> NoReturn:
        import difflib
        import re

        found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if found:
            choices = [c.strip(" '") for c in found.group(2).split(",")]
            close = difflib.get_close_matches(found.group(1), choices, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        super().error(message)

    def _get_formatter(self) -> argparse.HelpFormatter:
        # Every add_argument makes a formatter, and argparse's own sizes it with shutil.get_terminal_size,
        # importing shutil (with bz2, lzma and fnmatch) in every run: the same width, from os alone.
        make_formatter: Callable[..., argparse.HelpFormatter] = self.formatter_class
        return make_formatter(prog=self.prog, width=_help_width())


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown: freeing every module and a last full garbage collection
    cost 8-15 ms of every command (an eighth of `tags`; of a push, as much as its first three requests).

    The exit handlers still run (logging's flush, temporary directories' finalizers): what is skipped only frees
    memory, as the library closes every file it writes with its block. Only as the process's own entry point;
    returns, leaving the regular exit to happen, while another thread runs or when output cannot be flushed."""
    if threading.active_count() > 1:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        return  # the regular exit reports it
    import atexit

    atexit._run_exitfuncs()
    with contextlib.suppress(OSError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _help_width() -> int:
    """What shutil.get_terminal_size().columns gives (COLUMNS, else the terminal's, else 80), less argparse's 2."""
    columns = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


# Which module registers which command, so that running one command loads only its module.
COMMAND_HOMES = {
    "push": "ocipush.cli.transfer",
    "pull": "ocipush.cli.transfer",
    "copy": "ocipush.cli.transfer",
    "delete": "ocipush.cli.transfer",
    "tags": "ocipush.cli.query",
    "catalog": "ocipush.cli.query",
    "inspect": "ocipush.cli.query",
    "digest": "ocipush.cli.query",
    "build": "ocipush.cli.build",
    "build-push": "ocipush.cli.buildpush",
    "login": "ocipush.cli.login",
    "logout": "ocipush.cli.login",
    "ecr": "ocipush.cli.ecr",
    "demo": "ocipush.cli.demo",
    "lambda-check": "ocipush.cli.lambdacheck",
    "index": "ocipush.cli.index",
    "tag": "ocipush.cli.ops",
    "untag": "ocipush.cli.ops",
    "mutate": "ocipush.cli.ops",
    "rebase": "ocipush.cli.ops",
    "flatten": "ocipush.cli.ops",
    "blob": "ocipush.cli.files",
    "cat": "ocipush.cli.files",
    "export": "ocipush.cli.files",
    "referrers": "ocipush.cli.supply",
    "attach": "ocipush.cli.supply",
    "sbom": "ocipush.cli.supply",
    "generate-key-pair": "ocipush.cli.sign",
    "sign": "ocipush.cli.sign",
    "verify": "ocipush.cli.sign",
    "sync": "ocipush.cli.sync",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMAND_HOMES.values()))


class _CommandSketch:
    """Stands in for each command's parser when the commands are only listed (`ocipush --help`, or no command): it
    takes every call a command module makes while registering and keeps nothing. The list needs only the commands'
    names and help lines, which argparse keeps outside their parsers; building the real ones (about 950 arguments,
    each parser looking its messages up through gettext) took a quarter of `--help`'s time."""

    _actions = ()  # nothing below it for add_logging_flags to visit

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __getattr__(self, name: str) -> type[_CommandSketch]:
        return _CommandSketch


def build_parser(only: str | None = None, *, listing: bool = False) -> argparse.ArgumentParser:
    """The parser with every command, or with just the module of command `only` (faster start-up). With `listing`,
    the commands are there to be listed and suggested, not parsed: the top-level help is the same."""
    parser = _Parser(
        prog="ocipush",
        description="Daemonless OCI registry client: push, pull, copy and build images; manage Amazon ECR.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ocipush {__version__}")
    parser_class: Any = _CommandSketch if listing else _Parser
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)
    for name in [only] if only else COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    from ocipush.cli.logs import add_logging_flags

    add_logging_flags(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), None)
    home = COMMAND_HOMES.get(command or "")
    parser = build_parser(home, listing=home is None)
    args = parser.parse_args(words)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from ocipush.cli.deferred import import_dataclasses_without_inspect

    import_dataclasses_without_inspect()  # before the library's modules, which define dataclasses
    from ocipush.cli.logs import logging_to_stderr
    from ocipush.errors import OcipushError

    _first_interrupt_unwinds()
    try:
        with logging_to_stderr(args.verbose, args.debug):
            code: int = args.handler(args)
        if argv is None:
            _exit_now(code)
        return code
    except OcipushError as exc:
        from ocipush.cli.advice import advice
        from ocipush.cli.common import printable

        # A message may quote a registry's own words: escaped so they cannot drive the terminal.
        return _fail(args, printable(f"{exc}{advice(args, exc)}"), exc.exit_code, exc)
    except KeyboardInterrupt:
        print("ocipush: interrupted (run the same command again to resume)", file=sys.stderr)
        sys.stderr.flush()
        # Worker threads may be in the middle of a request: leave now. Journals and layouts are written
        # atomically, so nothing is left half-done for the next run.
        os._exit(130)
    except BrokenPipeError:
        return 1
    except OSError as exc:
        # Local I/O problems (permission denied, disk full) are the user's to fix: one line, no traceback.
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(args, f"{exc.strerror or exc}{where}", 1, exc)
    except Exception as exc:
        # A network error that slipped past the transport's own mapping: still one line, never a traceback.
        from ocipush.registry.wire import WireError

        if not isinstance(exc, WireError):
            raise
        return _fail(args, f"network failure ({type(exc).__name__}: {exc})", 6, exc)


def _first_interrupt_unwinds() -> None:
    """The first Ctrl-C raises KeyboardInterrupt, so that the command stops its workers and says so; a second one
    (while that shutdown waits for requests in flight) leaves at once, never with a traceback."""

    def interrupted(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, _leave_now)
        raise KeyboardInterrupt

    # Not when SIGINT is ignored (nohup, a background job) or main() runs off the main thread (tests, embedders).
    if (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
        and threading.current_thread() is threading.main_thread()
    ):
        signal.signal(signal.SIGINT, interrupted)


def _leave_now(signum: int, frame: object) -> None:
    os.write(2, b"\nocipush: interrupted again: leaving now (run the same command again to resume)\n")
    os._exit(130)


def _fail(args: argparse.Namespace, message: str, code: int, exc: BaseException) -> int:
    """One line on stderr; under --json also an error object on stdout, so a script reading stdout sees it."""
    from ocipush.errors import CheckFailedError, OcipushError

    print(f"ocipush: error: {message}", file=sys.stderr)
    # A check that found problems has printed its report (with "ok": false) as the JSON result already.
    if getattr(args, "json", False) and not isinstance(exc, CheckFailedError):
        import json

        error: dict[str, object] = {"message": message, "type": type(exc).__name__, "exitCode": code}
        if isinstance(exc, OcipushError):  # the registry's error code, HTTP status and reference, when known
            error.update({k: v for k in ("code", "status", "reference") if (v := getattr(exc, k, None)) is not None})
        print(json.dumps({"error": error}, indent=2))
    return code
