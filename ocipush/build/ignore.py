""".dockerignore matching with docker's semantics (moby/patternmatcher), not gitignore's.

Differences from gitignore that matter: a pattern is anchored at the context root (`*.pyc` only matches at the
top; `**/*.pyc` matches everywhere), a leading or trailing `/` is cleaned away, and a path is excluded when it or
any parent directory matches. Patterns are applied in order; the last matching one wins, and `!` re-includes."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from ocipush.errors import BuildError

# Regex characters that are literal in Go's filepath.Match.
_LITERAL = set(".+()|{}$^")

State = tuple[bool, ...]


@dataclass(frozen=True)
class _Pattern:
    """One line of an ignore file, compiled."""

    text: str
    regex: re.Pattern[str]
    negated: bool


def _translate(pattern: str) -> str:
    """A `**`/`*`/`?`/`[...]` pattern as an anchored regex over '/'-separated paths."""
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                # '**' at the end matches everything; elsewhere any number of whole directories, even none.
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1 if i < n and pattern[i] in "!^" else i)
            if end < 0:
                raise BuildError(f"invalid ignore pattern {pattern!r}: unclosed '['")
            body = pattern[i:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        elif ch in _LITERAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    out.append("$")
    return "".join(out)


def parse_patterns(lines: list[str]) -> list[_Pattern]:
    patterns = []
    for raw in lines:
        if raw.startswith("#"):
            continue
        text = raw.strip()
        if not text:
            continue
        negated = text.startswith("!")
        if negated:
            text = text[1:].strip()
            if not text:
                raise BuildError("invalid ignore pattern '!': nothing to re-include")
        cleaned = posixpath.normpath(text)
        while len(cleaned) > 1 and cleaned.startswith("/"):
            cleaned = cleaned[1:]
        patterns.append(_Pattern(raw.strip(), re.compile(_translate(cleaned)), negated))
    return patterns


class IgnoreMatcher:
    """Decides which paths (relative to the layer directory, '/'-separated) are excluded.

    A walk carries a `State` per directory (which patterns matched it or an ancestor) so a path is checked
    against each pattern once instead of once per parent."""

    def __init__(self, lines: list[str]) -> None:
        self.patterns = parse_patterns(lines)
        self.has_negations = any(p.negated for p in self.patterns)

    @classmethod
    def from_file(cls, path: str) -> IgnoreMatcher:
        try:
            with open(path, encoding="utf-8") as f:
                return cls(f.read().splitlines())
        except OSError as exc:
            raise BuildError(f"cannot read ignore file {path}: {exc.strerror}") from None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def initial_state(self) -> State:
        return (False,) * len(self.patterns)

    def check(self, path: str, parent: State) -> tuple[bool, State]:
        """(excluded, state to pass to this path's children)."""
        hits = tuple(inherited or bool(p.regex.match(path)) for p, inherited in zip(self.patterns, parent, strict=True))
        excluded = False
        for pattern, hit in zip(self.patterns, hits, strict=True):
            if hit:
                excluded = not pattern.negated
        return excluded, hits

    def excludes(self, path: str) -> bool:
        """Whether `path` is excluded, checking its parents as a walk would."""
        state = self.initial_state()
        parts = path.strip("/").split("/")
        excluded = False
        for i in range(len(parts)):
            excluded, state = self.check("/".join(parts[: i + 1]), state)
        return excluded
