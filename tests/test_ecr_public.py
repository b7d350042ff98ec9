"""ECR Public's bearer flow, which no local registry reproduces (a challenge with scope="aws"): simulated with respx.
Anonymous when no AWS credentials are configured, as `docker pull public.ecr.aws/...` is."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
import respx

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


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ecr, "ECR_TOKENS", ecr.EcrTokenCache())
    monkeypatch.setattr(ecr.EcrTokenCache, "public_credentials", lambda self, profile=None: None)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))


@respx.mock
def test_anonymous_pull_token_with_aws_scope(no_aws: None) -> None:
    def manifest(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != "Bearer anon-token":
            return httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE})
        return httpx.Response(
            200, content=MANIFEST, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        )

    respx.get("https://public.ecr.aws/v2/lambda/python/manifests/3.12").mock(side_effect=manifest)
    token = respx.get("https://public.ecr.aws/token/").mock(
        return_value=httpx.Response(200, json={"token": "anon-token"})
    )
    document = api.fetch_manifest("public.ecr.aws/lambda/python:3.12", options=RegistryOptions())
    assert document.digest == sha256_of(MANIFEST)
    sent = token.calls.last.request
    assert sent.url.params.get_list("scope") == ["repository:lambda/python:pull", "aws"]
    assert sent.url.params["service"] == "public.ecr.aws"
    assert "authorization" not in sent.headers  # anonymous


@respx.mock
def test_ecr_public_token_from_boto3_is_used_at_the_token_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ocipush.registry.credentials import Credentials

    monkeypatch.setattr(ecr, "ECR_TOKENS", ecr.EcrTokenCache())
    monkeypatch.setattr(
        ecr.EcrTokenCache, "public_credentials", lambda self, profile=None: Credentials("AWS", "public-password")
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "none"))
    respx.get("https://public.ecr.aws/v2/me/app/manifests/v1").mock(
        side_effect=[
            httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE}),
            httpx.Response(
                200, content=MANIFEST, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
            ),
        ]
    )
    token = respx.get("https://public.ecr.aws/token/").mock(return_value=httpx.Response(200, json={"token": "t"}))
    api.fetch_manifest("public.ecr.aws/me/app:v1", options=RegistryOptions())
    expected = "Basic " + base64.b64encode(b"AWS:public-password").decode()
    assert token.calls.last.request.headers["authorization"] == expected
