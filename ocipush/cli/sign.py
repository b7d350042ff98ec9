"""`ocipush generate-key-pair | sign | verify`: cosign-compatible signatures with key files or AWS KMS keys."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from ocipush.cli.common import add_registry_arguments, emit, registry_options
from ocipush.cli.supply import key_values
from ocipush.errors import UsageError

KEY_HELP = "cosign.key, a PEM private key, or awskms:///alias/NAME (password: COSIGN_PASSWORD or a prompt)"


def register(subparsers: Any) -> None:
    pair = subparsers.add_parser(
        "generate-key-pair",
        help="write cosign.key (encrypted) and cosign.pub, in cosign's format",
        description="Generate an ECDSA P-256 key pair: cosign.key encrypted with scrypt + NaCl secretbox under "
        "COSIGN_PASSWORD (or a prompt), cosign.pub as a PEM public key. cosign reads both.",
    )
    pair.add_argument("--output-dir", default=".", help="where to write them (default: here)")
    pair.set_defaults(handler=_generate)

    sign = subparsers.add_parser(
        "sign",
        help="sign an image's manifest digest as cosign does",
        description="Sign the digest REF names (never the tag) and store the signature as cosign does: a "
        "simple-signing payload layer in the sha256-<hex>.sig manifest, appended to earlier signatures.",
    )
    sign.add_argument("reference")
    sign.add_argument("--key", required=True, help=KEY_HELP)
    sign.add_argument("-a", "--annotation", action="append", default=[], metavar="K=V",
                      help="a claim in the signed payload's optional section")  # fmt: skip
    sign.add_argument("--referrer", action="store_true", help="store it as an OCI 1.1 referrer instead of the tag")
    add_registry_arguments(sign, signing_key=True)
    sign.set_defaults(handler=_sign)

    verify = subparsers.add_parser(
        "verify",
        help="verify an image's cosign signatures with a key (exit 11 when none is valid)",
        description="Check every signature of REF (cosign's .sig tag and signature referrers): the signature over "
        "the payload's exact bytes, its docker-manifest-digest, its docker-reference and the -a claims. Exit 0 "
        "when at least one is valid, 11 when none is (or none exists). Keyless (Fulcio/Rekor) signatures need "
        "online services and are not checked.",
    )
    verify.add_argument("reference")
    verify.add_argument("--key", required=True, help="cosign.pub, a key file, or awskms:///alias/NAME")
    verify.add_argument("-a", "--annotation", action="append", default=[], metavar="K=V",
                        help="require this claim in the payload")  # fmt: skip
    verify.add_argument("--allow-other-repository", action="store_true",
                        help="accept a payload naming another repository (an image copied here)")  # fmt: skip
    add_registry_arguments(verify, signing_key=True)
    verify.set_defaults(handler=_verify)


def prompt_password(confirm: bool = False) -> bytes:
    """COSIGN_PASSWORD when set, else asked on the terminal (twice when making a key)."""
    value = os.environ.get("COSIGN_PASSWORD")
    if value is not None:
        return value.encode()
    if not sys.stdin.isatty():
        raise UsageError("set COSIGN_PASSWORD: there is no terminal to ask for the key's password")
    first = getpass.getpass("Enter password for private key: ")
    if confirm and getpass.getpass("Enter password for private key again: ") != first:
        raise UsageError("the passwords do not match")
    return first.encode()


def _generate(args: argparse.Namespace) -> int:
    from ocipush import supply

    key_path, pub_path = supply.generate_key_pair(args.output_dir, lambda: prompt_password(confirm=True))
    print(f"Private key written to {key_path}\nPublic key written to {pub_path}", file=sys.stderr)
    return 0


def _sign(args: argparse.Namespace) -> int:
    from ocipush import supply

    result = supply.sign_image(
        args.reference, args.key, annotations=key_values(args.annotation, "-a"), referrer=args.referrer,
        password=prompt_password, options=registry_options(args),
    )  # fmt: skip
    where = result.tag or f"referrer {result.signature_manifest}"
    data = {"digest": result.digest, "payload": result.payload, "signatureManifest": result.signature_manifest,
            "tag": result.tag}  # fmt: skip
    emit(args, data, result.digest if args.quiet else f"signed {result.digest} ({where})")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from ocipush import supply
    from ocipush.errors import VerificationError
    from ocipush.sign.verify import Verification

    try:
        report = supply.verify_image(
            args.reference, args.key, annotations=key_values(args.annotation, "-a"),
            allow_other_repository=args.allow_other_repository, password=prompt_password,
            options=registry_options(args),
        )  # fmt: skip
    except VerificationError as exc:
        if args.json and isinstance(exc.report, Verification):
            print(json.dumps(exc.report.to_dict(), indent=2))
        raise
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif not args.quiet:
        for check in report.checks:
            print(f"{'valid  ' if check.valid else 'invalid'} {check.where}: {check.reason}", file=sys.stderr)
        print(f"verified {report.digest} ({len(report.valid)} valid signature(s))")
    return 0


def add_sign_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("signing")
    group.add_argument("--sign-key", metavar="KEY", help=f"sign what was pushed: {KEY_HELP}")
    group.add_argument("--sign-referrer", action="store_true", help="store that signature as an OCI 1.1 referrer")


def sign_pushed(args: argparse.Namespace, target: str, digest: str, options: Any) -> str | None:
    """With --sign-key: sign `digest` in `target`'s repository; returns the signature manifest's digest."""
    if not args.sign_key:
        return None
    from ocipush import supply
    from ocipush.reference import parse_reference

    reference = parse_reference(target).with_digest(digest)
    result = supply.sign_image(reference, args.sign_key, referrer=args.sign_referrer, password=prompt_password,
                         options=options)  # fmt: skip
    if not args.quiet and not args.json:
        print(f"signed {digest} ({result.tag or 'referrer ' + result.signature_manifest})", file=sys.stderr)
    return result.signature_manifest
