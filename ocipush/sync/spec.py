"""The sync file: which repositories and tags to mirror from where, and into which registries under which names.

The YAML shape follows what skopeo-sync and regsync users write: per source registry an `images` map of repository
to tags (an empty list: every tag), or a repository list, or the whole catalog with filters; tag filters; platforms;
and destinations with a repository name template. A skopeo-sync file (registry names as top-level keys) is read
too, with the destinations given separately.

The classes are frozen dataclasses checked by a few converters here, not pydantic models: a warm sync is a few
hundred HEADs, and importing pydantic and building these models cost as much as a third of it. PyYAML is imported
only when a file that is not plain JSON is read."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from ocipush.errors import UsageError
from ocipush.records import at as _at
from ocipush.records import kind as _kind

Convert = Callable[[Any, str], Any]  # (value as parsed, where it is in the file) -> the field's value
_Record = TypeVar("_Record")


class _Invalid(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where or 'top level'}: {message}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(where, f"expected a string (quote it), not {_kind(value)}")
    return value


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise _Invalid(where, f"expected a list of strings, not {_kind(value)}")
    return tuple(_text(item, _at(where, i)) for i, item in enumerate(value))


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(where, f"expected true or false, not {_kind(value)}")
    return value


def _optional(convert: Convert) -> Convert:
    return lambda value, where: None if value is None else convert(value, where)


def _number(kind: type[int] | type[float], least: float, above: bool = False) -> Convert:
    """An int (or, for float, any number) >= least (> least with `above`)."""

    def convert(value: Any, where: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int if kind is int else int | float):
            raise _Invalid(where, f"expected {'an integer' if kind is int else 'a number'}, not {_kind(value)}")
        if value < least or (above and value == least):
            raise _Invalid(where, f"must be {'more than' if above else 'at least'} {least}")
        return kind(value)

    return convert


def _choice(*options: str) -> Convert:
    def convert(value: Any, where: str) -> str:
        if value not in options:
            raise _Invalid(where, f"expected one of {', '.join(options)}, not {_kind(value)}")
        return str(value)

    return convert


def _regexes(value: Any, where: str) -> tuple[str, ...]:
    patterns = _texts(value, where)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _Invalid(where, f"bad regular expression {pattern!r}: {exc}") from None
    return patterns


def _platforms(value: Any, where: str) -> tuple[str, ...]:
    texts = _texts(value, where)
    if texts:  # the models only when some platform is named: the planner needs them then anyway
        from ocipush.models import parse_platform

        for i, text in enumerate(texts):
            try:
                parse_platform(text)
            except UsageError as exc:
                raise _Invalid(_at(where, i), str(exc)) from None
    return texts


def _semver(value: Any, where: str) -> str:
    from ocipush.sync.semver import parse_range

    try:
        parse_range(_text(value, where))
    except UsageError as exc:
        raise _Invalid(where, str(exc)) from None
    return str(value)


def _template(value: Any, where: str) -> str:
    try:
        _text(value, where).format(repo="r", name="n", registry="h")
    except (KeyError, IndexError, ValueError) as exc:
        raise _Invalid(where, f"bad template {value!r}: use {{repo}}, {{name}} or {{registry}} ({exc})") from None
    return str(value)


def _record(cls: type[_Record]) -> Convert:
    return lambda value, where: _build(cls, value, where)


def _records(cls: type[_Record]) -> Convert:
    """A non-empty list of records."""

    def convert(value: Any, where: str) -> tuple[_Record, ...]:
        if not isinstance(value, list | tuple) or not value:
            raise _Invalid(where, f"expected a list of at least one entry, not {_kind(value)}")
        return tuple(_build(cls, item, _at(where, i)) for i, item in enumerate(value))

    return convert


def _mapping(convert: Convert) -> Convert:
    def mapping(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _Invalid(where, f"expected a mapping, not {_kind(value)}")
        return {_text(k, where): convert(v, _at(where, k)) for k, v in value.items()}

    return mapping


def _build(cls: type[_Record], data: Any, where: str) -> _Record:
    """`cls` from a mapping whose keys are its fields, `-` or `_` alike, each checked by the class's converter."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise _Invalid(where, f"expected a mapping, not {_kind(data)}")
    converters: dict[str, Convert] = cls._convert  # type: ignore[attr-defined]
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in converters:
            raise _Invalid(_at(where, key), "unknown field")
        values[name] = converters[name](value, _at(where, key))
    for required in (f.name for f in dataclasses.fields(cls)):  # type: ignore[arg-type]
        if required not in values and _required(cls, required):
            raise _Invalid(_at(where, required.replace("_", "-")), "missing")
    record = cls(**values)
    check = getattr(record, "_check", None)
    if check is not None:
        check(where)
    return record


