"""Where the CLI sends the library's log: stderr, warnings (retries) always, `-v` adds each step, `--debug` every
request and httpx's own lines. URLs are cut to host and path, so no presigned query string is ever shown."""

from __future__ import annotations

import argparse
import sys
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
                       help="also log every request, and httpx's own lines")  # fmt: skip


def configure_logging(verbose: bool, debug: bool) -> None:
    import logging  # here, not at the top: `ocipush --help` never needs it

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_redacting_filter)
    if debug:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("ocipush: %(level)s: %(message)s"))
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    for name in ("ocipush", "httpx"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "ocipush_cli", False)]:
            logger.removeHandler(old)  # main() run again in one process (tests): one handler, today's stderr
        if name == "ocipush" or debug:
            logger.addHandler(handler)
            logger.setLevel(level if name == "ocipush" else logging.INFO)
            logger.propagate = False
    handler.ocipush_cli = True  # type: ignore[attr-defined]
