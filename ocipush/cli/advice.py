"""What to do next, added to a library error's message by the CLI: the library names what went wrong; the flags
and commands that would help come from the error's `cli_hint`, or from what this command was asked to do."""

from __future__ import annotations

import argparse

from ocipush.errors import NotFoundError, OcipushError

_PUSHES = ("push", "copy", "build-push")


def advice(args: argparse.Namespace, exc: OcipushError) -> str:
    """A "; …" suffix for the error line, or ""."""
    if exc.cli_hint:
        return f"; {exc.cli_hint}"
    if isinstance(exc, NotFoundError) and exc.code == "NAME_UNKNOWN" and getattr(args, "command", None) in _PUSHES:
        repository = _ecr_repository(exc.reference)
        if repository and not getattr(args, "create_repo", False):
            return (f"; ECR repositories are not created by a push: pass --create-repo, "
                    f"or run `ocipush ecr create-repository {repository}` first")  # fmt: skip
    return ""


def _ecr_repository(reference: str | None) -> str | None:
    from ocipush.errors import UsageError
    from ocipush.reference import parse_reference
    from ocipush.registry.ecr import parse_ecr_host

    if not reference:
        return None
    try:
        parsed = parse_reference(reference)
    except UsageError:
        return None
    return parsed.repository if parse_ecr_host(parsed.registry) else None
