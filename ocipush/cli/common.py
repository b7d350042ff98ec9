"""Pieces every transfer command shares: registry flags, progress rendering, result output."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ocipush.errors import UsageError

if TYPE_CHECKING:
    from ocipush.progress import ProgressCallback, ProgressEvent
    from ocipush.registry.options import RegistryOptions


# C0 and C1 controls, DEL, and the bidi overrides that reorder what a terminal shows.
_UNPRINTABLE = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]} | {
    c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
}


def printable(text: str) -> str:
    """Text that came from a server (an error message, a tag, a repository name) made safe to print: control
    characters become visible escapes, so that it can neither drive the terminal nor fake a line of output."""
    return text.translate(_UNPRINTABLE)


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
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
    group.add_argument(
        "--endpoint", action="append", default=[], metavar="HOST=URL", help="send requests for HOST to URL"
    )
    group.add_argument("--aws-profile", help="AWS profile for ECR tokens (default: the boto3 default chain)")
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
    if args.jobs < 1:
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
        endpoints=endpoints,
        username=args.username,
        password=password,
        aws_profile=args.aws_profile,
        jobs=args.jobs,
        cache_dir=args.cache_dir,
    )
    if args.deadline is not None:
        options.deadline = parse_deadline(args.deadline, "--deadline")
    if args.chunk_size is not None:
        if args.chunk_size * (1 << 20) < MIN_CHUNK_SIZE:
            raise UsageError("--chunk-size must be at least 5 (MiB)")
        options.chunk_size = args.chunk_size << 20
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
    """A progress bar rewritten in place on a terminal; one plain line per blob event otherwise (CI logs)."""

    BAR = 24
    REDRAW_SECONDS = 0.1

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._lock = threading.Lock()
        self._totals: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._started = time.monotonic()
        self._drawn = 0.0
        self._closed = False

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
            elif event.kind != "progress":
                detail = f" ({printable(event.message)})" if event.message else ""
                sys.stderr.write(f"{event.kind:8} {event.digest[:19] or '?'}  {_size(event.total)}{detail}\n")

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
