"""`ocipush sync`: mirror repositories and whole registries (spec, planner, executors, report).

`ocipush.sync(spec, …)` is the function in `ocipush.sync.run`; this package is also importable as
`ocipush.sync`, so the package itself is made callable: once any `ocipush.sync.*` module is imported, Python binds
the attribute `ocipush.sync` to this package, and `ocipush.sync(spec)` must still call the function."""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ocipush.sync.run import sync

        return sync(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
