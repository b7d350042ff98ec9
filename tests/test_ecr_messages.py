"""ECR messages and typed errors: a missing repository names the fixes, a created repository is reported, a
rejected ECR token points at IAM, account and Region, library errors give no CLI advice, and NotFoundError carries
the registry's code and the reference. The ECR host is mapped to a real distribution registry taking moto's token;
NAME_UNKNOWN on push comes from the fault proxy, since a distribution registry creates repositories on push."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from support.handles import RegistryHandle
from support.proxy import FaultProxy, Respond
from transferhelpers import assert_one_line_error, make_image, options, run_cli

from ocipush import api
from ocipush.ecr_admin import RepositoryOptions, create_missing_repository
from ocipush.errors import AuthError, NotFoundError, UsageError
from ocipush.localregistry import LocalRegistry
from ocipush.registry import ecr

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
NAME_UNKNOWN = Respond(
    404,
    b'{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name \'x\' does not exist"}]}',
    (("Content-Type", "application/json"),),
)


@pytest.fixture(autouse=True)
def fresh_token_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ecr, "ECR_TOKENS", ecr.EcrTokenCache())


def _cli_ecr(proxy: FaultProxy, tmp_path: Path) -> list[str]:
    return ["--endpoint", f"{ECR_HOST}={proxy.url}", "--cache-dir", str(tmp_path / "cache")]


def test_missing_repository_names_the_fixes_and_the_error_is_typed(
    ecr_registry: RegistryHandle, fault_proxy: Callable[..., FaultProxy], tmp_path: Path
) -> None:
    proxy = fault_proxy(ecr_registry.url, ecr=True)
    source, _ = make_image(tmp_path / "src")
    fault = proxy.add_fault("POST", r"/blobs/uploads/", NAME_UNKNOWN, times=None)
    done = run_cli("push", "--json", source.path, f"{ECR_HOST}/fresh/app:v1", *_cli_ecr(proxy, tmp_path))
    assert fault.applied >= 1
    assert_one_line_error(done, "--create-repo", "`ocipush ecr create-repository fresh/app`")
    assert done.returncode == 3
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "NAME_UNKNOWN" and error["reference"] == f"{ECR_HOST}/fresh/app"

    with pytest.raises(NotFoundError) as caught:
        api.push(f"oci:{source.path}:v1", f"{ECR_HOST}/fresh/app:v1",
                 options=options(tmp_path, endpoints={ECR_HOST: proxy.url}))  # fmt: skip
    assert caught.value.code == "NAME_UNKNOWN" and caught.value.status == 404
    assert "--create-repo" not in str(caught.value)  # CLI advice belongs to the CLI


def test_push_that_creates_the_repository_says_so(
    ecr_registry: RegistryHandle, fault_proxy: Callable[..., FaultProxy], tmp_path: Path
) -> None:
    proxy = fault_proxy(ecr_registry.url, ecr=True)
    source, _ = make_image(tmp_path / "src")
    first = proxy.add_fault("POST", r"/blobs/uploads/", NAME_UNKNOWN)
    done = run_cli("push", "--json", "--create-repo", source.path, f"{ECR_HOST}/made/app:v1",
                   *_cli_ecr(proxy, tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert first.applied == 1 and json.loads(done.stdout)["createdRepository"] is True
    second = proxy.add_fault("POST", r"/blobs/uploads/", NAME_UNKNOWN)
    text = run_cli("push", "--create-repo", source.path, f"{ECR_HOST}/made2/app:v1", *_cli_ecr(proxy, tmp_path))
    assert second.applied == 1 and text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"created repository {ECR_HOST}/made2/app (it did not exist)\n")

    # The library's ready-made hook does the same for library callers.
    third = proxy.add_fault("POST", r"/blobs/uploads/", NAME_UNKNOWN)
    hook = create_missing_repository(f"{ECR_HOST}/made3/app:v1", RepositoryOptions(scan_on_push=True))
    result = api.push(f"oci:{source.path}:v1", f"{ECR_HOST}/made3/app:v1",
                      options=options(tmp_path, endpoints={ECR_HOST: proxy.url}), create_repository=hook)  # fmt: skip
    assert third.applied == 1 and result.created_repository
    again = api.push(f"oci:{source.path}:v1", f"{ECR_HOST}/made3/app:v2",
                     options=options(tmp_path, endpoints={ECR_HOST: proxy.url}), create_repository=hook)  # fmt: skip
    assert not again.created_repository
    with pytest.raises(UsageError, match="only for Amazon ECR"):
        create_missing_repository("ghcr.io/x/y:1")


def test_rejected_ecr_token_points_at_iam_account_and_region(aws_env: dict[str, str], tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src")
    # A registry that knows user AWS with another password: moto's token is refused as a real ECR would refuse it.
    with LocalRegistry(htpasswd={"AWS": "not-the-token"}) as other, pytest.raises(AuthError) as caught:
        api.push(f"oci:{source.path}:v1", f"{ECR_HOST}/app:v1",
                 options=options(tmp_path, endpoints={ECR_HOST: other.url}))  # fmt: skip
    message = str(caught.value)
    assert "IAM" in message and "account 123456789012" in message and "Region us-east-1" in message
    assert "username and password" not in message


def test_missing_credentials_advice_comes_from_the_cli(auth_registry: RegistryHandle, tmp_path: Path) -> None:
    ref = f"{auth_registry.host}/app:v1"
    no_config = {"DOCKER_CONFIG": str(tmp_path / "none")}
    with pytest.raises(AuthError) as caught:
        api.resolve_digest(ref, options=options(tmp_path, docker_config=str(tmp_path / "none")))
    assert caught.value.missing_credentials and caught.value.host == auth_registry.host
    assert "--password-stdin" not in str(caught.value) and "ocipush login" not in str(caught.value)
    done = run_cli("digest", ref, env=no_config)
    assert_one_line_error(done, "requires credentials", f"`ocipush login {auth_registry.host}`", "--password-stdin")


def test_not_found_tells_repository_from_tag(registry: LocalRegistry, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{registry.host}/there:v1", options=options(tmp_path))
    with pytest.raises(NotFoundError) as tag:
        api.fetch_manifest(f"{registry.host}/there:nope", options=options(tmp_path))
    assert tag.value.code == "MANIFEST_UNKNOWN" and tag.value.reference == f"{registry.host}/there:nope"
    with pytest.raises(NotFoundError) as repository:
        api.list_tags(f"{registry.host}/absent", options=options(tmp_path))
    assert repository.value.code == "NAME_UNKNOWN" and repository.value.reference == f"{registry.host}/absent"
