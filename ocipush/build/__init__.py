"""The daemonless, reproducible image builder: directories and tarballs + a base image -> an OCI image.

Entry points: `build_image(spec, store, tag)` and, for command lines, `add_build_arguments(parser)` with
`spec_from_args(args)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocipush.lazy import lazy_attributes

if TYPE_CHECKING:
    from ocipush.build.args import add_build_arguments, spec_from_args
    from ocipush.build.image import BuildResult, build_image, previous_manifests
    from ocipush.build.spec import BuildSpec, LayerSpec

# Loaded on first use: the CLI registers the build flags without paying for the settings and the pipeline.
_HOME = {
    "add_build_arguments": "ocipush.build.args",
    "spec_from_args": "ocipush.build.args",
    "BuildResult": "ocipush.build.image",
    "build_image": "ocipush.build.image",
    "previous_manifests": "ocipush.build.image",
    "BuildSpec": "ocipush.build.spec",
    "LayerSpec": "ocipush.build.spec",
}

__all__ = [
    "BuildResult",
    "BuildSpec",
    "LayerSpec",
    "add_build_arguments",
    "build_image",
    "previous_manifests",
    "spec_from_args",
]


__getattr__ = lazy_attributes(__name__, _HOME)
