"""What AWS Lambda requires of a container image, checked before a push: every problem at once, each with a fix.

Lambda takes one single-platform image per function (no index, so no buildx attestation entries), in Docker
v2s2 or OCI media types, for amd64 or arm64, with an entrypoint or command, at most 10 GB uncompressed. On AWS's
Lambda bases (LAMBDA_TASK_ROOT in the environment) the command names the handler as `module.function`, which
must resolve to `module.py` (or a package) under the task root. Layers are read as tar headers, top layer first;
uncompressed sizes are cached by layer digest, so a base's layers are streamed once per machine."""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from ocipush import mediatypes as mt
from ocipush.digest import check_digest, new_hasher
from ocipush.extract import OPAQUE, WHITEOUT, ChunkReader, layer_members
from ocipush.models import Descriptor, ImageConfig, ManifestDocument, Platform
from ocipush.transfer import ImageSource

MAX_UNCOMPRESSED = 10 * 1024**3
LAMBDA_ARCHITECTURES = ("amd64", "arm64")


@dataclass(frozen=True)
class LambdaProblem:
    """A rule of AWS Lambda's that an image breaks, with how to fix it."""

    check: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message} (fix: {self.fix})"


def _members(source: ImageSource, layer: Descriptor) -> Iterator[tarfile.TarInfo]:
    return layer_members(ChunkReader(source.blob(layer).read_range(0, layer.size)), layer.digest, layer.media_type)


class SizeCache:
    """Uncompressed layer sizes by digest in the cache dir: a base's layers are read once per machine, and not
    at all when the base index has read them for the build."""

    def __init__(self, directory: str | None = None) -> None:
        from ocipush.cachedir import cache_subdir

        self.directory = directory
        self.path = os.path.join(cache_subdir("lambda", directory), "sizes.json")
        try:
            with open(self.path, "rb") as f:
                loaded = json.load(f)
        except (OSError, ValueError):
            loaded = {}
        self.sizes: dict[str, int] = loaded if isinstance(loaded, dict) else {}

    def get(self, digest: str) -> int | None:
        """The layer's uncompressed size: from this cache, or from the base index's summary of the layer (a
        build that placed a layer on this base has just read its headers)."""
        found = self.sizes.get(digest)
        if found is None:
            from ocipush.build.base_index import cached_summary

            summary = cached_summary(digest, self.directory)
            if summary is not None:
                found = self.sizes[digest] = summary.size
        return found

    def save(self) -> None:
        from ocipush.fsutil import atomic_write_bytes

        with contextlib.suppress(OSError):
            atomic_write_bytes(self.path, json.dumps(self.sizes).encode(), durable=False)  # a cache


def _handler_paths(handler: str, task_root: str) -> list[str]:
    module = handler.rpartition(".")[0]
    base = os.path.join(task_root, *module.split(".")).lstrip("/")
    return [base + ".py", base + "/__init__.py"]


def _find_and_measure(
    source: ImageSource, manifest: ManifestDocument, wanted: list[str], sizes: SizeCache
) -> tuple[bool, int]:
    """Whether any `wanted` path exists in the image (whiteouts and opaque directories of higher layers honoured,
    top layer first) and its total size."""
    found = False
    hidden: list[str] = []  # prefixes ('var/task/' for an opaque directory) that higher layers hide
    total = 0
    for layer in reversed(manifest.manifest.layers):
        known = sizes.get(layer.digest)
        if known is not None and (found or not wanted):
            total += known
            continue
        size = 0
        hides: list[str] = []  # what this layer hides in the layers below it, not in itself
        for member in _members(source, layer):
            size += member.size
            name = posixpath.normpath("/" + member.name).lstrip("/")
            parent, base = posixpath.split(name)
            if base == OPAQUE:
                hides.append(parent + "/")
            elif base.startswith(WHITEOUT):
                hides.append(posixpath.join(parent, base[len(WHITEOUT) :]))
            elif not found and name in wanted and not any(name == h or name.startswith(h.rstrip("/") + "/")
                                                          for h in hidden):  # fmt: skip
                found = member.isfile() or member.islnk()
        hidden += hides
        sizes.sizes[layer.digest] = size
        total += size
    sizes.save()
    return found, total


