"""`ocipush demo`: the main job end to end on an embedded default. Starts a registry on 127.0.0.1, build-pushes the
example app onto a base image held in that registry, pulls the image back, and checks digests and files."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ocipush.errors import OcipushError, UsageError

DEFAULT_APP = os.path.join("examples", "app")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="build-push the example app to a registry started on 127.0.0.1, pull it back, verify"
    )
    parser.add_argument("--app", default=DEFAULT_APP, help=f"directory to build (default {DEFAULT_APP})")
    parser.set_defaults(handler=run_demo)


def _step(text: str) -> None:
    print(f"==> {text}", flush=True)


def run_demo(args: argparse.Namespace) -> int:
    import tempfile

    from ocipush import api
    from ocipush.build.spec import BuildSpec, LayerSpec
    from ocipush.localregistry import LocalRegistry
    from ocipush.registry.options import RegistryOptions

    app = os.path.abspath(args.app)
    if not os.path.isdir(app):
        raise UsageError(f"{args.app} is not a directory: run the demo from the repository root, or pass --app DIR")
    with tempfile.TemporaryDirectory(prefix="ocipush-demo-") as work, LocalRegistry() as registry:
        options = RegistryOptions(cache_dir=os.path.join(work, "cache"))
        _step(f"registry started at {registry.url}")
        base = f"{registry.host}/demo/base:1"
        base_spec = BuildSpec(layers=[LayerSpec(source=os.path.join(app, "static"), dest="/usr/share/base")])
        built_base, _ = api.build_push(base_spec, base, options=options)
        _step(f"base image pushed: {base}@{built_base.descriptor.digest}")

        target = f"{registry.host}/demo/app:v1"
        spec = BuildSpec(
            base=base, layers=[LayerSpec(source=app, dest="/app")], workdir="/app", entrypoint=["/app/bin/serve"],
            env={"PORT": "8080"}, expose=["8080/tcp"],
        )  # fmt: skip
        _, pushed = api.build_push(spec, target, tags=["latest"], options=options)
        summary = ", ".join(f"{outcome} {digest[:19]}" for digest, outcome in sorted(pushed.blobs.items()))
        _step(f"built and pushed {target}@{pushed.digest}  ({summary})")

        again, repushed = api.build_push(spec, target, options=options)
        reused = all(layer.reused for layer in again.layers)
        _step(f"rebuilt unchanged: same digest {repushed.digest == pushed.digest}, layers reused {reused}, "
              f"blobs uploaded {repushed.uploaded}")  # fmt: skip

        pulled = api.pull(target, f"oci:{os.path.join(work, 'pulled')}:v1", options=options)
        rootfs = os.path.join(work, "rootfs")
        api.pull_rootfs(target, rootfs, options=options)
        same_files = _same_tree(app, os.path.join(rootfs, "app"))
        _step(f"pulled back {pulled.digest}; files equal to {args.app}: {same_files}")
        if pulled.digest != pushed.digest or repushed.digest != pushed.digest or not same_files or not reused:
            raise OcipushError("demo failed: the pulled image differs from what was built")
    _step("demo passed")
    return 0


# What the example's .dockerignore keeps out of the image.
IGNORED = ["ocipush.toml", "__pycache__", ".venv"]


def _same_tree(left: str, right: str) -> bool:
    import filecmp

    comparison = filecmp.dircmp(left, right, ignore=IGNORED)
    if comparison.left_only or comparison.right_only or comparison.diff_files or comparison.funny_files:
        return False
    return all(_same_tree(os.path.join(left, d), os.path.join(right, d)) for d in comparison.common_dirs)
