"""Tags read as semantic versions (`1.2.3`, `v1.2`, `3.19.1-rc1`) and ranges over them (`>=1.2 <2`, `^3.19`,
`~1.2`, `1.x`), as container tags use them: a missing minor or patch reads as 0, a leading `v` is allowed, and
tags that are not versions (`latest`, `bookworm`) never match a range."""

from __future__ import annotations

import re
from collections.abc import Callable

from ocipush.errors import UsageError

_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_CLAUSE = re.compile(r"^(>=|<=|>|<|=|\^|~)?\s*v?(\d+(?:\.(?:\d+|[xX*]))*)(?:-([0-9A-Za-z.-]+))?$")

Identifier = tuple[int, int, str]
Key = tuple[int, int, int, tuple[Identifier, ...]]
Predicate = Callable[[Key], bool]
_RELEASE: tuple[Identifier, ...] = ((2, 0, ""),)  # a release sorts after its pre-releases
_LOWEST: tuple[Identifier, ...] = ((-1, 0, ""),)  # below every pre-release: `<2` excludes 2.0.0-rc1


def _prerelease(text: str | None) -> tuple[Identifier, ...]:
    if not text:
        return _RELEASE
    # semver: numeric identifiers sort numerically, and before alphanumeric ones
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in text.split("."))


def version_key(tag: str) -> Key | None:
    """The sort key of the version a tag names, or None when it is not a version."""
    match = _VERSION.match(tag)
    if not match:
        return None
    major, minor, patch, pre = match.groups()
    return int(major), int(minor or 0), int(patch or 0), _prerelease(pre)


def parse_range(text: str) -> Predicate:
    """A predicate for a range: clauses separated by spaces or commas all hold; `||` separates alternatives."""
    alternatives = [_conjunction(part) for part in text.split("||")]
    return lambda v: any(all(check(v) for check in clauses) for clauses in alternatives)


def _conjunction(text: str) -> list[Predicate]:
    words = re.sub(r"(>=|<=|>|<|=|\^|~)\s+", r"\1", text).replace(",", " ").split()
    if not words:
        raise UsageError(f"semver range {text.strip()!r} is empty")
    return [_clause(word) for word in words]


def _key(parts: list[int], pre: tuple[Identifier, ...]) -> Key:
    major, minor, patch = [*parts, 0, 0, 0][:3]
    return major, minor, patch, pre


def _clause(word: str) -> Predicate:
    match = _CLAUSE.match(word)
    if not match:
        raise UsageError(f"bad semver range clause {word!r} (expected e.g. >=1.2, <2, ^3.19, ~1.2.3, 1.x)")
    operator, core, pre = match.group(1) or "=", match.group(2), match.group(3)
    parts = core.split(".")
    wild = next((i for i, p in enumerate(parts) if p in ("x", "X", "*")), len(parts))
    fixed = [int(p) for p in parts[:wild]]
    low = _key(fixed, _prerelease(pre))
    if operator in ("^", "~") or (operator == "=" and len(fixed) < 3):
        # a span: ^ keeps up to the first non-zero part, ~ the minor (the major when only it is given), a
        # partial version or x-range the parts it names
        if operator == "^":
            keep = next((i + 1 for i, p in enumerate(fixed) if p), len(fixed))
        elif operator == "~":
            keep = min(2, len(fixed))
        else:
            keep = len(fixed)
        if keep == 0:
            return lambda v: True
        upper = fixed[:keep]
        upper[-1] += 1
        high = _key(upper, _LOWEST)
        return lambda v: low <= v < high
    below = _key(fixed, _prerelease(pre) if pre else _LOWEST)
    compare: dict[str, Predicate] = {
        ">=": lambda v: v >= low,
        ">": lambda v: v > low,
        "<=": lambda v: v <= low,
        "<": lambda v: v < below,
        "=": lambda v: v == low,
    }
    return compare[operator]


def in_range(tag: str, predicate: Predicate) -> bool:
    key = version_key(tag)
    return key is not None and predicate(key)
