"""Client certificates against a real distribution registry that requires them (http.tls.clientcas): --cert/--key,
and docker's certs.d layout (HOST/ca.crt, client.cert, client.key)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.tls import KeyPair, issue_cert, make_ca
from transferhelpers import make_image, options, run_cli

from ocipush import api
from ocipush.errors import OcipushError, UsageError
from ocipush.localregistry import LocalRegistry


@pytest.fixture
def mtls(tmp_path: Path) -> Iterator[tuple[LocalRegistry, KeyPair, KeyPair]]:
    """(registry requiring a client certificate, the CA clients must trust, a client certificate it accepts)."""
    ca = make_ca(tmp_path / "tls")
    server = issue_cert(ca, tmp_path / "tls", "registry")
    clients_ca = make_ca(tmp_path / "clients", "clients-ca")
    client = issue_cert(clients_ca, tmp_path / "clients", "client", client=True)
    with LocalRegistry(tls_cert=server.cert_path, tls_key=server.key_path, tls_client_ca=clients_ca.cert_path,
                       log_path=tmp_path / "registry.log") as running:  # fmt: skip
        yield running, ca, client


def test_client_certificate_from_flags(mtls: tuple[LocalRegistry, KeyPair, KeyPair], tmp_path: Path) -> None:
    registry, ca, client = mtls
    source, descriptor = make_image(tmp_path / "src")
    ref = f"{registry.host}/mtls/app:v1"
    tls = ["--ca-file", str(ca.cert_path), "--cert", str(client.cert_path), "--key", str(client.key_path)]
    pushed = run_cli("push", source.path, ref, *tls, "--cache-dir", str(tmp_path / "c"))
    assert pushed.returncode == 0, pushed.stderr
    assert run_cli("digest", ref, *tls).stdout.strip() == descriptor.digest

    # Without the certificate the registry refuses the connection (the fault is the registry's own).
    with pytest.raises(OcipushError):
        api.resolve_digest(ref, options=options(tmp_path, ca_file=str(ca.cert_path), max_attempts=1))
    assert "tls: client didn't provide a certificate" in registry.log_path.read_text()
    half = run_cli("digest", ref, "--ca-file", str(ca.cert_path), "--cert", str(client.cert_path))
    assert half.returncode == 2 and "needs both --cert and --key" in half.stderr


def test_client_certificate_from_certs_d(mtls: tuple[LocalRegistry, KeyPair, KeyPair], tmp_path: Path) -> None:
    registry, ca, client = mtls
    host_dir = tmp_path / "certs.d" / registry.host
    host_dir.mkdir(parents=True)
    shutil.copy(ca.cert_path, host_dir / "ca.crt")
    shutil.copy(client.cert_path, host_dir / "client.cert")
    shutil.copy(client.key_path, host_dir / "client.key")
    source, descriptor = make_image(tmp_path / "src")
    ref = f"{registry.host}/certsd/app:v1"
    certs = ["--certs-dir", str(tmp_path / "certs.d")]
    pushed = run_cli("push", source.path, ref, *certs, "--cache-dir", str(tmp_path / "c"))
    assert pushed.returncode == 0, pushed.stderr
    pulled = api.pull(ref, f"oci:{tmp_path / 'out'}", options=options(tmp_path, certs_dir=str(tmp_path / "certs.d")))
    assert pulled.digest == descriptor.digest

    (host_dir / "client.key").unlink()
    with pytest.raises(UsageError, match=r"client\.cert in certs\.d/.* has no matching \.key"):
        api.resolve_digest(ref, options=options(tmp_path, certs_dir=str(tmp_path / "certs.d")))
