"""Checks of the arguments the public functions take: one helper per kind of argument, shared by every function,
so that a wrong type or value is a `UsageError` naming the argument instead of an AttributeError deep inside.

Functions that use the values as given (the image operations) are wrapped with `@checked`, which applies the helper
named by each parameter's name; `ocipush.api` calls the helpers itself because it uses what they return."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping

from ocipush.digest import is_digest
from ocipush.errors import UsageError
from ocipush.reference import Reference, is_valid_tag, parse_location
from ocipush.registry.options import RegistryOptions

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from ocipush.locations import Location
    from ocipush.models import Platform
    from ocipush.ops.convert import Conversion

    T = TypeVar("T")
    F = TypeVar("F", bound=Callable[..., Any])


def _kind(value: object) -> str:
    return type(value).__name__


def location(value: object, name: str, default_tag: str | None = "latest") -> Location:
    """A location string (`REF`, `oci:DIR`, …) parsed, or a parsed `Location` as it is."""
    if isinstance(value, str):
        return parse_location(value, default_tag)
    if isinstance(value, Reference):
        return value
    from ocipush.locations import ArchiveLocation, LayoutLocation, OciArchiveLocation  # here: a reference needs none

    if isinstance(value, LayoutLocation | ArchiveLocation | OciArchiveLocation):
        return value
    raise UsageError(f"{name}: expected a location string such as 'registry/repo:tag' or 'oci:DIR', got {_kind(value)}")


def reference(value: object, name: str) -> Reference:
    found = location(value, name)
    if not isinstance(found, Reference):
        raise UsageError(f"{name}: {value} is not a registry reference")
    return found


def tags(value: object) -> list[str]:
    """Extra tags: a list (or other iterable) of valid tag strings. A lone string is refused, not split."""
    if isinstance(value, str | bytes):
        raise UsageError(f"tags: expected a list of tags, got the string {value!r} (write tags=[{value!r}])")
    if not isinstance(value, Iterable):
        raise UsageError(f"tags: expected a list of tags, got {_kind(value)}")
    found = list(value)
    for tag in found:
        if not isinstance(tag, str):
            raise UsageError(f"tags: expected strings, got {_kind(tag)} {tag!r}")
        if not is_valid_tag(tag):
            raise UsageError(f"invalid tag {tag!r}")
    return found


def platform(value: object) -> Platform | None:
    """`os/arch[/variant]` or a `Platform`; None for "not given"."""
    if value is None:
        return None
    from ocipush.models import Platform, parse_platform  # the models only when a platform is given

    if isinstance(value, Platform):
        return value
    if isinstance(value, str):
        return parse_platform(value)
    raise UsageError(f"platform: expected 'os/arch[/variant]' or a Platform, got {_kind(value)}")


def options(value: object) -> RegistryOptions:
    """The options to use: those given (checked), or a default `RegistryOptions()` (which reads OCIPUSH_*)."""
    if value is None:
        return RegistryOptions()
    if not isinstance(value, RegistryOptions):
        raise UsageError(f"options: expected RegistryOptions, got {_kind(value)}")
    value.check()
    return value


def callback(value: T | None, name: str) -> T | None:
    if value is not None and not callable(value):
        raise UsageError(f"{name}: expected a function, got {_kind(value)}")
    return value


def digest(value: object, name: str) -> str:
    if not isinstance(value, str) or not is_digest(value):
        raise UsageError(f"{name}: invalid digest {value!r}: expected 'sha256:<64 hex digits>'")
    return value


def conversion(value: object) -> Conversion | None:
    """A `Conversion` (layer compression, manifest format), or None for the default."""
    if value is None:  # the default: no need to load the conversion machinery (models, decompressors)
        return None
    from ocipush.ops.convert import Conversion

    if isinstance(value, Conversion):
        return value
    raise UsageError(f"conversion: expected ocipush.Conversion(compression=..., format=...), got {_kind(value)}")


def flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{name}: expected True or False, got {_kind(value)}")
    return value


def text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise UsageError(f"{name}: expected a non-empty string, got {_kind(value)}")
    return value


def instance(value: object, cls: type[T], name: str) -> T:
    if not isinstance(value, cls):
        raise UsageError(f"{name}: expected {cls.__name__}, got {_kind(value)}")
    return value


def strings(value: object, name: str) -> list[str]:
    """A list of non-empty strings (a lone string is refused, not split into characters)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise UsageError(f"{name}: expected a list of strings, got {_kind(value)}")
    found = list(value)
    for item in found:
        text(item, name)
    return found


def _platforms(value: object, name: str) -> None:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise UsageError(f"{name}: expected a list of platforms, got {_kind(value)}")
    for item in value:
        platform(item)


def _annotations(value: object, name: str) -> None:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise UsageError(f"{name}: expected a mapping of strings to strings, got {_kind(value)}")


def _writable(value: object, name: str) -> None:
    if not callable(getattr(value, "write", None)):
        raise UsageError(f"{name}: expected a binary file open for writing, got {_kind(value)}")


def _build_spec(value: object, name: str) -> None:
    from ocipush.build import BuildSpec

    instance(value, BuildSpec, name)


def _layer_compression(value: object, name: str) -> None:
    if value not in ("gzip", "zstd", "none"):
        raise UsageError(f"{name}: expected 'gzip', 'zstd' or 'none', got {value!r}")


# The check for each parameter name the public functions use. None is always let through for a parameter whose
# default is None.
_BY_NAME: dict[str, Callable[[Any, str], object]] = {
    "options": lambda value, name: options(value),
    "progress": callback,
    "platform": lambda value, name: platform(value),
    "set_platform": lambda value, name: platform(value),
    "tags": lambda value, name: tags(value),
    "platforms": _platforms,
    "manifests": strings,
    "digests": strings,
    "annotations": _annotations,
    "digest": digest,
    "out": _writable,
    "spec": _build_spec,
    "compression": _layer_compression,
    **{name: text for name in ("reference", "target", "new_base", "old_base", "output", "path")},
}


def checked(function: F) -> F:
    """`function` with each argument checked by the helper its parameter name calls for (see `_BY_NAME`)."""
    import inspect

    signature = inspect.signature(function)
    optional = {name for name, p in signature.parameters.items() if p.default is None}

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise UsageError(f"{function.__name__}: {exc}") from None
        for name, value in bound.arguments.items():
            check = _BY_NAME.get(name)
            if check is not None and not (value is None and name in optional):
                check(value, name)
        return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]  # F's signature, kept by functools.wraps
