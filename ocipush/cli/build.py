"""`ocipush build`: build an image from directories and tarballs into an OCI layout or a docker archive."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ocipush.cli.common import add_registry_arguments
from ocipush.errors import UsageError

if TYPE_CHECKING:
    from ocipush.build import BuildResult


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ocipush.build.args import add_build_arguments

    parser = subparsers.add_parser(
        "build",
        help="build an image from directories (no daemon), reproducibly",
        description="Build an image from directories and tarballs on top of a base image, without a daemon. "
        "The same inputs give the same digests (SOURCE_DATE_EPOCH sets every timestamp).",
    )
    parser.add_argument("--output", "-o", required=True, metavar="oci:DIR[:tag]|docker-archive:FILE[:ref]",
                        help="where the image goes")  # fmt: skip
    parser.add_argument("--no-base-layers", action="store_true",
                        help="oci: output only: leave a registry base's layers out of the layout (they are not "
                        "downloaded; a push of the layout mounts or streams them from the base's registry)")
    add_registry_arguments(parser)
    parser.add_argument("--sbom", action="store_true",
                        help="oci: output only: keep an SPDX 2.3 SBOM of the built layers, as a referrer")  # fmt: skip
    add_build_arguments(parser)
    parser.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace) -> int:
    from ocipush import api
    from ocipush.build import spec_from_args
    from ocipush.cli.common import registry_options
    from ocipush.locations import LayoutLocation
    from ocipush.reference import parse_location

    spec = spec_from_args(args)
    output = parse_location(args.output, default_tag=None)
    if args.sbom and not isinstance(output, LayoutLocation):
        raise UsageError("--sbom: only an oci: layout can hold the SBOM (a referrer); build to oci:DIR")
    if not args.output.startswith(("oci:", "docker-archive:")):
        raise UsageError(f"--output {args.output}: build writes oci:DIR[:tag] or docker-archive:FILE; "
                         "use build-push for a registry")  # fmt: skip
    # The build's warnings reach stderr through the log (ocipush: warning: …), as build-push's do.
    result = api.build_to(spec, args.output, base_layers=not args.no_base_layers, options=registry_options(args))
    if args.sbom and isinstance(output, LayoutLocation):
        from ocipush.layout import OCILayout
        from ocipush.supply import add_sboms_to_layout

        for digest in add_sboms_to_layout(OCILayout(output.path), result, spec.source_date_epoch):
            print(f"sbom {digest}", file=sys.stderr)
    if args.json:
        data = {"output": args.output, "digest": result.descriptor.digest, "mediaType": result.descriptor.media_type,
                "size": result.descriptor.size, "layers": layers_json(result)}  # fmt: skip
        print(json.dumps(data, indent=2))
        return 0
    if args.quiet:
        print(result.descriptor.digest)
        return 0
    for layer in result.layers:
        state = "reused" if layer.reused else "built "
        print(f"{state} {layer.digest} {layer.size:>12,} B  {layer.dest}", file=sys.stderr)
    print(f"{result.descriptor.digest} -> {args.output}")
    return 0


def layers_json(result: BuildResult) -> list[dict[str, Any]]:
    """The layers of a build as `build --json` and `build-push --json` list them."""
    return [{"digest": x.digest, "diffId": x.diff_id, "size": x.size, "reused": x.reused, "dest": x.dest}
            for x in result.layers]  # fmt: skip