def check_image(
    source: ImageSource, platform: Platform | None = None, cache_dir: str | None = None
) -> list[LambdaProblem]:
    """Every reason AWS Lambda would refuse the image at `source` (empty when it would take it)."""
    root = source.root()
    if root.is_index:
        arches = ", ".join(str(m.platform) for m in root.index.manifests if m.platform) or "none"
        return [LambdaProblem(
            "single-platform", f"this is an index ({arches}); Lambda takes one image manifest per function",
            "push one tag per architecture (build-push --lambda does: TAG-amd64, TAG-arm64)",
        )]  # fmt: skip
    problems = []
    if root.media_type not in (mt.DOCKER_MANIFEST, mt.OCI_MANIFEST):
        problems.append(LambdaProblem("media-type", f"manifest type {root.media_type} is not Docker v2s2 or OCI",
                                      "copy it with ocipush copy, which keeps Docker or OCI types"))  # fmt: skip
    config = ImageConfig.model_validate_json(_config_bytes(source, root.manifest.config))
    arch = config.architecture
    if arch not in LAMBDA_ARCHITECTURES:
        problems.append(LambdaProblem("architecture", f"architecture {arch} is not amd64 or arm64",
                                      "build with --platform linux/amd64 or linux/arm64"))  # fmt: skip
    elif platform is not None and platform.architecture != arch:
        problems.append(LambdaProblem("architecture", f"the image is {arch}, the function is {platform.architecture}",
                                      f"build with --platform linux/{platform.architecture}"))  # fmt: skip
    container = config.config
    env = config.environment
    entrypoint, cmd = (container.entrypoint or [], container.cmd or []) if container else ([], [])
    if not entrypoint and not cmd:
        problems.append(LambdaProblem("command", "the image has neither an entrypoint nor a command",
                                      "set --cmd module.handler on a Lambda base, or --entrypoint"))  # fmt: skip
    wanted: list[str] = []
    task_root = env.get("LAMBDA_TASK_ROOT")
    if task_root is None:
        if not any("awslambdaric" in word or "aws-lambda-rie" in word for word in entrypoint + cmd):
            problems.append(LambdaProblem(
                "runtime-client", "the base is not an AWS Lambda base (no LAMBDA_TASK_ROOT) and the entrypoint does "
                "not start the runtime interface client",
                "build on public.ecr.aws/lambda/python:3.X, or install awslambdaric and use "
                "--entrypoint 'python -m awslambdaric' --cmd module.handler",
            ))  # fmt: skip
    elif not cmd or cmd[0].count(".") < 1:
        problems.append(LambdaProblem("handler", f"the command {cmd!r} does not name a handler as module.function",
                                      "set --cmd module.handler"))  # fmt: skip
    else:
        wanted = _handler_paths(cmd[0], task_root)
    found, total = _find_and_measure(source, root, wanted, SizeCache(cache_dir))
    if wanted and not found:
        problems.append(LambdaProblem(
            "handler", f"{cmd[0]} needs /{wanted[0]} (or a package), which no layer has",
            f"put the module in a layer at {task_root} (--layer app:{task_root})",
        ))  # fmt: skip
    if total > MAX_UNCOMPRESSED:
        problems.append(LambdaProblem("size", f"{total:,} bytes uncompressed, over Lambda's 10 GB",
                                      "drop files from the layers or move data to S3 or EFS"))  # fmt: skip
    return problems


def _config_bytes(source: ImageSource, descriptor: Descriptor) -> bytes:
    data = b"".join(source.blob(descriptor).read_range(0, descriptor.size))
    hasher = new_hasher(descriptor.digest)
    hasher.update(data)
    check_digest(descriptor.digest, f"{hasher.name}:{hasher.hexdigest()}", f"config {descriptor.digest}")
    return data
