"""Where the CLI sends the library's log: stderr, warnings (retries) always, `-v` adds each step, `--debug` every
request with its status. URLs are cut to host and path, so no presigned query string is ever shown."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

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
    logging is as it was (main() may run again in the same process, as tests and embedding programs do)."""
    import logging  # here, not at the top: `ocipush --help` never needs it

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_redacting_filter)
    if debug:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("ocipush: %(level)s: %(message)s"))
    logger = logging.getLogger("ocipush")
    saved = logger.level
    logger.addHandler(handler)  # records still propagate: a program embedding main() keeps its own handlers
    logger.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)
