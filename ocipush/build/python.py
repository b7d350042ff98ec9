"""Python dependencies as a layer: wheels for the target platform installed by pip into a directory, per platform.

pip runs on the build machine with `--platform/--python-version/--implementation/--abi --only-binary=:all:
--target`, so no compiler and no emulator runs: an arm64 layer is made on an amd64 runner. The layer is keyed by
a hash of its inputs (requirement texts, target tags, Python version, pip's version, index options and PIP_*
variables); an unchanged key costs no install and no upload: its diff_id comes from the local cache or from the
history of the image the target tag names now, whose layer blob is then reused."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from ocipush.build.base import BaseImage
from ocipush.build.destination import BasePlacer
from ocipush.build.layers import KnownLayers, LayerOptions, LayerResult, build_layer, reuse_layer
from ocipush.build.spec import LayerSpec, PythonDeps, read_toml
from ocipush.build.tarstream import Placement
from ocipush.errors import BuildError
from ocipush.layout import OCILayout
from ocipush.log import get_logger
from ocipush.models import ImageConfig, Platform

log = get_logger("ocipush.build.python")

DEFAULT_DEST = "/opt/python"
LAMBDA_TASK_ROOT = "/var/task"
# The glibc floor assumed when the base does not say: manylinux_2_28 wheels run on Debian 10+, RHEL 8+, AL2023.
DEFAULT_GLIBC = (2, 28)
# musl 1.2 (Alpine 3.13+): a base has musl's loader, not its version, in a path the base index can see.
DEFAULT_MUSL = (1, 2)
# Where a glibc before 2.34 keeps its versioned libc-2.N.so (after that, only libc.so.6: the 2.28 default holds).
_LIBC_DIRS = ("lib64", "usr/lib64", "lib/{machine}-linux-gnu", "usr/lib/{machine}-linux-gnu")
LibC = tuple[str, tuple[int, int]]
_PYTHON_DIRS = ("usr/bin", "usr/local/bin", "var/lang/bin", "bin")
HISTORY_PREFIX = "ocipush build: python dependencies "
_ARCHES = {"amd64": "x86_64", "arm64": "aarch64"}
_NO_MATCH = re.compile(r"No matching distribution found for ([^\s]+)")
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
# pip says "No matching distribution" also when an index refused it or could not be reached: its warnings tell.
_INDEX_TROUBLE = re.compile(
    r"^WARNING: .*(?:\b[45]\d\d Error|Could not fetch URL|connection broken by|SSLError|ProxyError).*$", re.MULTILINE
)


@dataclass(frozen=True)
class PythonTarget:
    """Where and for what one platform's dependencies are installed."""

    platform: Platform
    version: str  # "3.12"
    libc: str  # "glibc" or "musl"
    libc_version: tuple[int, int]
    dest: str
    lambda_base: bool

    @property
    def machine(self) -> str:
        arch = _ARCHES.get(self.platform.architecture)
        if arch is None:
            raise BuildError(f"python dependencies: no wheel platform tags for {self.platform} (amd64 or arm64)")
        return arch

    def platform_tags(self) -> list[str]:
        """Every wheel platform tag the target accepts, newest first (pip does not widen a given tag itself)."""
        major, minor = self.libc_version
        if self.libc == "musl":
            return [f"musllinux_{major}_{m}_{self.machine}" for m in range(minor, -1, -1)]
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [f"{name}_{self.machine}" for m, name in legacy.items() if minor >= m]
        return tags

    @property
    def abi(self) -> str:
        return "cp" + self.version.replace(".", "")


def _version_from_base(env: dict[str, str], base_name: str | None) -> str | None:
    """The official Python images set PYTHON_VERSION; AWS's Lambda bases name it in their tag (python:3.12)."""
    for value in (env.get("PYTHON_VERSION", ""), env.get("AWS_EXECUTION_ENV", "")):
        match = re.search(r"(\d+)\.(\d+)", value)
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    if base_name and "LAMBDA_TASK_ROOT" in env:
        match = re.search(r"python:(\d+)\.(\d+)", base_name)
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    return None


def _libc(
    deps: PythonDeps, lambda_base: bool, version: str, base_libc: LibC | None
) -> tuple[str, tuple[int, int]]:
    if deps.libc:
        kind, _, number = deps.libc.partition(":")
        if number:
            major, minor = (int(x) for x in number.split("."))
            return kind, (major, minor)
        return kind, DEFAULT_MUSL if kind == "musl" else DEFAULT_GLIBC
    if base_libc is not None:
        return base_libc
    if lambda_base:
        # Lambda's Python 3.12+ bases are Amazon Linux 2023 (glibc 2.34); older ones Amazon Linux 2 (glibc 2.26).
        return "glibc", (2, 34) if tuple(int(x) for x in version.split(".")) >= (3, 12) else (2, 26)
    return "glibc", DEFAULT_GLIBC


