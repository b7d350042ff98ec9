"""`dataclasses` without `inspect` at start-up.

`dataclasses` imports `inspect`, which brings `ast`, `dis`, `tokenize` and `linecache` (~8 ms: a sixth of
`ocipush tags`), and uses it only to write a docstring for a dataclass that has none. CPython 3.15 defers that import
(gh-137855); for the versions before it, the command line imports `dataclasses` with a stand-in for `inspect` that
loads the real module when first used. The stand-in is in `sys.modules` only during that import: every other
`import inspect` gets the real module."""

from __future__ import annotations

import sys
import types
from importlib import import_module


class _LoadedOnUse(types.ModuleType):
    """Stands in for a module until an attribute is asked for; then imports it and answers from it."""

    def __getattr__(self, name: str) -> object:
        real = import_module(self.__name__)
        holder = sys.modules.get("dataclasses")
        if holder is not None and getattr(holder, self.__name__, None) is self:
            setattr(holder, self.__name__, real)  # later uses skip the stand-in
        return getattr(real, name)


def import_dataclasses_without_inspect() -> None:
    """Import `dataclasses` now, leaving `inspect` to its first use (nothing to do when either is loaded)."""
    if "dataclasses" in sys.modules or "inspect" in sys.modules:
        return
    stand_in = _LoadedOnUse("inspect")
    sys.modules["inspect"] = stand_in
    try:
        import_module("dataclasses")
    finally:
        if sys.modules.get("inspect") is stand_in:
            del sys.modules["inspect"]