def _required(cls: type, name: str) -> bool:
    found = next(f for f in dataclasses.fields(cls) if f.name == name)
    return found.default is dataclasses.MISSING and found.default_factory is dataclasses.MISSING


@dataclass(frozen=True)
class NameFilter:
    """Regular expressions (Python `re.search`: anchor with ^ and $); a name passes when it matches an `include`
    (or there is none) and no `exclude`."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    _convert: ClassVar[dict[str, Convert]] = {"include": _regexes, "exclude": _regexes}

    def accepts(self, name: str) -> bool:
        if self.include and not any(re.search(p, name) for p in self.include):
            return False
        return not any(re.search(p, name) for p in self.exclude)


@dataclass(frozen=True)
class TagFilter(NameFilter):
    """Tag selection, applied in this order: regexes, `semver` range, then the `newest` N (by semver, or by push
    time: ECR's imagePushedAt on ECR, the image config's `created` elsewhere)."""

    semver: str | None = None
    newest: int | None = None
    newest_by: Literal["semver", "pushed"] = "semver"
    _convert: ClassVar[dict[str, Convert]] = {
        **NameFilter._convert,
        "semver": _optional(_semver),
        "newest": _optional(_number(int, 1)),
        "newest_by": _choice("semver", "pushed"),
    }


@dataclass(frozen=True)
class RepositorySettings:
    """Settings of ECR repositories that `create-repo` makes (the options of `ocipush ecr create-repository`)."""

    scan_on_push: bool = False
    tag_mutability: Literal["MUTABLE", "IMMUTABLE", "MUTABLE_WITH_EXCLUSION", "IMMUTABLE_WITH_EXCLUSION"] = "MUTABLE"
    mutability_exclusions: tuple[str, ...] = ()
    encryption: Literal["AES256", "KMS", "KMS_DSSE"] = "AES256"
    kms_key: str | None = None
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    _convert: ClassVar[dict[str, Convert]] = {
        "scan_on_push": _flag,
        "tag_mutability": _choice("MUTABLE", "IMMUTABLE", "MUTABLE_WITH_EXCLUSION", "IMMUTABLE_WITH_EXCLUSION"),
        "mutability_exclusions": _texts,
        "encryption": _choice("AES256", "KMS", "KMS_DSSE"),
        "kms_key": _optional(_text),
        "tags": _mapping(_text),
    }

    def to_dict(self) -> dict[str, Any]:
        """The fields by name: what `ocipush.ecr_admin.repositories.RepositoryOptions` takes."""
        return dataclasses.asdict(self)


def _images(value: Any, where: str) -> dict[str, tuple[str, ...]]:
    # skopeo's `images`: repository -> tags, digests or `tag@sha256:…` pins; an empty list (or none) is every tag.
    images: dict[str, tuple[str, ...]] = _mapping(lambda entries, at: _texts(entries or [], at))(value, where)
    return images


def _catalog(value: Any, where: str) -> bool | NameFilter:
    return value if isinstance(value, bool) else _build(NameFilter, value, where)


@dataclass(frozen=True)
class Source:
    """A sync source: a registry and the images, repositories or catalog to copy from it."""

    registry: str
    images: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    repositories: tuple[str, ...] = ()
    catalog: bool | NameFilter = False
    tags: TagFilter | None = None
    platforms: tuple[str, ...] = ()
    _convert: ClassVar[dict[str, Convert]] = {
        "registry": _text,
        "images": _images,
        "repositories": _texts,
        "catalog": _catalog,
        "tags": _optional(_record(TagFilter)),
        "platforms": _platforms,
    }

    def _check(self, where: str) -> None:
        if not (self.images or self.repositories or self.catalog):
            raise _Invalid(where, f"source {self.registry} names no repositories (images, repositories or catalog)")


@dataclass(frozen=True)
class Destination:
    """Where images go. The repository name is `template` with `{repo}` (the source repository without `strip`),
    `{name}` (its last component) and `{registry}` (the source registry) filled in, after `prefix`."""

    registry: str
    prefix: str = ""
    strip: str = ""
    template: str = "{repo}"
    create_repo: bool = False
    repository_settings: RepositorySettings = RepositorySettings()
    _convert: ClassVar[dict[str, Convert]] = {
        "registry": _text,
        "prefix": _text,
        "strip": _text,
        "template": _template,
        "create_repo": _flag,
        "repository_settings": _record(RepositorySettings),
    }

    def repository_for(self, source_registry: str, repository: str) -> str:
        stripped = repository[len(self.strip) :] if self.strip and repository.startswith(self.strip) else repository
        name = self.template.format(repo=stripped, name=stripped.rsplit("/", 1)[-1], registry=source_registry)
        return (self.prefix + name).strip("/")


@dataclass(frozen=True)
class RateLimits:
    """Docker Hub's `ratelimit-remaining`: below `floor` pulls left, `pause` (wait for the window to refill, at
    most `max-pause` seconds at a time) or `stop` (the images not yet copied are reported failed)."""

    floor: int = 10
    action: Literal["pause", "stop"] = "pause"
    max_pause: float = 900.0
    # ECR's PutImage default quota is 10 per second per Region; pace manifest pushes to ECR under it.
    ecr_put_image_per_second: float = 10.0
    _convert: ClassVar[dict[str, Convert]] = {
        "floor": _number(int, 0),
        "action": _choice("pause", "stop"),
        "max_pause": _number(float, 0),
        "ecr_put_image_per_second": _number(float, 0, above=True),
    }


@dataclass(frozen=True)
class SyncSpec:
    """A sync file: its sources, destinations and defaults."""

    sources: tuple[Source, ...]
    destinations: tuple[Destination, ...]
    # Defaults for sources that set none of their own.
    tags: TagFilter | None = None
    platforms: tuple[str, ...] = ()
    rate_limits: RateLimits = RateLimits()
    # Carry what is attached to each copied image (OCI referrers, cosign signatures and attestations).
    referrers: bool = True
    _convert: ClassVar[dict[str, Convert]] = {
        "sources": _records(Source),
        "destinations": _records(Destination),
        "tags": _optional(_record(TagFilter)),
        "platforms": _platforms,
        "rate_limits": _record(RateLimits),
        "referrers": _flag,
    }


def parse_spec(data: Any, destinations: Sequence[Destination] = ()) -> SyncSpec:
    """A SyncSpec from parsed YAML/JSON: the ocipush shape (`sources`, `destinations`), or skopeo-sync's (registry
    names as keys) with `destinations` given here. Raises UsageError with the first problem found."""
    if not isinstance(data, dict):
        raise UsageError("sync file: expected a mapping at the top level")
    if "sources" not in data:
        data = {"sources": [source for registry, entry in data.items() for source in _from_skopeo(registry, entry)]}
    if destinations:
        data = {**data, "destinations": list(destinations)}
    try:
        return _build(SyncSpec, data, "")
    except _Invalid as exc:
        raise UsageError(f"sync file: {exc}") from None


def _from_skopeo(registry: str, entry: Any) -> list[dict[str, Any]]:
    """skopeo-sync's per-registry entry (`images`, `images-by-tag-regex`, `images-by-semver`) as ocipush sources."""
    if not isinstance(entry, dict):
        raise UsageError(f"sync file: {registry}: expected a mapping")
    unknown = set(entry) - {"images", "images-by-tag-regex", "images-by-semver", "tls-verify"}
    if unknown:
        raise UsageError(f"sync file: {registry}: unsupported key {sorted(unknown)[0]!r}")
    if entry.get("tls-verify") is False:
        raise UsageError(f"sync file: {registry}: tls-verify: false: pass --insecure {registry} instead")
    sources: list[dict[str, Any]] = []
    if entry.get("images"):
        sources.append({"registry": registry, "images": entry["images"]})
    for repo, regex in (entry.get("images-by-tag-regex") or {}).items():
        sources.append({"registry": registry, "repositories": [repo], "tags": {"include": [regex]}})
    for repo, semver in (entry.get("images-by-semver") or {}).items():
        sources.append({"registry": registry, "repositories": [repo], "tags": {"semver": semver}})
    return sources


def load_spec(path: str, destinations: Sequence[Destination] = ()) -> SyncSpec:
    """Read a sync file. JSON is YAML too, and a file that parses as JSON (a generated one, usually) is read without
    loading PyYAML; anything else goes through YAML's safe loader (libyaml's when installed)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except ValueError:
        data = _yaml(path, text)
    return parse_spec(data, destinations)


def _yaml(path: str, text: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise UsageError(f"sync file {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
