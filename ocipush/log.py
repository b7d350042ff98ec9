"""The library's loggers, all under "ocipush": silent unless the application configures logging (a NullHandler
sits on "ocipush"), and URL redaction, so that no presigned query string or user:password reaches a log.

The library's loggers (`get_logger`, which every module uses) load `logging` only when a record could go
somewhere. Until something imports `logging`, nothing can have configured it, and the NullHandler would drop
every record: so those calls are skipped, and a short command never pays for the import. An application that
shows records as they come without importing `logging` first (the CLI without -v) names what sets it up with
`set_up_on_warning`."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable

from ocipush.lazy import Pattern

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    import logging
    from typing import Any

DEBUG, INFO, WARNING = 10, 20, 30  # logging's levels, without importing it

# A URL: scheme, user:password@ (dropped), host and path (kept), query string or fragment (presigned S3 and
# CloudFront URLs carry signatures there: replaced by "?…").
_URL = Pattern(r"([a-z][a-z0-9+.-]*://)(?:[^/@\s\"'<>]*@)?([^\s?#\"'<>]*)([?#][^\s\"'<>]*)?", re.I)

_set_up: Callable[[], None] | None = None
_set_up_lock = threading.Lock()  # two threads warning at once set logging up once


def set_up_on_warning(set_up: Callable[[], None] | None) -> None:
    """Call `set_up` (which imports and configures `logging`) before the first record at WARNING or above is
    logged; None withdraws it."""
    global _set_up
    _set_up = set_up


def _run_set_up() -> None:
    """Run the set-up named by `set_up_on_warning`, once."""
    global _set_up
    with _set_up_lock:
        set_up, _set_up = _set_up, None
        if set_up is not None:
            set_up()


def _library_root() -> logging.Logger:
    import logging

    root = logging.getLogger("ocipush")
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())
    return root


class Logger:
    """A module's logger; see the module's docstring for when it loads `logging`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: logging.Logger | None = None

    def _target(self, level: int) -> logging.Logger | None:
        if level >= WARNING and _set_up is not None:
            _run_set_up()  # even if something else loaded logging meanwhile (concurrent.futures does)
        if self._logger is None:
            if "logging" not in sys.modules:
                return None  # nobody configured logging: the record would be dropped
            _library_root()
            self._logger = sys.modules["logging"].getLogger(self.name)
        return self._logger

    def isEnabledFor(self, level: int) -> bool:
        target = self._target(level)
        return target is not None and target.isEnabledFor(level)

    def log(self, level: int, message: str, *args: Any) -> None:
        target = self._target(level)
        if target is not None:
            target.log(level, message, *args)

    def debug(self, message: str, *args: Any) -> None:
        self.log(DEBUG, message, *args)

    def info(self, message: str, *args: Any) -> None:
        self.log(INFO, message, *args)

    def warning(self, message: str, *args: Any) -> None:
        self.log(WARNING, message, *args)


def get_logger(name: str) -> Logger:
    """The logger of module `name` (pass `__name__`)."""
    return Logger(name)


def redact(text: str) -> str:
    """`text` with every URL cut to scheme, host and path."""
    return _URL.sub(lambda m: m.group(1) + m.group(2) + ("?…" if m.group(3) else ""), text)
