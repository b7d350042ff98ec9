"""The daemonless, reproducible image builder: directories and tarballs + a base image -> an OCI image.

Entry points: `build_image(spec, store, tag)` and, for command lines, `add_build_arguments(parser)` with
`spec_from_args(args)`."""

from __future__ import annotations

from ocipush.build.args import add_build_arguments, spec_from_args
from ocipush.build.image import BuildResult, build_image, previous_manifests
from ocipush.build.spec import BuildSpec, LayerSpec

__all__ = [
    "BuildResult",
    "BuildSpec",
    "LayerSpec",
    "add_build_arguments",
    "build_image",
    "previous_manifests",
    "spec_from_args",
]
