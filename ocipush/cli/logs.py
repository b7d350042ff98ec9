"""Where the CLI sends the library's log: stderr, warnings (retries) always, `-v` adds each step, `--debug` every
request with its status. URLs are cut to host and path, so no presigned query string is ever shown."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    import logging


def _redacting_filter(record: logging.LogRecord) -> bool:
    from ocipush.log import redact

    record.msg, record.args = redact(record.getMessage()), None
    record.level = record.levelname.lower()
    return True


def add_logging_flags(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """-v and --debug on `parser` and every sub-command below it, so they work before or after the command. On
    sub-commands they default to SUPPRESS so that a flag given before the command survives."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                add_logging_flags(sub, top=False)
    group = parser.add_argument_group("logging") if not top else parser
    group.add_argument("--verbose", "-v", action="store_true", default=False if top else argparse.SUPPRESS,
                       help="log each step (auth, mounts, resumes, retries) to stderr")  # fmt: skip
    group.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                       help="also log every request and its status")  # fmt: skip


@contextlib.contextmanager
def logging_to_stderr(verbose: bool, debug: bool) -> Iterator[None]:
    """For the length of one command, the library's log goes to stderr; afterwards
    logging is as it was (main() may run again in the same process, as tests and embedding programs do).
    Without -v or --debug only warnings show: unless `logging` is loaded already, the handler is set up when the
    first one comes (ocipush.log), so that a command without any pays nothing for logging."""
    from ocipush import log

    undo: list[Callable[[], None]] = []

    def set_up() -> None:
        undo.append(_to_stderr(log.DEBUG if debug else log.INFO if verbose else log.WARNING))

    if verbose or debug or "logging" in sys.modules:
        set_up()
    else:
        log.set_up_on_warning(set_up)
    try:
        yield
    finally:
        log.set_up_on_warning(None)
        for step in undo:
            step()


def _to_stderr(level: int) -> Callable[[], None]:
    """Send the "ocipush" records at `level` and above to stderr; returns what undoes it."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_redacting_filter)
    if level == logging.DEBUG:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("ocipush: %(level)s: %(message)s"))
    logger = logging.getLogger("ocipush")
    saved = logger.level
    logger.addHandler(handler)  # records still propagate: a program embedding main() keeps its own handlers
    logger.setLevel(level)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(saved)

    return undo
