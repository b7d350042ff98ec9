"""`ocipush lambda-check REF`: what AWS Lambda would refuse in an image, every problem at once, before deploying."""

from __future__ import annotations

import argparse
import json
import sys

from ocipush.cli.common import add_registry_arguments, registry_options


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "lambda-check",
        help="check that AWS Lambda can run an image (single platform, architecture, handler, size)",
        description="Check an image against what AWS Lambda requires of a container image: one single-platform "
        "manifest, Docker v2s2 or OCI media types, amd64 or arm64, an entrypoint or command, the handler module "
        "present on a Lambda base, at most 10 GB uncompressed. Exit 11 when anything is wrong.",
    )
    parser.add_argument("image", metavar="REF", help="registry reference or oci:PATH[:tag]")
    parser.add_argument("--platform", metavar="OS/ARCH", help="the function's architecture, e.g. linux/arm64")
    add_registry_arguments(parser)
    parser.set_defaults(handler=run_lambda_check)


def run_lambda_check(args: argparse.Namespace) -> int:
    from ocipush.api import lambda_check
    from ocipush.errors import CheckFailedError

    problems = lambda_check(args.image, args.platform, registry_options(args))
    if args.json:
        from dataclasses import asdict  # here: dataclasses pulls in inspect, which --help need not pay for

        print(json.dumps({"image": args.image, "ok": not problems, "problems": [asdict(p) for p in problems]}))
    elif not args.quiet:
        for problem in problems:
            print(f"problem: {problem}", file=sys.stderr)
        if not problems:
            print(f"{args.image}: AWS Lambda can run this image")
    if problems:
        raise CheckFailedError(f"{args.image}: {len(problems)} problem(s) for AWS Lambda")
    return 0
