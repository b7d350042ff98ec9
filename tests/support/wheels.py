"""A local wheelhouse made by the tests: real wheel files (zip, METADATA, WHEEL, RECORD) that pip installs offline.

Platform wheels carry the tags of their architecture and a module that says which one it is, so a test can see
that the arm64 layer got the aarch64 wheel without running an arm64 interpreter."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    into: Path,
    name: str,
    version: str,
    files: dict[str, str],
    tag: str = "py3-none-any",
    requires: tuple[str, ...] = (),
    license_text: str = "MIT",
) -> Path:
    """Write `name-version-tag.whl` holding `files` (path -> text) and its dist-info; returns its path."""
    dist = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: {license_text}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    purelib = "true" if "none-any" in tag else "false"
    wheel = f"Wheel-Version: 1.0\nGenerator: ocipush-tests\nRoot-Is-Purelib: {purelib}\n"
    wheel += "".join(f"Tag: {t}\n" for t in _expand(tag))
    contents = {**{k: v.encode() for k, v in files.items()}, f"{dist}/METADATA": metadata.encode(),
                f"{dist}/WHEEL": wheel.encode()}  # fmt: skip
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in contents.items())
    record += f"{dist}/RECORD,,\n"
    path = into / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in [*contents.items(), (f"{dist}/RECORD", record.encode())]:
            archive.writestr(member, data)
    return path


def _expand(tag: str) -> list[str]:
    python, abi, platforms = tag.split("-")
    return [f"{p}-{a}-{plat}" for p in python.split(".") for a in abi.split(".") for plat in platforms.split(".")]


def make_sdist(into: Path, name: str, version: str) -> Path:
    """An sdist only (no wheel): ocipush must refuse to build it."""
    path = into / f"{name}-{version}.tar.gz"
    data = f"[project]\nname = '{name}'\nversion = '{version}'\n".encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(f"{name}-{version}/pyproject.toml")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


def wheelhouse(into: Path) -> Path:
    """purelib (pure Python, needs sixish), sixish, fastmod for x86_64 and aarch64 (CPython 3.11 and 3.12)."""
    into.mkdir(parents=True, exist_ok=True)
    make_wheel(into, "purelib", "1.0", {"purelib/__init__.py": "VERSION = '1.0'\n"}, requires=("sixish>=2",))
    make_wheel(into, "sixish", "2.1", {"sixish.py": "NAME = 'sixish'\n"}, license_text="BSD-3-Clause")
    for machine in ("x86_64", "aarch64"):
        for py in ("cp311", "cp312"):
            make_wheel(into, "fastmod", "3.0", {"fastmod/__init__.py": f"ARCH = '{machine}'\n"},
                       tag=f"{py}-{py}-manylinux_2_17_{machine}.manylinux2014_{machine}")  # fmt: skip
    make_sdist(into, "sdistonly", "0.1")
    return into
