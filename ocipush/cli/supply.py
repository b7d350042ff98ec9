"""`ocipush referrers | attach | sbom`: what is attached to an image, attaching more, fetching its SBOM."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from ocipush.cli.common import add_registry_arguments, emit, registry_options
from ocipush.errors import UsageError

if TYPE_CHECKING:
    from ocipush.referrers import Referrer


def register(subparsers: Any) -> None:
    referrers = subparsers.add_parser(
        "referrers",
        help="list the referrers of an image (signatures, SBOMs, attestations) and cosign's tag-scheme objects",
        description="List the manifests attached to REF: the OCI 1.1 referrers API where the registry serves it, "
        "else the referrers tag schema (sha256-<hex> index); cosign's .sig/.att/.sbom tags too.",
    )
    referrers.add_argument("reference")
    referrers.add_argument("--artifact-type", metavar="TYPE", help="only referrers of this artifact type")
    referrers.add_argument("--tree", action="store_true", help="also the referrers of each referrer, recursively")
    add_registry_arguments(referrers)
    referrers.set_defaults(handler=_referrers)

    attach = subparsers.add_parser(
        "attach",
        help="attach files to an image as an OCI 1.1 referrer artifact",
        description="Push FILEs as an artifact whose subject is REF (empty config, --artifact-type). A registry "
        "without the referrers API gets the referrers tag index (sha256-<hex>) updated.",
    )
    attach.add_argument("reference")
    attach.add_argument("files", nargs="+", metavar="FILE[:MEDIATYPE]")
    attach.add_argument("--artifact-type", required=True, metavar="TYPE", help="e.g. application/spdx+json")
    attach.add_argument("--annotation", "-a", action="append", default=[], metavar="K=V", help="manifest annotation")
    attach.add_argument("--platform", help="attach to this platform's manifest of an index (ECR refuses an index)")
    add_registry_arguments(attach)
    attach.set_defaults(handler=_attach)

    sbom = subparsers.add_parser(
        "sbom",
        help="print the SPDX SBOM attached to an image (by build-push --sbom, attach, or cosign)",
        description="Fetch the SPDX JSON SBOM attached to REF as a referrer (artifactType application/spdx+json), "
        "or cosign's .sbom object, and print it (or write it with --output).",
    )
    sbom.add_argument("reference")
    sbom.add_argument("--platform", help="the SBOM of this platform's manifest of an index")
    sbom.add_argument("--output", "-o", metavar="FILE", help="write it to FILE instead of standard output")
    add_registry_arguments(sbom)
    sbom.set_defaults(handler=_sbom)


def key_values(items: list[str], flag: str) -> dict[str, str]:
    """`K=V` arguments as a dict; a missing `=` is a usage error."""
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE")
        found[key] = value
    return found


def _tree_lines(found: list[Referrer], depth: int = 0) -> list[str]:
    lines = []
    for referrer in found:
        d = referrer.descriptor
        kind = d.artifact_type or referrer.tag or d.media_type
        lines.append(f"{'  ' * depth}{d.digest}  {kind}  ({referrer.via})")
        lines.extend(_tree_lines(referrer.children, depth + 1))
    return lines


def _referrers(args: argparse.Namespace) -> int:
    from ocipush import supply

    found = supply.list_referrers(
        args.reference, artifact_type=args.artifact_type, recursive=args.tree, options=registry_options(args)
    )
    data = {"reference": args.reference, "referrers": [r.to_dict() for r in found]}
    if args.json:
        print(json.dumps(data, indent=2))
    elif args.quiet:
        print("\n".join(r.descriptor.digest for r in found))
    else:
        print("\n".join(_tree_lines(found)) or "no referrers")
    return 0


def _attach(args: argparse.Namespace) -> int:
    from ocipush import supply
    from ocipush.artifact import parse_file_argument

    result = supply.attach(
        args.reference,
        args.artifact_type,
        [parse_file_argument(f) for f in args.files],
        annotations=key_values(args.annotation, "--annotation"),
        platform=args.platform,
        options=registry_options(args),
    )
    data = {"reference": args.reference, "digest": result.digest, "artifactType": args.artifact_type}
    emit(args, data, result.digest if args.quiet else f"attached {result.digest} to {args.reference}")
    return 0


def _sbom(args: argparse.Namespace) -> int:
    import sys

    from ocipush import supply
    from ocipush.fsutil import atomic_write_bytes

    document = supply.sbom(args.reference, platform=args.platform, options=registry_options(args))
    if args.output:
        atomic_write_bytes(args.output, document)
    else:
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
    return 0
