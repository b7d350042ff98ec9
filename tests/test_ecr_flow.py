"""The ECR flow: the registry password comes from moto's GetAuthorizationToken through real boto3, the ECR host is
mapped to a real distribution registry whose htpasswd holds that password. ECR-only answers (403 expired token,
NAME_UNKNOWN for a missing repository, 405 on DELETE) come from the fault proxy, since no local registry says them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from support.handles import RegistryHandle
from support.proxy import FaultProxy, Respond, expired_token
from transferhelpers import layout_blobs, make_image, options

from ocipush import api
from ocipush.aws import ecr_client
from ocipush.layout import OCILayout
from ocipush.registry import ecr
from ocipush.registry.options import RegistryOptions

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.fixture
def token_fetches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts real GetAuthorizationToken calls (the process-wide cache is emptied first)."""
    calls: list[str] = []
    monkeypatch.setattr(ecr, "ECR_TOKENS", ecr.EcrTokenCache())
    original = ecr.EcrTokenCache._fetch

    def counting(host: ecr.EcrHost, profile: str | None) -> object:
        calls.append(host.region)
        return original(host, profile)

    monkeypatch.setattr(ecr.EcrTokenCache, "_fetch", staticmethod(counting))
    return calls


def ecr_options(tmp_path: Path, url: str) -> RegistryOptions:
    return options(tmp_path, endpoints={ECR_HOST: url})


@pytest.mark.parametrize(
    "host",
    [
        "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
        "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
        "123456789012.dkr-ecr.eu-west-1.on.aws",
        "123456789012.dkr-ecr-fips.us-east-2.on.aws",
        "123456789012.dkr.ecr.eu-west-3.amazonaws.com:443",
        "123456789012.dkr-ecr.ap-south-1.on.aws:443",
    ],
)
def test_every_ecr_host_form_is_recognised(host: str) -> None:
    found = ecr.parse_ecr_host(host)
    assert found is not None and found.account == "123456789012"
    assert found.region == host.split(".")[3 if ".dkr.ecr" in host else 2]
    assert ecr.parse_ecr_host("ghcr.io") is None and ecr.is_ecr_public("public.ecr.aws")


def test_push_pull_delete_with_ecr_token(
    ecr_registry: RegistryHandle, tmp_path: Path, token_fetches: list[str]
) -> None:
    opts = ecr_options(tmp_path, ecr_registry.url)
    source, descriptor = make_image(tmp_path / "src", big=6 << 20)
    api.push(f"oci:{source.path}:v1", f"{ECR_HOST}/team/app:v1", options=opts)
    api.pull(f"{ECR_HOST}/team/app:v1", f"oci:{tmp_path / 'dst'}", options=opts)
    assert layout_blobs(OCILayout(str(tmp_path / "dst"))) == layout_blobs(source)
    assert api.delete(f"{ECR_HOST}/team/app:v1", options=opts) == descriptor.digest
    assert token_fetches == ["us-east-1"]  # one token, cached across all three operations


def test_expired_token_is_refreshed_and_request_retried(
    ecr_registry: RegistryHandle,
    fault_proxy: Callable[..., FaultProxy],
    tmp_path: Path,
    token_fetches: list[str],
) -> None:
    proxy = fault_proxy(ecr_registry.url, ecr=True)
    source, descriptor = make_image(tmp_path / "src")
    opts = ecr_options(tmp_path, proxy.url)
    api.push(f"oci:{source.path}:v1", f"{ECR_HOST}/app:v1", options=opts)
    proxy.add_fault("GET", r"/manifests/", expired_token())
    proxy.add_fault("HEAD", r"/manifests/", expired_token())
    assert api.resolve_digest(f"{ECR_HOST}/app:v1", options=opts) == descriptor.digest
    assert api.fetch_manifest(f"{ECR_HOST}/app:v1", options=opts).digest == descriptor.digest
    assert len(token_fetches) == 3  # the first, then one refresh after each 403


