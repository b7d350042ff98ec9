"""Helpers for the builder tests: source trees, running `ocipush build`, reading and validating what it wrote."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from ocipush.cli import main
from ocipush.layout import OCILayout

SCHEMA_DIR = Path(__file__).resolve().parent / "data" / "image-spec-schema"
SCHEMA_BASE = "https://opencontainers.org/schema/image/"
SCHEMAS = {"manifest": "image-manifest-schema.json", "index": "image-index-schema.json", "config": "config-schema.json"}

LONG_NAME = "d" * 60 + "/" + "e" * 60 + "/" + "very-long-file-name-" * 6 + ".txt"


def make_tree(root: Path, reverse: bool = False, mtime: int = 1_600_000_000) -> Path:
    """A tree with files, an executable, a symlink, a hardlink, an empty dir, unicode and > 100-byte names.

    `reverse` creates the entries in the opposite order (a different directory order on disk)."""
    files: list[tuple[str, bytes, int]] = [
        ("app/main.py", b"print('hello')\n", 0o644),
        ("app/run.sh", b"#!/bin/sh\nexec python app/main.py\n", 0o755),
        ("app/data/blob.bin", bytes(range(256)) * 300, 0o600),
        ("app/ünïcødé/naïve.txt", "ça marche\n".encode(), 0o644),
        (LONG_NAME, b"long\n", 0o644),
        ("big.bin", os.urandom(0) + b"x" * (3 << 20) + b"end", 0o644),
    ]
    for name, data, mode in reversed(files) if reverse else files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    (root / "app/empty").mkdir()
    os.symlink("main.py", root / "app/current.py")
    os.link(root / "app/main.py", root / "app/main-link.py")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (mtime, mtime), follow_symlinks=False)
    return root


def run(*argv: str) -> int:
    return main(list(argv))


def build(src: Path, out: Path, *extra: str, tag: str = "v1") -> int:
    return run("build", "--no-build-file", "--layer", f"{src}:/", "--output", f"oci:{out}:{tag}", *extra)


def load(layout_dir: Path, tag: str = "v1") -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, config) of a single-platform image in a layout."""
    layout = OCILayout(str(layout_dir))
    manifest = json.loads(layout.read_manifest(layout.resolve(tag)).raw)
    config = json.loads(layout.read_blob(manifest["config"]["digest"]))
    return manifest, config


def top_digest(layout_dir: Path, tag: str = "v1") -> str:
    return OCILayout(str(layout_dir)).resolve(tag).digest


@cache
def _registry() -> Registry:
    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        contents = json.loads(path.read_text())
        resource = Resource(contents=contents, specification=DRAFT4)
        resources.append((SCHEMA_BASE + path.name, resource))
        if "id" in contents:
            resources.append((contents["id"], resource))
    return Registry().with_resources(resources)


def validate(kind: str, document: bytes | dict[str, Any]) -> None:
    """Validate against the image-spec JSON schema (`manifest`, `index` or `config`)."""
    data = json.loads(document) if isinstance(document, bytes) else document
    schema = json.loads((SCHEMA_DIR / SCHEMAS[kind]).read_text())
    jsonschema.Draft4Validator(schema, registry=_registry()).validate(data)


def validate_layout(layout_dir: Path) -> int:
    """Validate every manifest, index and config reachable from index.json; returns how many were checked."""
    layout = OCILayout(str(layout_dir))
    checked = 0
    stack = list(layout.read_index().manifests)
    while stack:
        descriptor = stack.pop()
        raw = layout.read_blob(descriptor.digest)
        data = json.loads(raw)
        if "manifests" in data:
            validate("index", data)
            stack.extend(layout.read_manifest(descriptor).index.manifests)
        else:
            validate("manifest", data)
            validate("config", layout.read_blob(data["config"]["digest"]))
            checked += 1
        checked += 1
    return checked
