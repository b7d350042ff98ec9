"""`ocipush login | logout`: store or remove registry credentials, docker-config compatible."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ocipush.cli.common import add_registry_arguments, emit, registry_options


def register(subparsers: Any) -> None:
    login = subparsers.add_parser(
        "login",
        help="check credentials against a registry and store them (docker config or its credential helper)",
        description="Check the credentials against the registry, then store them where docker would: the "
        "credential helper the docker config names (credHelpers, credsStore), else its auths "
        "($DOCKER_CONFIG/config.json or ~/.docker/config.json). The password is read from stdin.",
    )
    login.add_argument("server", metavar="HOST", help="registry host, e.g. ghcr.io or localhost:5000")
    add_registry_arguments(login, transfers=False)
    login.set_defaults(handler=_login)
    logout = subparsers.add_parser("logout", help="remove the stored credentials of a registry")
    logout.add_argument("server", metavar="HOST")
    add_registry_arguments(logout, transfers=False)
    logout.set_defaults(handler=_logout)


def _login(args: argparse.Namespace) -> int:
    from ocipush import api
    from ocipush.errors import UsageError

    if not args.username:
        raise UsageError("login needs --username (and the password on stdin with --password-stdin)")
    if not args.password_stdin:
        if not sys.stdin.isatty():
            raise UsageError("pass --password-stdin to read the password from stdin")
        import getpass

        password = getpass.getpass(f"Password for {args.username} at {args.server}: ")
        options = registry_options(argparse.Namespace(**{**vars(args), "username": None}))
    else:
        options = registry_options(args)
        password = options.password or ""
    stored = api.login(args.server, args.username, password, options=options)
    emit(args, {"server": args.server, "storedIn": stored}, f"Login Succeeded (credentials stored in {stored})")
    return 0


def _logout(args: argparse.Namespace) -> int:
    from ocipush import api

    removed = api.logout(args.server, options=registry_options(args))
    text = f"Removed login credentials for {args.server}" if removed else f"Not logged in to {args.server}"
    emit(args, {"server": args.server, "removed": removed}, text)
    return 0