def python_target(
    deps: PythonDeps, platform: Platform, config: ImageConfig | None, base_name: str | None,
    base_libc: LibC | None = None, base_pythons: list[str] | None = None,
) -> PythonTarget:  # fmt: skip
    """The target of one platform's dependency layer, from the flags first and the base second (its config, then
    what its files show: `base_libc`, the C library, and `base_pythons`, the python3.N interpreters it has)."""
    env = config.environment if config is not None else {}
    lambda_base = "LAMBDA_TASK_ROOT" in env
    found = base_pythons or []
    version = deps.python_version or _version_from_base(env, base_name) or (found[0] if len(found) == 1 else None)
    if version is None:
        has = f"has Python {' and '.join(found)}" if found else "does not say which Python it has"
        raise BuildError(
            f"python dependencies: the base {base_name or 'scratch'} {has} (no PYTHON_VERSION in its "
            "environment); give it with --python-version 3.12"
        )
    libc, libc_version = _libc(deps, lambda_base, version, base_libc)
    dest = deps.dest or (env.get("LAMBDA_TASK_ROOT", LAMBDA_TASK_ROOT) if lambda_base else DEFAULT_DEST)
    return PythonTarget(platform, version, libc, libc_version, dest, lambda_base)


def requirement_lines(deps: PythonDeps) -> list[str]:
    """Requirement lines from the pyproject's [project.dependencies] and a pylock.toml (requirements files are
    passed to pip with -r, as written)."""
    lines: list[str] = []
    if deps.pyproject:
        project = read_toml(deps.pyproject, "pyproject").get("project", {})
        found = project.get("dependencies") if isinstance(project, dict) else None
        if not isinstance(found, list) or not all(isinstance(item, str) for item in found):
            raise BuildError(f"{deps.pyproject} has no [project] dependencies list")
        lines += found
    if deps.lock:
        lines += _lock_lines(deps.lock)
    return lines


def _lock_lines(path: str) -> list[str]:
    """PEP 751 pylock.toml: each package pinned to its version, with the hashes of its wheels."""
    packages = read_toml(path, "lock file").get("packages")
    if not isinstance(packages, list):
        raise BuildError(f"{path} has no [[packages]]: not a pylock.toml")
    lines = []
    for package in packages:
        if not isinstance(package, dict) or "name" not in package or "version" not in package:
            raise BuildError(f"{path}: a package without name and version: {package!r}")
        wheels = package.get("wheels", [])
        if not isinstance(wheels, list) or not all(
            isinstance(wheel, dict) and isinstance(wheel.get("hashes", {}), dict) for wheel in wheels
        ):
            name = package["name"]
            raise BuildError(f"{path}: package {name}: [[packages.wheels]] must be tables with a hashes table")
        hashes = sorted(
            f"--hash={algorithm}:{value}" for wheel in wheels for algorithm, value in wheel.get("hashes", {}).items()
        )
        marker = f"; {package['marker']}" if package.get("marker") else ""
        lines.append(" ".join([f"{package['name']}=={package['version']}{marker}", *hashes]))
    return lines


def _included_texts(path: str, seen: set[str]) -> list[str]:
    """The text of a requirements file and of the files it pulls in with -r/-c: the cache key covers them all."""
    real = os.path.realpath(path)
    if real in seen:
        return []
    seen.add(real)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise BuildError(f"cannot read requirements file {path}: {exc.strerror}") from None
    found = [text]
    for match in re.finditer(r"^\s*(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)", text, re.MULTILINE):
        found += _included_texts(os.path.join(os.path.dirname(path), match.group(1)), seen)
    return found


def _pip_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pip")
    except PackageNotFoundError:
        raise BuildError("python dependencies need pip in ocipush's environment: python -m pip --version") from None


def _pip_config_texts() -> list[str]:
    """The texts of the config files pip reads besides PIP_* (global, site, user, PIP_CONFIG_FILE), in pip's
    order: an index, a constraint or `no-deps` set there changes what is installed. The locations are pip's own;
    they are not keyed themselves (a runner with another HOME must still find the same key)."""
    try:
        from pip._internal.configuration import get_configuration_files
    except ImportError:  # a pip that moved it: PIP_* and the flags still key the layer
        paths: list[str] = []
    else:
        paths = [path for group in get_configuration_files().values() for path in group]
    paths.append(os.environ.get("PIP_CONFIG_FILE", ""))
    texts = []
    for path in dict.fromkeys(p for p in paths if p):
        with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as f:
            texts.append(f.read())
    return texts


