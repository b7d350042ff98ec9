"""Pieces every transfer command shares: registry flags, progress rendering, result output."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

from ocipush.errors import UsageError

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ocipush.progress import ProgressCallback, ProgressEvent
    from ocipush.registry.options import RegistryOptions
    from ocipush.transfer import TransferResult


# C0 and C1 controls, DEL, and the bidi overrides that reorder what a terminal shows.
_UNPRINTABLE = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]} | {
    c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
}


def printable(text: str) -> str:
    """Text that came from a server (an error message, a tag, a repository name) made safe to print: control
    characters become visible escapes, so that it can neither drive the terminal nor fake a line of output."""
    return text.translate(_UNPRINTABLE)


def add_registry_arguments(
    parser: argparse.ArgumentParser, transfers: bool = True, signing_key: bool = False
) -> None:
    """Registry access and output flags; `transfers`: also --jobs and --chunk-size (commands that move blobs);
    `signing_key`: the command's own --key is a signing key (as in cosign), so the mTLS pair is only spelled
    --tls-cert/--tls-key there."""
    group = parser.add_argument_group("registry access")
    group.add_argument("--username", "-u", help="registry user name (password from --password-stdin)")
    group.add_argument("--password-stdin", action="store_true", help="read the registry password from stdin")
    group.add_argument(
        "--insecure",
        action="append",
        default=[],
        metavar="HOST",
        help="HOST may use TLS without verification, or plain HTTP when it has no TLS",
    )
    group.add_argument("--ca-file", help="trust this CA bundle for TLS")
    cert, key = (["--tls-cert"], ["--tls-key"]) if signing_key else (["--cert", "--tls-cert"], ["--key", "--tls-key"])
    group.add_argument(*cert, dest="cert", metavar="FILE", help="client certificate (PEM) for mTLS registries")
    group.add_argument(*key, dest="tls_key", metavar="FILE", help="the client certificate's private key (PEM)")
    group.add_argument("--certs-dir", metavar="DIR", help="docker-style certs.d: DIR/HOST/ca.crt, client.cert, "
                       "client.key (default: /etc/docker/certs.d, /etc/containers/certs.d and the user's)")  # fmt: skip
    group.add_argument(
        "--endpoint", action="append", default=[], metavar="HOST=URL", help="send requests for HOST to URL"
    )
    group.add_argument("--aws-profile", "--profile", dest="aws_profile", metavar="PROFILE",
                       help="AWS profile for ECR tokens (default: AWS_PROFILE or the default chain)")  # fmt: skip
    if transfers:
        group.add_argument("--jobs", "-j", type=int, default=4, help="blobs transferred in parallel (default 4)")
        group.add_argument("--chunk-size", type=int, metavar="MiB", help="upload chunk size (default 32, minimum 5)")
    group.add_argument(
        "--deadline",
        metavar="SECONDS",
        help="a registry must answer each request within SECONDS of the last byte sent, and send each MiB of a "
        "blob within SECONDS (default 300; 0 for none; env OCIPUSH_DEADLINE)",
    )
    group.add_argument("--cache-dir", help="where journals and work files go (default ~/.cache/ocipush or /tmp)")
    output = parser.add_argument_group("output")
    output.add_argument("--quiet", "-q", action="store_true", help="print only the result")
    output.add_argument("--json", action="store_true", help="print the result as JSON")


def registry_options(args: argparse.Namespace) -> RegistryOptions:
    from ocipush.registry.options import MIN_CHUNK_SIZE, RegistryOptions, parse_deadline

    endpoints = {}
    for item in args.endpoint:
        host, sep, url = item.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise UsageError(f"--endpoint {item!r}: expected HOST=http(s)://ADDRESS")
        endpoints[host] = url.rstrip("/")
    if bool(args.cert) != bool(args.tls_key):
        raise UsageError("a client certificate needs both --cert and --key")
    jobs, chunk_size = getattr(args, "jobs", 4), getattr(args, "chunk_size", None)
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    password = None
    if args.password_stdin:
        if not args.username:
            raise UsageError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
    elif args.username:
        raise UsageError("--username needs --password-stdin (passwords are never taken as arguments)")
    options = RegistryOptions.from_env(
        insecure=set(args.insecure),
        ca_file=args.ca_file,
        cert_file=args.cert,
        key_file=args.tls_key,
        certs_dir=args.certs_dir,
        endpoints=endpoints,
        username=args.username,
        password=password,
        aws_profile=args.aws_profile,
        jobs=jobs,
        cache_dir=args.cache_dir,
    )
    if args.deadline is not None:
        options.deadline = parse_deadline(args.deadline, "--deadline")
    if chunk_size is not None:
        if chunk_size * (1 << 20) < MIN_CHUNK_SIZE:
            raise UsageError("--chunk-size must be at least 5 (MiB)")
        options.chunk_size = chunk_size << 20
    return options


def byte_size(text: str) -> int:
    """An argparse type: bytes, with an optional K, M, G or T suffix (powers of 1024)."""
    number, unit = text.strip().upper().rstrip("B") or "x", 0
    if number[-1:] in ("K", "M", "G", "T"):
        number, unit = number[:-1], "KMGT".index(number[-1]) + 1
    try:
        value = int(float(number) * (1 << (10 * unit)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 500M, 2G, 1048576)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a size must be positive")
    return value


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


class ProgressPrinter:
    """A progress bar rewritten in place on a terminal. Otherwise (CI logs) plain lines: one per blob event, one per
    active blob every PLAIN_SECONDS or PLAIN_SHARE of it, and the time and rate on `done`."""

    BAR = 24
    REDRAW_SECONDS = 0.1
    PLAIN_SECONDS = 5.0
    PLAIN_SHARE = 0.10

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._lock = threading.Lock()
        self._totals: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._started = time.monotonic()
        self._drawn = 0.0
        self._closed = False
        self._begun: dict[str, tuple[float, int]] = {}  # digest -> (when, bytes held) at start or resume
        self._said: dict[str, tuple[float, int]] = {}  # digest -> (when, bytes) of its last plain line

    def __call__(self, event: ProgressEvent) -> None:
        if self.quiet:
            return
        with self._lock:
            if self._closed:  # the command is over (maybe failed): workers still finishing stay silent
                return
            if event.digest:
                if event.total is not None:
                    self._totals[event.digest] = event.total
                self._done[event.digest] = max(event.done, self._done.get(event.digest, 0))
            if self.tty:
                self._draw(force=event.kind != "progress")
            else:
                self._plain(event)

    def _plain(self, event: ProgressEvent) -> None:
        now, digest = time.monotonic(), event.digest
        if event.kind in ("start", "resume"):
            self._begun[digest] = self._said[digest] = (now, event.done)
        if event.kind == "progress":
            said_at, said_bytes = self._said.get(digest, (now, 0))
            step = (event.done - said_bytes) / event.total if event.total else 0.0
            if now - said_at < self.PLAIN_SECONDS and step < self.PLAIN_SHARE:
                return
            self._said[digest] = (now, event.done)
            share = f"{event.done / event.total:4.0%}  " if event.total else ""
            detail = f"  {share}{_size(event.done)} / {_size(event.total)}{self._rate(digest, event.done, now)}"
        else:
            detail = f"  {_size(event.total)}"
            if event.kind == "done" and digest in self._begun:
                detail += f"  in {now - self._begun[digest][0]:.1f} s{self._rate(digest, event.done, now)}"
            detail += f" ({printable(event.message)})" if event.message else ""
        sys.stderr.write(f"{event.kind:8} {digest[:19] or '?'}{detail}\n")

    def _rate(self, digest: str, done: int, now: float) -> str:
        began_at, began_bytes = self._begun.get(digest, (self._started, 0))
        return f"  {_size(int((done - began_bytes) / max(now - began_at, 1e-3)))}/s"

    def _draw(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < self.REDRAW_SECONDS:
            return
        self._drawn = now
        done, total = sum(self._done.values()), sum(self._totals.values())
        finished = sum(1 for d, n in self._done.items() if n >= self._totals.get(d, 1 << 62))
        share = done / total if total else 0.0
        filled = round(share * self.BAR)
        rate = done / max(now - self._started, 1e-3)
        line = (f"\r[{'#' * filled}{'.' * (self.BAR - filled)}] {share:4.0%}  {finished}/{len(self._totals)} blobs  "
                f"{_size(done)} / {_size(total)}  {_size(int(rate))}/s")  # fmt: skip
        sys.stderr.write(line.ljust(90))
        sys.stderr.flush()

    def finish(self) -> None:
        with self._lock:
            if self.tty and not self.quiet and self._totals and not self._closed:
                self._draw(force=True)
                sys.stderr.write("\n")
            self._closed = True


def progress_for(args: argparse.Namespace) -> tuple[ProgressCallback, ProgressPrinter]:
    printer = ProgressPrinter(args.quiet)
    return printer, printer


def blob_summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "no blobs"


def emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(text)


def run_and_report(
    args: argparse.Namespace, verb: str, target: str, call: Callable[[ProgressCallback], TransferResult]
) -> int:
    """Run one transfer (`call` gets the progress callback) with the command's progress printer, then print its
    result: mutate, rebase, flatten and the index commands."""
    progress, printer = progress_for(args)
    try:
        result = call(progress)
    finally:
        printer.finish()
    return report_transfer(args, verb, target, result)


def report_transfer(
    args: argparse.Namespace, verb: str, target: str, result: TransferResult, extra: dict[str, Any] | None = None
) -> int:
    """The result of push, pull, copy and build-push: one JSON shape for all (`extra` adds keys), or a line
    naming what moved and every tag set (saying so when `latest` was taken because no tag was given)."""
    data = {
        "target": target,
        "digest": result.digest,
        "mediaType": result.media_type,
        "size": result.size,
        "tags": result.tags,
        "blobs": result.counts,
        "createdRepository": result.created_repository,
        "referrers": result.referrers,
        **({"convertedFrom": result.converted_from} if result.converted_from else {}),
        **(extra or {}),
    }
    if result.converted_from and not args.quiet and not args.json:
        print(f"note: converted, so the digest is new (the source is {result.converted_from})", file=sys.stderr)
    if args.quiet or args.json:
        emit(args, data, result.digest)
        return 0
    lines = [f"{verb} {target}@{result.digest} ({blob_summary(result.counts)})"]
    if result.created_repository:
        lines.insert(0, f"created repository {_repository(target)} (it did not exist)")
    if result.tags:
        defaulted = "latest" in result.tags and not _names_tag(target)
        note = " (no tag given: latest is the default)" if defaulted else ""
        lines.append(f"tags: {', '.join(result.tags)}{note}")
    print("\n".join(lines))
    return 0


def _names_tag(target: str) -> bool:
    from ocipush.reference import Reference, parse_location

    try:
        location = parse_location(target, default_tag=None)
    except UsageError:
        return True
    return not isinstance(location, Reference) or location.tag is not None


def _repository(target: str) -> str:
    from ocipush.reference import Reference, parse_location

    location = parse_location(target)
    return f"{location.registry}/{location.repository}" if isinstance(location, Reference) else target


def local_location(path: str) -> str:
    """crane's habit: a directory is an OCI layout, a file a docker archive; prefixed locations pass through (an
    unknown prefix is refused when parsed); anything else is a missing path."""
    from ocipush.reference import has_prefix

    if has_prefix(path):
        return path
    if os.path.isdir(path):
        return f"oci:{path}"
    if os.path.isfile(path):
        return f"docker-archive:{path}"
    # Never read a missing path as a Docker Hub name (`nope_dir` is docker.io/library/nope_dir).
    raise UsageError(
        f"{path}: no such file or directory (expected an OCI layout directory or a docker archive; "
        "to push from a registry, write docker://REF)"
    )
