"""What to build: the BuildSpec model, filled from a TOML build file and command-line values (flags win).

Validation happens here, once, so that everything after it can trust the spec: `K=V` pairs, ports, platforms,
owners, destinations and paths are checked and normalised before any layer is written."""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ocipush.build.compress import Compression
from ocipush.errors import BuildError, UsageError
from ocipush.models import Platform, parse_platform
from ocipush.records import Invalid, Record, options

DEFAULT_EPOCH = 0
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_PORT = re.compile(r"^(\d{1,5})(?:/(tcp|udp|sctp))?$")
_CHOWN = re.compile(r"^(\d+)(?::(\d+))?$")
BUILD_FILES = ("ocipush.toml", "pyproject.toml")


def _absolute(what: str) -> Callable[[str | None], str | None]:
    def check(value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{what} {value!r} must be an absolute path")
        return value

    return check


def _matching(pattern: str, what: str, expected: str) -> Callable[[str | None], str | None]:
    def check(value: str | None) -> str | None:
        if value is not None and not re.fullmatch(pattern, value):
            raise ValueError(f"{what} {value!r}: expected {expected}")
        return value

    return check


def _env_names(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not _ENV_KEY.match(name):
            raise ValueError(f"invalid environment variable name {name!r}")
    return value


def _port_texts(value: Any) -> list[str]:
    """Ports as a build file may write them (8080 or "53/udp"): strings, for the list[str] field."""
    if not isinstance(value, list):
        raise ValueError("expected a list of ports")
    return [str(p) for p in value]


def _ports(value: list[str]) -> list[str]:
    return [parse_port(p) for p in value]


def _level(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= 22:
        raise ValueError(f"compression level {value} is out of range (gzip 0-3 with isal, zstd 1-22)")
    return value


@dataclass(frozen=True, kw_only=True)
class LayerSpec(Record):
    """A directory placed under `dest`, or an existing tarball (`tar=True`) used as a layer."""

    source: str
    dest: str = "/"
    tar: bool = False
    ignore_file: str | None = None


@dataclass(frozen=True, kw_only=True)
class PythonDeps(Record):
    """Python dependencies installed as wheels for each target platform into one layer (see build/python.py)."""

    requirements: list[str] = field(default_factory=list)
    pyproject: str | None = None
    lock: str | None = None
    python_version: str | None = field(
        default=None, metadata=options(check=_matching(r"3\.\d{1,2}", "python version", "MAJOR.MINOR such as 3.12"))
    )
    libc: str | None = field(
        default=None,
        metadata=options(check=_matching(r"(glibc|musl)(:\d+\.\d+)?", "libc", "glibc, musl, glibc:2.34 or musl:1.2")),
    )
    dest: str | None = field(default=None, metadata=options(check=_absolute("dependency destination")))
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class BuildSpec(Record):
    """A build file (ocipush.yaml or the command line's flags): the base, the layers and the image's settings."""

    base: str = "scratch"
    layers: list[LayerSpec] = field(default_factory=list)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict, metadata=options(check=_env_names))
    workdir: str | None = field(default=None, metadata=options(check=_absolute("workdir")))
    user: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    expose: list[str] = field(default_factory=list, metadata=options(before=_port_texts, check=_ports))
    annotations: dict[str, str] = field(default_factory=dict)
    platforms: list[Platform] = field(default_factory=list)
    chown: tuple[int, int] | None = None
    compression: Compression = "gzip"
    compression_level: int | None = field(default=None, metadata=options(check=_level))
    source_date_epoch: int = DEFAULT_EPOCH
    ignore_file: str | None = None
    cache_dir: str | None = None
    use_cache: bool = True
    verify: bool = False
    python: PythonDeps | None = None
    lambda_check: bool = False


def parse_pair(text: str, what: str) -> tuple[str, str]:
    """`K=V` (V may be empty or contain '='); raises UsageError naming the flag otherwise."""
    key, sep, value = text.partition("=")
    if not sep or not key or key != key.strip():
        raise UsageError(f"invalid {what} {text!r}: expected KEY=VALUE")
    return key, value


def parse_port(text: str) -> str:
    match = _PORT.match(str(text).strip())
    if not match or not 0 < int(match.group(1)) < 65536:
        raise UsageError(f"invalid port {text!r}: expected PORT[/tcp|udp|sctp], e.g. 8080/tcp")
    return f"{int(match.group(1))}/{match.group(2) or 'tcp'}"


def parse_chown(text: str) -> tuple[int, int]:
    match = _CHOWN.match(text.strip())
    if not match:
        raise UsageError(f"invalid --chown {text!r}: expected UID[:GID] as numbers, e.g. 1000:1000")
    uid = int(match.group(1))
    return uid, int(match.group(2)) if match.group(2) is not None else uid


def parse_command(text: str) -> list[str]:
    """A JSON array (`["python", "app.py"]`) or a shell-like string (`python app.py`)."""
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            raise UsageError(f"invalid command {text!r}: not a JSON array of strings") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"invalid command {text!r}: not a JSON array of strings")
        return value
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"invalid command {text!r}: {exc}") from None