def _links_listing(find_links: list[str]) -> list[object]:
    """A local --find-links directory's wheel names and sizes: a new wheel there changes the key."""
    listing: list[object] = []
    for link in find_links:
        if os.path.isdir(link):
            listing.append(sorted((e.name, e.stat().st_size) for e in os.scandir(link) if e.is_file()))
        else:
            listing.append(link)
    return listing


def cache_key(deps: PythonDeps, target: PythonTarget, placement: Placement | None, options: LayerOptions) -> str:
    """The hash of everything that decides the layer's bytes: the installed files (secrets in URLs or PIP_* are
    hashed, not kept) and how they are tarred (owner, timestamp)."""
    inputs = {
        "requirements": [text for path in deps.requirements for text in _included_texts(path, set())],
        "lines": requirement_lines(deps),
        "target": [target.version, target.libc, target.libc_version, target.platform_tags(), target.abi],
        "dest": [target.dest, repr(placement)],
        "pip": _pip_version(),
        "index": [deps.index_url, deps.extra_index_urls, _links_listing(deps.find_links)],
        "env": sorted((k, v) for k, v in os.environ.items() if k.startswith("PIP_")),
        "pip-config": _pip_config_texts(),
        "tar": [options.owner.uid, options.owner.gid, options.mtime],
    }
    return "sha256:" + hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def pip_command(deps: PythonDeps, target: PythonTarget, into: str, requirements_file: str | None) -> list[str]:
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-input", "--disable-pip-version-check",
        "--no-compile", "--only-binary=:all:", "--target", into, "--python-version", target.version,
        "--implementation", "cp", "--abi", target.abi,
    ]  # fmt: skip
    for tag in target.platform_tags():
        command += ["--platform", tag]
    if deps.index_url:
        command += ["--index-url", deps.index_url]
    for url in deps.extra_index_urls:
        command += ["--extra-index-url", url]
    for link in deps.find_links:
        command += ["--find-links", link]
    for path in deps.requirements:
        command += ["-r", path]
    if requirements_file:
        command += ["-r", requirements_file]
    return command


def _scrub(text: str) -> str:
    return _URL_CREDENTIALS.sub("***@", text)


