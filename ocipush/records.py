"""Typed records read from JSON-like data: the base of the document models and the build settings.

A record is a dataclass whose annotations say what each field holds; `model_validate` converts a mapping into it
and refuses a value of the wrong shape with `Invalid`, which names where it was. The converters are derived from
the annotations once per class, on first use. This replaces pydantic on the paths every push, pull and build
takes: importing pydantic and building its schemas cost ~80 ms per process, as much as a short command's whole
run. Conversion is strict: a string is never read as a number, nor a number as a string.

Field options go in the dataclass field's metadata (`options`): `alias`, the key in the data; `check`, a function
of the value returning it (perhaps normalised) or raising ValueError, run whenever a record is made, in code too;
`before`, a function of the raw value, run before conversion.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar, Union

Convert = Callable[[Any, str], Any]  # (value as parsed, where it is) -> the field's value
R = TypeVar("R", bound="Record")


class Invalid(ValueError):
    """A value of the wrong shape; `where` is its dotted place in the data ('' at the top)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


def options(
    *,
    alias: str | None = None,
    check: Callable[[Any], Any] | None = None,
    before: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """A field's metadata: `field(default=..., metadata=options(alias="mediaType"))`."""
    return {"alias": alias, "check": check, "before": before}


def at(where: str, name: object) -> str:
    """The dotted place of `name` inside `where`."""
    return f"{where}.{name}" if where else str(name)


def kind(value: Any) -> str:
    """A value as an error message shows it: its type and repr, cut to keep the message on one line."""
    if value is None:
        return "nothing"
    shown = repr(value)
    return f"{type(value).__name__} {shown if len(shown) <= 60 else shown[:57] + '...'}"


class Record:
    """Base of the records: subclasses are dataclasses (keyword-only). Unknown keys are refused, except by an
    `OpenRecord`, which keeps them."""

    extra_allowed: ClassVar[bool] = False
    _plan: ClassVar[_Plan | None] = None

    def __post_init__(self) -> None:
        for name, where, check in self._steps().checks:
            # a check may normalise the value (a port gets its protocol): frozen records take it too
            object.__setattr__(self, name, _checked(check, getattr(self, name), where))

    @classmethod
    def model_validate(cls: type[R], data: Any, where: str = "") -> R:
        """The record `data` (a mapping, keyed by alias or by field name) describes."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise Invalid(where, f"expected an object, not {kind(data)}")
        values: dict[str, Any] = {}
        known: set[str] = set()
        for name, alias, convert, before, required in cls._steps().fields:
            found = alias if alias in data else name if name in data else None
            if found is None:
                if required:
                    raise Invalid(at(where, alias), "required, and missing")
                continue
            known.add(found)
            value = data[found]
            if before is not None:
                value = _checked(before, value, at(where, alias))
            values[name] = convert(value, at(where, alias))
        if len(known) < len(data):
            unknown = {k: v for k, v in data.items() if k not in known}
            if not cls.extra_allowed:
                raise Invalid(at(where, next(iter(unknown))), "unknown setting")
            values["extra"] = unknown
        try:
            return cls(**values)
        except Invalid as exc:
            raise Invalid(at(where, exc.where), exc.message) from None

    @classmethod
    def model_validate_json(cls: type[R], raw: bytes | str) -> R:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Invalid("", f"not JSON: {exc}") from None
        return cls.model_validate(data)

    def model_copy(self: R, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> R:
        """A copy with `update` (field names) applied: converted no further, checked again."""
        source: Any = copy.deepcopy(self) if deep else self
        copied: R = dataclasses.replace(source, **(update or {}))
        return copied

    def to_json_dict(self) -> dict[str, Any]:
        """The record as JSON data under its aliases; fields (and kept unknown keys) that are None are left out."""
        out: dict[str, Any] = {}
        for name, alias, *_ in self._steps().fields:
            value = getattr(self, name)
            if value is not None:
                out[alias] = _plain(value)
        out.update({k: _plain(v) for k, v in getattr(self, "extra", {}).items() if v is not None})
        return out

    def to_json_bytes(self) -> bytes:
        """Canonical compact JSON of a document we create (sorted keys give stable digests)."""
        data = self.to_json_dict()
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def _steps(cls) -> _Plan:
        plan = cls.__dict__.get("_plan")
        if plan is None:
            plan = cls._plan = _Plan(cls)
        return plan


@dataclasses.dataclass(kw_only=True)
class OpenRecord(Record):
    """A record that keeps unknown keys (`extra`), so that a document we rewrite, a config we edit, loses nothing."""

    extra_allowed: ClassVar[bool] = True
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)


class _Plan:
    """How one record class converts and checks its fields, derived from its annotations on first use."""

    def __init__(self, cls: type[Record]) -> None:
        hints = typing.get_type_hints(cls)
        self.fields: list[tuple[str, str, Convert, Callable[[Any], Any] | None, bool]] = []
        self.checks: list[tuple[str, str, Callable[[Any], Any]]] = []
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            if field.name == "extra":
                continue
            meta, alias = field.metadata, field.metadata.get("alias") or field.name
            required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            self.fields.append((field.name, alias, converter(hints[field.name]), meta.get("before"), required))
            if meta.get("check") is not None:
                self.checks.append((field.name, alias, meta["check"]))


def _checked(check: Callable[[Any], Any], value: Any, where: str) -> Any:
    try:
        return check(value)
    except Invalid:
        raise
    except ValueError as exc:
        raise Invalid(where, str(exc)) from None


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json_dict()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def converter(hint: Any) -> Convert:
    """The converter for a type annotation (the subset the records use)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return lambda value, where: value
    if origin in (Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        if len(present) != 1:
            raise TypeError(f"records support only X | None unions, not {hint}")
        inner = converter(present[0])
        return lambda value, where: None if value is None else inner(value, where)
    if origin is Literal:
        return _choice(args)
    if origin is list:
        return _sequence(converter(args[0]))
    if origin is tuple:
        return _fixed(tuple(converter(a) for a in args))
    if origin is dict:
        return _mapping(converter(args[0]), converter(args[1]))
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.model_validate
    if hint in _SCALARS:
        return _SCALARS[hint]
    raise TypeError(f"records cannot hold {hint}")


def _scalar(expected: type, words: str) -> Convert:
    def convert(value: Any, where: str) -> Any:
        # bool is an int to Python, not to a JSON reader
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise Invalid(where, f"expected {words}, not {kind(value)}")
        return value

    return convert


_SCALARS: dict[Any, Convert] = {
    str: _scalar(str, "a string"),
    int: _scalar(int, "an integer"),
    bool: _scalar(bool, "true or false"),
}


def _choice(options: tuple[Any, ...]) -> Convert:
    def convert(value: Any, where: str) -> Any:
        if value not in options:
            raise Invalid(where, f"expected one of {', '.join(map(str, options))}, not {kind(value)}")
        return value

    return convert


def _sequence(item: Convert) -> Convert:
    def convert(value: Any, where: str) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise Invalid(where, f"expected a list, not {kind(value)}")
        return [item(v, at(where, i)) for i, v in enumerate(value)]

    return convert


def _fixed(items: tuple[Convert, ...]) -> Convert:
    def convert(value: Any, where: str) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple) or len(value) != len(items):
            raise Invalid(where, f"expected a list of {len(items)}, not {kind(value)}")
        return tuple(c(v, at(where, i)) for i, (c, v) in enumerate(zip(items, value, strict=True)))

    return convert


def _mapping(key_of: Convert, value_of: Convert) -> Convert:
    def convert(value: Any, where: str) -> dict[Any, Any]:
        if not isinstance(value, Mapping):
            raise Invalid(where, f"expected an object, not {kind(value)}")
        return {key_of(k, where): value_of(v, at(where, k)) for k, v in value.items()}

    return convert
