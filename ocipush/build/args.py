"""The build flags, shared by `ocipush build` and `ocipush build-push`, and their conversion to a BuildSpec."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocipush.build.spec import BuildSpec


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every build input flag (not the output) to `parser`."""
    group = parser.add_argument_group("build inputs")
    group.add_argument("--from", dest="base", metavar="BASE",
                       help="base image: a registry reference, oci:PATH[:tag], or scratch (default)")
    group.add_argument("--layer", action="append", default=[], metavar="DIR[:DEST]",
                       help="a directory's contents placed under DEST (default /), followed through the base's "
                       "symlinks; the base's directories keep their mode and owner; repeat for more layers")
    group.add_argument("--layer-tar", action="append", default=[], metavar="FILE",
                       help="an existing tar (plain, gzip or zstd) as a layer, taken as it is, after the --layer ones")
    add_config_arguments(group)
    group.add_argument("--platform", action="append", default=[], metavar="OS/ARCH[,...]",
                       help="platform(s) to build; several need a multi-platform base (or scratch)")
    group.add_argument("--chown", metavar="UID[:GID]",
                       help="owner of what the layers add (files, and directories they create; default 0:0)")
    group.add_argument("--ignore-file", metavar="FILE",
                       help=".dockerignore-syntax excludes (default: .dockerignore in each layer directory)")
    group.add_argument("--compression", choices=["gzip", "zstd", "none"], help="layer compression (gzip)")
    group.add_argument("--compression-level", type=int, metavar="N",
                       help="compression level (default 1: fast; isal gzip 0-3, zstd 1-22)")
    group.add_argument("--build-file", metavar="TOML",
                       help="build settings (default: ./ocipush.toml or [tool.ocipush] in ./pyproject.toml)")
    group.add_argument("--no-build-file", action="store_true", help="ignore ./ocipush.toml and pyproject.toml")
    group.add_argument("--no-cache", action="store_true", help="do not reuse layers from the local cache")
    group.add_argument("--verify", action="store_true",
                       help="read every file even when its size, times and inode say the layer is unchanged")
    python = parser.add_argument_group("python dependencies (wheels for each target platform, one layer)")
    python.add_argument("--requirements", action="append", default=[], metavar="FILE",
                        help="a pip requirements file; repeat for more")
    python.add_argument("--pyproject", metavar="FILE", help="install the [project] dependencies of this pyproject.toml")
    python.add_argument("--lock", metavar="FILE", help="install the packages pinned in this pylock.toml")
    python.add_argument("--python-version", metavar="X.Y",
                        help="target Python (default: from the base, e.g. PYTHON_VERSION or a Lambda base's tag)")
    python.add_argument("--libc", metavar="glibc[:X.Y]|musl[:X.Y]",
                        help="target C library for wheel tags (default glibc 2.28; Lambda bases: their own)")
    python.add_argument("--deps-dest", metavar="DIR",
                        help="where the dependencies go (default: the Lambda task root, else /opt/python on "
                        "PYTHONPATH)")
    python.add_argument("--index-url", metavar="URL", help="pip's --index-url")
    python.add_argument("--extra-index-url", action="append", default=[], metavar="URL", help="pip's --extra-index-url")
    python.add_argument("--find-links", action="append", default=[], metavar="DIR|URL", help="pip's --find-links")
    python.add_argument("--lambda", dest="lambda_check", action="store_true",
                        help="check what AWS Lambda requires of the image before writing or pushing it")


def add_config_arguments(group: argparse._ArgumentGroup) -> None:
    """The image-config flags (shared with `mutate`)."""
    group.add_argument("--entrypoint", metavar="CMD", help='entrypoint: a JSON array or a shell-like string')
    group.add_argument("--cmd", metavar="CMD", help="default arguments: a JSON array or a shell-like string")
    group.add_argument("--env", action="append", default=[], metavar="K=V", help="environment variable")
    group.add_argument("--workdir", metavar="DIR", help="working directory (absolute)")
    group.add_argument("--user", metavar="USER", help="user[:group] the container runs as")
    group.add_argument("--label", action="append", default=[], metavar="K=V", help="config label")
    group.add_argument("--expose", action="append", default=[], metavar="PORT[/PROTO]", help="exposed port")
    group.add_argument("--annotation", action="append", default=[], metavar="K=V", help="manifest annotation")


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """BuildSpec fields from the flags of `add_config_arguments` (None or empty where not given)."""
    from ocipush.build.spec import parse_command, parse_pair

    return {
        "entrypoint": parse_command(args.entrypoint) if args.entrypoint is not None else None,
        "cmd": parse_command(args.cmd) if args.cmd is not None else None,
        "env": dict(parse_pair(e, "--env") for e in args.env),
        "workdir": args.workdir,
        "user": args.user,
        "labels": dict(parse_pair(e, "--label") for e in args.label),
        "expose": args.expose,
        "annotations": dict(parse_pair(e, "--annotation") for e in args.annotation),
    }


def spec_from_args(args: argparse.Namespace) -> BuildSpec:
    """The BuildSpec of the build file (if any) overridden by the flags in `args`."""
    from ocipush.build.spec import (
        LayerSpec,
        find_build_file,
        load_build_file,
        make_spec,
        parse_chown,
        parse_layer,
        parse_platforms,
        source_date_epoch,
    )

    path = args.build_file or (None if args.no_build_file else find_build_file())
    file_fields = load_build_file(path) if path else {}
    layers: list[LayerSpec] = [parse_layer(text) for text in args.layer]
    layers += [LayerSpec(source=os.path.abspath(text), tar=True) for text in args.layer_tar]
    overrides: dict[str, Any] = {
        "base": args.base,
        "layers": [layer.model_copy(update={"source": os.path.abspath(layer.source)}) for layer in layers],
        **config_overrides(args),
        "platforms": parse_platforms(args.platform),
        "chown": parse_chown(args.chown) if args.chown else None,
        "ignore_file": os.path.abspath(args.ignore_file) if args.ignore_file else None,
        "compression": args.compression,
        "compression_level": args.compression_level,
        "source_date_epoch": source_date_epoch(),
        "use_cache": False if args.no_cache else None,
        "verify": True if args.verify else None,
        "python": _python_deps(args),
        "lambda_check": True if args.lambda_check else None,
    }
    return make_spec(file_fields, overrides)


def _python_deps(args: argparse.Namespace) -> dict[str, Any] | None:
    def absolute(path: str | None) -> str | None:
        return os.path.abspath(path) if path else None

    if not (args.requirements or args.pyproject or args.lock):
        return None
    return {
        "requirements": [os.path.abspath(p) for p in args.requirements],
        "pyproject": absolute(args.pyproject),
        "lock": absolute(args.lock),
        "python_version": args.python_version,
        "libc": args.libc,
        "dest": args.deps_dest,
        "index_url": args.index_url,
        "extra_index_urls": args.extra_index_url,
        "find_links": [link if "://" in link else os.path.abspath(link) for link in args.find_links],
    }
