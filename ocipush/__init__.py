"""ocipush: a daemonless OCI registry client (push, pull, copy, build) tuned for Amazon ECR.

The public API is imported lazily so that `import ocipush` stays fast (no models or boto3 until used)."""

from __future__ import annotations

from ocipush.lazy import lazy_attributes

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:  # type checkers see the real, typed functions; at run time they load on first use
    from ocipush.api import (
        Inspection,
        build_push,
        build_to,
        catalog,
        copy,
        delete,
        fetch_manifest,
        inspect,
        lambda_check,
        list_tags,
        login,
        logout,
        pull,
        pull_rootfs,
        push,
        resolve_digest,
    )
    from ocipush.build import BuildResult, BuildSpec
    from ocipush.errors import (
        AuthError,
        AwsError,
        BuildError,
        DigestMismatchError,
        InvalidManifestError,
        InvalidReferenceError,
        LayoutError,
        NotFoundError,
        OcipushError,
        RegistryError,
        TransportError,
        UnsafeArchiveError,
        UsageError,
    )
    from ocipush.locations import ArchiveLocation, LayoutLocation, OciArchiveLocation
    from ocipush.models import Platform
    from ocipush.ops.convert import Conversion
    from ocipush.ops.files import cat, get_blob
    from ocipush.ops.flatten import export, flatten
    from ocipush.ops.index import append_index, create_index, filter_index, remove_from_index
    from ocipush.ops.mutate import mutate
    from ocipush.ops.rebase import rebase
    from ocipush.ops.tags import tag, untag
    from ocipush.progress import ProgressEvent
    from ocipush.reference import Reference
    from ocipush.registry.options import RegistryOptions
    from ocipush.supply import attach, generate_key_pair, list_referrers, sbom, sign_image, verify_image
    from ocipush.sync.report import SyncReport
    from ocipush.sync.run import sync
    from ocipush.sync.spec import SyncSpec
    from ocipush.transfer import TransferResult

__version__ = "0.1.0"

_API = {
    "push": "ocipush.api",
    "pull": "ocipush.api",
    "copy": "ocipush.api",
    "delete": "ocipush.api",
    "list_tags": "ocipush.query",
    "catalog": "ocipush.query",
    "inspect": "ocipush.query",
    "lambda_check": "ocipush.api",
    "resolve_digest": "ocipush.query",
    "pull_rootfs": "ocipush.api",
    "build_push": "ocipush.api",
    "build_to": "ocipush.api",
    "fetch_manifest": "ocipush.query",
    "login": "ocipush.api",
    "logout": "ocipush.api",
    "RegistryOptions": "ocipush.registry.options",
    # result, event and value types
    "TransferResult": "ocipush.transfer",
    "Inspection": "ocipush.query",
    "BuildResult": "ocipush.build",
    "BuildSpec": "ocipush.build",
    "ProgressEvent": "ocipush.progress",
    "Platform": "ocipush.models",
    "Reference": "ocipush.reference",
    "LayoutLocation": "ocipush.locations",
    "ArchiveLocation": "ocipush.locations",
    "OciArchiveLocation": "ocipush.locations",
    # errors
    "OcipushError": "ocipush.errors",
    "UsageError": "ocipush.errors",
    "InvalidReferenceError": "ocipush.errors",
    "NotFoundError": "ocipush.errors",
    "AuthError": "ocipush.errors",
    "RegistryError": "ocipush.errors",
    "InvalidManifestError": "ocipush.errors",
    "TransportError": "ocipush.errors",
    "DigestMismatchError": "ocipush.errors",
    "UnsafeArchiveError": "ocipush.errors",
    "LayoutError": "ocipush.errors",
    "BuildError": "ocipush.errors",
    "AwsError": "ocipush.errors",
    # image operations
    "Conversion": "ocipush.ops.convert",
    "create_index": "ocipush.ops.index",
    "append_index": "ocipush.ops.index",
    "filter_index": "ocipush.ops.index",
    "remove_from_index": "ocipush.ops.index",
    "tag": "ocipush.ops.tags",
    "untag": "ocipush.ops.tags",
    "mutate": "ocipush.ops.mutate",
    "rebase": "ocipush.ops.rebase",
    "flatten": "ocipush.ops.flatten",
    "export": "ocipush.ops.flatten",
    "cat": "ocipush.ops.files",
    "get_blob": "ocipush.ops.files",
    "list_referrers": "ocipush.supply",
    "attach": "ocipush.supply",
    "sign_image": "ocipush.supply",
    "sbom": "ocipush.supply",
    "verify_image": "ocipush.supply",
    "generate_key_pair": "ocipush.supply",
    "sync": "ocipush.sync.run",
    "SyncSpec": "ocipush.sync.spec",
    "SyncReport": "ocipush.sync.report",
}

__all__ = [
    "ArchiveLocation",
    "AuthError",
    "AwsError",
    "BuildError",
    "BuildResult",
    "BuildSpec",
    "Conversion",
    "DigestMismatchError",
    "Inspection",
    "InvalidManifestError",
    "InvalidReferenceError",
    "LayoutError",
    "LayoutLocation",
    "NotFoundError",
    "OciArchiveLocation",
    "OcipushError",
    "Platform",
    "ProgressEvent",
    "Reference",
    "RegistryError",
    "RegistryOptions",
    "SyncReport",
    "SyncSpec",
    "TransferResult",
    "TransportError",
    "UnsafeArchiveError",
    "UsageError",
    "__version__",
    "append_index",
    "attach",
    "build_push",
    "build_to",
    "cat",
    "catalog",
    "copy",
    "create_index",
    "delete",
    "export",
    "fetch_manifest",
    "filter_index",
    "flatten",
    "generate_key_pair",
    "get_blob",
    "inspect",
    "lambda_check",
    "list_referrers",
    "list_tags",
    "login",
    "logout",
    "mutate",
    "pull",
    "pull_rootfs",
    "push",
    "rebase",
    "remove_from_index",
    "resolve_digest",
    "sbom",
    "sign_image",
    "sync",
    "tag",
    "untag",
    "verify_image",
]


__getattr__ = lazy_attributes(__name__, _API)


def __dir__() -> list[str]:
    """Completion (and `dir(ocipush)`) sees the lazily loaded names too."""
    return sorted({*globals(), *__all__})
