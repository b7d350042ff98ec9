"""The "ocipush" logger hierarchy: silent in a library by default; -v / --debug on the CLI; never a secret or a
presigned query string in what is logged. The fault proxy stands in for what a distribution registry never does
(a 503 to retry, an S3-style presigned redirect)."""

from __future__ import annotations

import base64
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support.handles import RegistryHandle
from support.proxy import FaultProxy, status
from transferhelpers import make_image, options, run_cli

from ocipush import api
from ocipush.localregistry import LocalRegistry

Factory = Callable[..., FaultProxy]


def test_library_logs_under_ocipush_and_is_silent_by_default(
    registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = fault_proxy(registry.url)
    source, _ = make_image(tmp_path / "src")
    fault = proxy.add_fault("HEAD", r"/blobs/", status(503))
    script = (
        "import sys; from ocipush import api; from ocipush.registry.options import RegistryOptions\n"
        f"api.push('oci:{source.path}:v1', '{proxy.host}/quiet:v1', options=RegistryOptions(cache_dir=sys.argv[1]))"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "cache")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert fault.applied == 1 and done.stderr == ""  # a retry happened, and nothing was printed

    fault = proxy.add_fault("HEAD", r"/blobs/", status(503))
    with caplog.at_level(logging.DEBUG, logger="ocipush"):
        api.push(f"oci:{source.path}:v1", f"{proxy.host}/quiet2:v1", options=options(tmp_path))
    assert fault.applied == 1
    retries = [r for r in caplog.records if r.name == "ocipush.registry.retry"]
    assert len(retries) == 1 and retries[0].levelno == logging.WARNING
    assert "HTTP 503; retrying in" in retries[0].getMessage()
    assert any(r.name == "ocipush.registry.transport" and "-> 201" in r.getMessage() for r in caplog.records)


def test_cli_verbose_and_debug_never_log_secrets_or_query_strings(
    auth_registry: RegistryHandle, fault_proxy: Factory, tmp_path: Path
) -> None:
    proxy = fault_proxy(auth_registry.url, redirect_blobs=True)
    user, password = auth_registry.auth
    secrets = [password, base64.b64encode(f"{user}:{password}".encode()).decode(), "X-Amz-Signature", "=test"]
    source, _ = make_image(tmp_path / "src")
    login = ("--username", user, "--password-stdin", "--cache-dir", str(tmp_path / "cache"))
    ref = f"{proxy.host}/logs/app:v1"

    pushed = run_cli("-v", "push", source.path, ref, *login, stdin=password)
    assert pushed.returncode == 0, pushed.stderr
    assert f"ocipush: info: credentials for {proxy.host}: the given username" in pushed.stderr
    assert " DEBUG: " not in pushed.stderr and "-> 20" not in pushed.stderr  # request lines only with --debug
    mounted = run_cli("copy", ref, f"{proxy.host}/logs/other:v1", *login, "--verbose", stdin=password)
    assert "mounted sha256:" in mounted.stderr and "from logs/app" in mounted.stderr

    pulled = run_cli("pull", ref, str(tmp_path / "out"), *login, "--debug", stdin=password)
    assert pulled.returncode == 0, pulled.stderr
    assert proxy.stats.statuses[("GET", "blob", 307)] >= 1  # blobs came through the presigned redirect
    assert re.search(r"ocipush\.registry\.transport DEBUG: GET http://\S+/blobs/sha256:\w+ -> 307", pulled.stderr)
    assert "?…" in pulled.stderr  # the query was there, and was cut
    for output in (pushed.stderr, mounted.stderr, pulled.stderr):
        for secret in secrets:
            assert secret not in output

    quiet = run_cli("digest", ref, *login, stdin=password)
    assert quiet.stderr == ""


def test_cli_logging_lasts_one_command(registry: LocalRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    from ocipush.cli import main

    before = list(logging.getLogger("ocipush").handlers)
    assert main(["digest", "--debug", f"{registry.host}/none:v1"]) == 3
    assert "/v2/none/manifests/v1 -> 404" in capsys.readouterr().err
    # main() may run again in this process (tests, embedding programs): nothing of the CLI's stays installed, so a
    # library call afterwards prints nothing
    assert logging.getLogger("ocipush").handlers == before and logging.getLogger("ocipush").propagate
    logging.getLogger("ocipush.registry.retry").warning("after the command")
    assert capsys.readouterr().err == ""


def test_cli_warnings_show_without_verbose_though_logging_loads_only_for_them(
    registry: LocalRegistry, fault_proxy: Factory, tmp_path: Path
) -> None:
    """Without -v the CLI sets logging up only when the first warning comes (a command without one never imports
    it): a retry's warning must still show, in a command that loads nothing else of logging (tags) and in one
    whose thread pool loaded logging before the warning came (push)."""
    proxy = fault_proxy(registry.url)
    source, _ = make_image(tmp_path / "src")
    head = proxy.add_fault("HEAD", r"/blobs/", status(503))
    pushed = run_cli("push", "--quiet", f"oci:{source.path}:v1", f"{proxy.host}/warn:v1", "--cache-dir",
                     str(tmp_path / "cache"))  # fmt: skip
    listing = proxy.add_fault("GET", r"/tags/list", status(503))
    listed = run_cli("tags", f"{proxy.host}/warn")
    assert head.applied == 1 and listing.applied == 1
    assert pushed.returncode == 0 and listed.returncode == 0 and listed.stdout == "v1\n"
    for done in (pushed, listed):
        warnings = [line for line in done.stderr.splitlines() if line.startswith("ocipush: warning: ")]
        assert len(warnings) == 1 and "HTTP 503; retrying in" in warnings[0], done.stderr