def test_create_repo_on_name_unknown(
    ecr_registry: RegistryHandle,
    fault_proxy: Callable[..., FaultProxy],
    tmp_path: Path,
    token_fetches: list[str],
) -> None:
    proxy = fault_proxy(ecr_registry.url, ecr=True)
    body = b'{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name \'fresh/app\' does not exist"}]}'
    proxy.add_fault("POST", r"/blobs/uploads/", Respond(404, body, (("Content-Type", "application/json"),)))
    from ocipush.ecr_admin.repositories import RepositoryOptions, ensure_repository

    created: list[bool] = []

    def create() -> bool:
        created.append(ensure_repository("fresh/app", "us-east-1", RepositoryOptions(scan_on_push=True)))
        return True

    source, descriptor = make_image(tmp_path / "src")
    result = api.push(
        f"oci:{source.path}:v1",
        f"{ECR_HOST}/fresh/app:v1",
        options=ecr_options(tmp_path, proxy.url),
        create_repository=create,
    )
    assert result.digest == descriptor.digest and created == [True]
    repos = boto3.client("ecr", region_name="us-east-1").describe_repositories(repositoryNames=["fresh/app"])
    assert repos["repositories"][0]["imageScanningConfiguration"]["scanOnPush"] is True


def test_delete_falls_back_to_batch_delete_image_when_v2_delete_is_refused(
    ecr_registry: RegistryHandle,
    fault_proxy: Callable[..., FaultProxy],
    tmp_path: Path,
    token_fetches: list[str],
) -> None:
    proxy = fault_proxy(ecr_registry.url, ecr=True)
    opts = ecr_options(tmp_path, proxy.url)
    source, descriptor = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{ECR_HOST}/app:v1", options=opts)
    body = b'{"errors":[{"code":"UNSUPPORTED","message":"Invalid parameter at \'imageDigest\'"}]}'
    proxy.add_fault("DELETE", r"/manifests/", Respond(405, body, (("Content-Type", "application/json"),)))
    client = ecr_client(region="us-east-1")
    # moto's ECR does not hold what the registry holds; the Stubber checks the call against the service model.
    with Stubber(client) as stub:
        stub.add_response(
            "batch_delete_image",
            {"imageIds": [{"imageDigest": descriptor.digest}], "failures": []},
            {"repositoryName": "app", "imageIds": [{"imageDigest": descriptor.digest}]},
        )
        assert api.delete(f"{ECR_HOST}/app:v1", options=opts) == descriptor.digest
        stub.assert_no_pending_responses()


def test_zero_byte_layers_are_refused_before_ecr_sees_them(
    ecr_registry: RegistryHandle, tmp_path: Path, token_fetches: list[str]
) -> None:
    import imagehelpers as ih

    from ocipush.errors import UsageError
    from ocipush.mediatypes import OCI_LAYER
    from ocipush.models import Descriptor, Manifest, ManifestDocument

    layout = OCILayout(str(tmp_path / "src"), create=True)
    base = ih.build_image(layout, [([ih.file("a", "x")], "gzip")], tag=None)
    manifest = layout.read_manifest(base).manifest
    empty = Descriptor(media_type=OCI_LAYER, digest=layout.write_blob(b""), size=0)
    bad = Manifest(config=manifest.config, layers=[*manifest.layers, empty])
    layout.add_manifest(ManifestDocument.from_model(bad), ["v1"])
    with pytest.raises(UsageError, match="zero-byte"):
        api.push(f"oci:{layout.path}:v1", f"{ECR_HOST}/app:v1", options=ecr_options(tmp_path, ecr_registry.url))


def test_ecr_lost_part_answer_with_a_plausible_range(
    ecr_registry: RegistryHandle, fault_proxy: Callable[..., FaultProxy], tmp_path: Path, token_fetches: list[str]
) -> None:
    """Part 2's answer is lost after ECR stored it; ECR's frozen Range then says exactly where part 2 began, which
    looks consistent. On an ECR host that count is never trusted: the refused retry leads to part 3, not to a
    new session."""
    from support.proxy import LoseAnswer

    proxy = fault_proxy(ecr_registry.url, ecr=True)
    source, descriptor = make_image(tmp_path / "src", big=70 << 20)
    fault = proxy.add_fault("PATCH", r"/blobs/uploads/", LoseAnswer(), skip=1)
    api.push(f"oci:{source.path}:v1", f"{ECR_HOST}/app:v1", options=ecr_options(tmp_path, proxy.url))
    assert fault.applied == 1
    assert proxy.stats.requests[("POST", "upload")] == 3  # one session per blob: none started over
    assert api.resolve_digest(f"{ECR_HOST}/app:v1", options=ecr_options(tmp_path, proxy.url)) == descriptor.digest