def install(deps: PythonDeps, target: PythonTarget, into: str) -> None:
    """Install the dependencies' wheels for `target` into the empty directory `into`."""
    lines = requirement_lines(deps)
    with tempfile.TemporaryDirectory(prefix="ocipush-req-") as scratch:
        extra = None
        if lines:
            extra = os.path.join(scratch, "requirements.txt")
            with open(extra, "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
        command = pip_command(deps, target, into, extra)
        log.info("installing python dependencies for %s (Python %s, %s)", target.platform, target.version,
                 target.platform_tags()[0])  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        missing = _NO_MATCH.search(done.stderr)
        where = f"{target.platform}, CPython {target.version}, {target.libc} {'.'.join(map(str, target.libc_version))}"
        trouble = _INDEX_TROUBLE.findall(done.stderr)
        if trouble:
            raise BuildError(
                f"pip could not use a package index for {where}: {_scrub(trouble[-1]).removeprefix('WARNING: ')}; "
                "check --index-url/--extra-index-url, their credentials (PIP_* or the URL) and the network"
            )
        if missing:
            raise BuildError(
                f"python dependency {missing.group(1)} has no wheel for {where}; ocipush installs wheels only "
                "(no compiler runs): pin a version that ships one, or build the wheel and pass --find-links"
            )
        tail = " | ".join(_scrub(done.stderr).strip().splitlines()[-3:])
        raise BuildError(f"pip could not install the python dependencies for {where}: {tail}")
    # Console scripts carry the build machine's interpreter in their shebang: useless (and a machine path) in
    # the image. Run them as `python -m package` instead.
    shutil.rmtree(os.path.join(into, "bin"), ignore_errors=True)


def previous_keys(configs: list[ImageConfig]) -> dict[str, str]:
    """Dependency keys -> diff_ids recorded in the history of the image the target tag names now."""
    found: dict[str, str] = {}
    for config in configs:
        layered = [h for h in config.history or [] if not h.empty_layer]
        for entry, diff_id in zip(layered, config.rootfs.diff_ids, strict=False):
            text = entry.created_by or ""
            if text.startswith(HISTORY_PREFIX):
                found.setdefault(text[len(HISTORY_PREFIX) :].split(" ", 1)[0], diff_id)
    return found


def history_entry(key: str, target: PythonTarget) -> str:
    return f"{HISTORY_PREFIX}{key} -> {target.dest}"


def pythonpath_env(target: PythonTarget, config: ImageConfig | None) -> dict[str, str]:
    """Outside Lambda (whose task root is already on sys.path) the layer's directory goes on PYTHONPATH."""
    if target.lambda_base:
        return {}
    existing = config.environment.get("PYTHONPATH") if config is not None else None
    return {"PYTHONPATH": f"{target.dest}:{existing}" if existing else target.dest}


@dataclass(frozen=True)
class DependencyLayer:
    """One platform's dependency layer, the history line that records its key, and the env it needs."""

    layer: LayerResult
    history: str
    env: dict[str, str]


def dependency_layers(
    deps: PythonDeps,
    images: list[BaseImage],
    store: OCILayout,
    options: LayerOptions,
    known: KnownLayers,
    previous: list[ImageConfig],
    placer: BasePlacer,
    cache_dir: str | None = None,
) -> list[DependencyLayer]:
    """The dependency layer of each base image's platform: reused by key when it can be, else installed."""
    recorded = previous_keys(previous)
    # The app's --ignore-file is for its own directories: pip's tree goes into the layer whole.
    options = dataclasses.replace(options, ignore_file=None)
    result = []
    for image in images:
        config = image.config
        base_libc = None if deps.libc else _libc_of_base(image, placer)
        pythons = None if deps.python_version else _pythons_of_base(image, placer)
        target = python_target(deps, image.platform, config, image.name, base_libc, pythons)
        placement = placer.place(image, target.dest)
        key = cache_key(deps, target, placement, options)
        layer = _reuse_by_key(key, target, recorded, store, options, known) or _install_layer(
            deps, target, key, store, options, known, placement, cache_dir
        )
        result.append(DependencyLayer(layer, history_entry(key, target), pythonpath_env(target, config)))
    return result


def _libc_of_base(image: BaseImage, placer: BasePlacer) -> LibC | None:
    """The C library the base's files show: musl's loader (/lib/ld-musl-ARCH.so.1, as on Alpine), or a glibc
    older than 2.34 by its versioned libc-2.N.so (CentOS 7, Amazon Linux 2, Ubuntu 18.04). None: not known."""
    machine = _ARCHES.get(image.platform.architecture)
    if machine is None:
        return None
    if placer.lookup(image, f"lib/ld-musl-{machine}.so.1") is not None:
        return "musl", DEFAULT_MUSL
    for minor in range(33, 4, -1):
        for directory in _LIBC_DIRS:
            if placer.lookup(image, f"{directory.format(machine=machine)}/libc-2.{minor}.so") is not None:
                return "glibc", (2, minor)
    return None


def _pythons_of_base(image: BaseImage, placer: BasePlacer) -> list[str]:
    """The python3.N interpreters the base has where distributions, python images and Lambda bases put them."""
    return [
        f"3.{minor}"
        for minor in range(8, 20)
        if any(placer.lookup(image, f"{d}/python3.{minor}") is not None for d in _PYTHON_DIRS)
    ]


def _reuse_by_key(
    key: str, target: PythonTarget, recorded: dict[str, str], store: OCILayout, options: LayerOptions,
    known: KnownLayers,
) -> LayerResult | None:  # fmt: skip
    diff_id = known.predicted_diff_id("python:" + key) or recorded.get(key)
    if diff_id is None:
        return None
    reused = reuse_layer(diff_id, known, store, options, target.dest)
    if reused is not None:
        log.info("python dependencies for %s unchanged (%s): layer reused", target.platform, key)
    return reused


def _install_layer(
    deps: PythonDeps,
    target: PythonTarget,
    key: str,
    store: OCILayout,
    options: LayerOptions,
    known: KnownLayers,
    placement: Placement | None,
    cache_dir: str | None,
) -> LayerResult:
    from ocipush.cachedir import cache_subdir

    with tempfile.TemporaryDirectory(prefix="deps-", dir=cache_subdir("tmp", cache_dir)) as scratch:
        into = os.path.join(scratch, "site")
        install(deps, target, into)
        # The dependency tree is fresh every time: fingerprints of it could never match, so none are kept.
        layer = build_layer(LayerSpec(source=into, dest=target.dest), store, options, known, placement=placement)
    known.remember("python:" + key, layer.diff_id)
    return layer