def parse_platforms(values: list[str]) -> list[Platform]:
    platforms: list[Platform] = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                platform = parse_platform(part)
                if platform not in platforms:
                    platforms.append(platform)
    return platforms


def parse_layer(text: str) -> LayerSpec:
    """`DIR[:DEST]`; the last ':' followed by '/' starts DEST, so paths with ':' still work."""
    source, sep, dest = text.rpartition(":")
    if sep and source and dest.startswith("/"):
        return LayerSpec(source=source, dest=dest)
    return LayerSpec(source=text)


def source_date_epoch(environ: dict[str, str] | None = None) -> int:
    value = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return DEFAULT_EPOCH
    if not value.isdigit():
        raise UsageError(f"invalid SOURCE_DATE_EPOCH {value!r}: expected whole seconds since 1970")
    return int(value)


def find_build_file(directory: str = ".") -> str | None:
    """`ocipush.toml`, else a `pyproject.toml` that has a `[tool.ocipush]` table."""
    for name in BUILD_FILES:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and (name != "pyproject.toml" or _tool_table(path) is not None):
            return path
    return None


def _tool_table(path: str) -> dict[str, Any] | None:
    tool = read_toml(path).get("tool", {})
    table = tool.get("ocipush") if isinstance(tool, dict) else None
    return table if isinstance(table, dict) else None


def read_toml(path: str, what: str = "build file") -> dict[str, Any]:
    """A TOML file's table; BuildError naming `what` when it cannot be read or parsed."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise BuildError(f"cannot read {what} {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{what} {path} is not valid TOML: {exc}") from None


def load_build_file(path: str) -> dict[str, Any]:
    """The build settings of a TOML file as BuildSpec fields, with paths made relative to the file's directory."""
    data = _tool_table(path) if os.path.basename(path) == "pyproject.toml" else read_toml(path)
    if data is None:
        raise BuildError(f"{path} has no [tool.ocipush] table")
    here = os.path.dirname(os.path.abspath(path))
    fields: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name == "from":
            name = "base"
            if isinstance(value, str) and value.startswith("oci:") and not os.path.isabs(value[4:]):
                value = "oci:" + os.path.join(here, value[4:])
        elif name == "layers":
            value = [_file_layer(item, here, path) for item in value]
        elif name in ("entrypoint", "cmd") and isinstance(value, str):
            value = parse_command(value)
        elif name == "platforms" and isinstance(value, (str, list)):
            value = parse_platforms([value] if isinstance(value, str) else value)
        elif name in ("env", "labels", "annotations") and isinstance(value, list):
            value = dict(parse_pair(str(item), name) for item in value)
        elif name == "chown" and isinstance(value, str):
            value = parse_chown(value)
        elif name == "ignore_file" and isinstance(value, str):
            value = os.path.join(here, value)
        elif name == "python" and isinstance(value, dict):
            value = _file_python(value, here)
        fields[name] = value
    return fields


def _file_layer(item: Any, here: str, path: str) -> LayerSpec:
    if isinstance(item, str):
        layer = parse_layer(item)
    elif isinstance(item, dict):
        try:
            layer = LayerSpec.model_validate({k.replace("-", "_"): v for k, v in item.items()})
        except Invalid as exc:
            raise BuildError(f"{path}: invalid layer {item!r}: {exc}") from None
    else:
        raise BuildError(f"{path}: a layer is 'DIR[:DEST]' or a table with source/dest, not {item!r}")
    update: dict[str, Any] = {"source": os.path.join(here, layer.source)}
    if layer.ignore_file:
        update["ignore_file"] = os.path.join(here, layer.ignore_file)
    return layer.model_copy(update=update)


def _file_python(table: dict[str, Any], here: str) -> dict[str, Any]:
    """A build file's [python] table, its file paths made relative to the build file's directory."""
    fields = {key.replace("-", "_"): value for key, value in table.items()}
    for key in ("pyproject", "lock"):
        if isinstance(fields.get(key), str):
            fields[key] = os.path.join(here, fields[key])
    for key in ("requirements", "find_links"):
        if isinstance(fields.get(key), list):
            fields[key] = [v if "://" in str(v) else os.path.join(here, str(v)) for v in fields[key]]
    return fields


def make_spec(file_fields: dict[str, Any], overrides: dict[str, Any]) -> BuildSpec:
    """Merge build-file fields with flag values: scalars and lists from flags replace, mappings merge per key."""
    merged = dict(file_fields)
    for key, value in overrides.items():
        if value is None or value == [] or value == {}:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    try:
        return BuildSpec.model_validate(merged)
    except Invalid as exc:
        raise UsageError(f"invalid build setting {exc}") from None
