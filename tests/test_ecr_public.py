"""ECR Public's bearer flow, which no local registry reproduces (a challenge with scope="aws"): a scripted server
(tests/support/hostile.py) stands in for public.ecr.aws, reached through `--endpoint`, which also routes the
challenge's realm on that host. Anonymous when no AWS credentials are configured, as `docker pull public.ecr.aws/...`
is."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from support.hostile import HostileHandler, HostileRegistry, Reply

from ocipush import api
from ocipush.digest import sha256_of
from ocipush.registry import ecr
from ocipush.registry.options import RegistryOptions

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_of(b"{}"), "size": 2},
        "layers": [],
    }
).encode()
CHALLENGE = 'Bearer realm="https://public.ecr.aws/token/",service="public.ecr.aws",scope="aws"'


MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def public_ecr() -> Iterator[HostileRegistry]:
    server = HostileRegistry()
    server.start()
    yield server
    server.stop()


def _options(server: HostileRegistry) -> RegistryOptions:
    return RegistryOptions(endpoints={ecr.ECR_PUBLIC_HOST: server.url}, environment=False)


def _serve(server: HostileRegistry, path: str, token: str) -> list[tuple[str, dict[str, str]]]:
    """The manifest at `path` for requests bearing `token`, a challenge otherwise; the token requests' paths and
    headers (lower-case names) are kept."""
    asked: list[tuple[str, dict[str, str]]] = []

    def manifest(handler: HostileHandler) -> Reply:
        if handler.headers.get("authorization") != f"Bearer {token}":
            return Reply(401, headers={"WWW-Authenticate": CHALLENGE})
        return Reply(body=MANIFEST, headers={"Content-Type": MEDIA_TYPE})

    def token_service(handler: HostileHandler) -> Reply:
        asked.append((handler.path, {k.lower(): v for k, v in handler.headers.items()}))
        return Reply(body=json.dumps({"token": token}).encode(), headers={"Content-Type": "application/json"})

    server.on("GET", path, manifest).on("GET", "/token/", token_service)
    return asked


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ecr, "ECR_TOKENS", ecr.EcrTokenCache())
    monkeypatch.setattr(ecr.EcrTokenCache, "public_credentials", lambda self, profile=None: None)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))


def test_anonymous_pull_token_with_aws_scope(no_aws: None, public_ecr: HostileRegistry) -> None:
    asked = _serve(public_ecr, "/v2/lambda/python/manifests/3.12", "anon-token")
    document = api.fetch_manifest("public.ecr.aws/lambda/python:3.12", options=_options(public_ecr))
    assert document.digest == sha256_of(MANIFEST)
    assert len(asked) == 1
    query = parse_qs(urlsplit(asked[0][0]).query)
    assert query["scope"] == ["repository:lambda/python:pull", "aws"]
    assert query["service"] == ["public.ecr.aws"]
    assert "authorization" not in asked[0][1]  # anonymous


def test_ecr_public_token_from_boto3_is_used_at_the_token_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, public_ecr: HostileRegistry
) -> None:
    from ocipush.registry.credentials import Credentials

    monkeypatch.setattr(ecr, "ECR_TOKENS", ecr.EcrTokenCache())
    monkeypatch.setattr(
        ecr.EcrTokenCache, "public_credentials", lambda self, profile=None: Credentials("AWS", "public-password")
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
    asked = _serve(public_ecr, "/v2/me/app/manifests/v1", "t")
    api.fetch_manifest("public.ecr.aws/me/app:v1", options=_options(public_ecr))
    expected = "Basic " + base64.b64encode(b"AWS:public-password").decode()
    assert len(asked) == 1 and asked[0][1]["authorization"] == expected
