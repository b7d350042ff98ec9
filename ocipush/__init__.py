"""ocipush: a daemonless OCI registry client (push, pull, copy, build) tuned for Amazon ECR.

The public API is imported lazily so that `import ocipush` stays fast (no httpx, pydantic or boto3 until used)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocipush.lazy import lazy_attributes

if TYPE_CHECKING:  # type checkers see the real, typed functions; at run time they load on first use
    from ocipush.api import (
        build_push,
        build_to,
        catalog,
        copy,
        delete,
        fetch_manifest,
        inspect,
        lambda_check,
        list_tags,
        pull,
        pull_rootfs,
        push,
        resolve_digest,
    )
    from ocipush.errors import OcipushError
    from ocipush.registry.options import RegistryOptions
    from ocipush.sync.report import SyncReport
    from ocipush.sync.run import sync
    from ocipush.sync.spec import SyncSpec

__version__ = "0.1.0"

_API = {
    "push": "ocipush.api",
    "pull": "ocipush.api",
    "copy": "ocipush.api",
    "delete": "ocipush.api",
    "list_tags": "ocipush.api",
    "catalog": "ocipush.api",
    "inspect": "ocipush.api",
    "lambda_check": "ocipush.api",
    "resolve_digest": "ocipush.api",
    "pull_rootfs": "ocipush.api",
    "build_push": "ocipush.api",
    "build_to": "ocipush.api",
    "fetch_manifest": "ocipush.api",
    "RegistryOptions": "ocipush.registry.options",
    "OcipushError": "ocipush.errors",
    "sync": "ocipush.sync.run",
    "SyncSpec": "ocipush.sync.spec",
    "SyncReport": "ocipush.sync.report",
}

__all__ = [
    "OcipushError",
    "RegistryOptions",
    "SyncReport",
    "SyncSpec",
    "__version__",
    "build_push",
    "build_to",
    "catalog",
    "copy",
    "delete",
    "fetch_manifest",
    "inspect",
    "lambda_check",
    "list_tags",
    "pull",
    "pull_rootfs",
    "push",
    "resolve_digest",
    "sync",
]


__getattr__ = lazy_attributes(__name__, _API)
