"""What moto does not implement (lifecycle preview, pull-through cache rules, account settings, pagination of
describe_repositories) and AWS errors moto cannot produce, through botocore's Stubber: it checks every request
against the real ECR service model, so a wrong parameter name or type fails the test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber
from ecr_conftest_helpers import run

from ocipush.aws import MAX_ATTEMPTS, aws_error, clear_client_cache, ecr_client
from ocipush.ecr_admin.lifecycle import parse_policy
from ocipush.ecr_admin.lifecycle_policies import preview_on_server
from ocipush.ecr_admin.registry_settings import BLOB_MOUNTING
from ocipush.ecr_admin.repositories import describe_repositories
from ocipush.errors import AuthError, AwsError, NotFoundError, TransportError

pytestmark = pytest.mark.usefixtures("aws_env")
Capsys = pytest.CaptureFixture[str]
PUSHED = datetime(2026, 5, 1, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


@pytest.fixture
def stub() -> Iterator[Stubber]:
    """A Stubber on the very client ocipush's code gets from `ecr_client()`; every queued answer must be used."""
    clear_client_cache()
    with Stubber(ecr_client()) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
    clear_client_cache()


def test_server_preview_waits_and_collects_every_page(stub: Stubber) -> None:
    policy = parse_policy(
        '{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": '
        '"imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}'
    )
    stub.add_response(
        "start_lifecycle_policy_preview",
        {"repositoryName": "app", "status": "IN_PROGRESS"},
        {"repositoryName": "app", "lifecyclePolicyText": policy.to_json()},
    )
    stub.add_response("get_lifecycle_policy_preview", {"status": "IN_PROGRESS"}, {"repositoryName": "app"})
    stub.add_response("get_lifecycle_policy_preview", {"status": "COMPLETE"}, {"repositoryName": "app"})
    result = {
        "imageDigest": DIGEST,
        "imagePushedAt": PUSHED,
        "action": {"type": "EXPIRE"},
        "appliedRulePriority": 1,
    }
    stub.add_response(
        "get_lifecycle_policy_preview",
        {"status": "COMPLETE", "previewResults": [result], "nextToken": "page-2"},
        {"repositoryName": "app"},
    )
    stub.add_response(
        "get_lifecycle_policy_preview",
        {"status": "COMPLETE", "previewResults": [{**result, "imageDigest": "sha256:" + "b" * 64}]},
        {"repositoryName": "app", "nextToken": "page-2"},
    )
    waits: list[str] = []
    sleeps: list[float] = []
    expirations = preview_on_server("app", policy, on_wait=waits.append, sleep=sleeps.append)
    assert [e.image.digest for e in expirations] == [DIGEST, "sha256:" + "b" * 64]
    assert {e.rule_priority for e in expirations} == {1}
    assert waits == ["IN_PROGRESS"] and sleeps == [3.0]


def test_server_preview_cli_uses_the_stored_policy(stub: Stubber, capsys: Capsys) -> None:
    stub.add_response(
        "start_lifecycle_policy_preview",
        {"repositoryName": "app", "status": "IN_PROGRESS"},
        {"repositoryName": "app"},
    )
    stub.add_response("get_lifecycle_policy_preview", {"status": "COMPLETE"}, {"repositoryName": "app"})
    stub.add_response(
        "get_lifecycle_policy_preview",
        {
            "status": "COMPLETE",
            "previewResults": [
                {
                    "imageDigest": DIGEST,
                    "imageTags": ["old"],
                    "imagePushedAt": PUSHED,
                    "appliedRulePriority": 3,
                    "action": {"type": "EXPIRE"},
                }
            ],
        },
        {"repositoryName": "app"},
    )
    result = run(capsys, "preview-lifecycle-policy", "app")
    assert result.code == 0
    header, row = result.out.splitlines()
    assert header.split() == ["RULE", "TAGS", "DIGEST", "PUSHED", "WHY"]
    assert row.split()[:3] == ["3", "old", DIGEST]


def test_pull_through_cache_rules(stub: Stubber, capsys: Capsys) -> None:
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub"
    rule = {
        "ecrRepositoryPrefix": "docker-hub",
        "upstreamRegistryUrl": "registry-1.docker.io",
        "upstreamRegistry": "docker-hub",
        "credentialArn": secret,
        "registryId": "123456789012",
        "createdAt": PUSHED,
    }
    created_rule = {key: value for key, value in rule.items() if key != "upstreamRegistry"}
    stub.add_response(
        "create_pull_through_cache_rule",
        created_rule,
        {
            key: rule[key]
            for key in ("ecrRepositoryPrefix", "upstreamRegistryUrl", "upstreamRegistry", "credentialArn")
        },
    )
    stub.add_response("describe_pull_through_cache_rules", {"pullThroughCacheRules": [rule]}, {})
    stub.add_response("delete_pull_through_cache_rule", created_rule, {"ecrRepositoryPrefix": "docker-hub"})
    created = run(
        capsys,
        "create-pull-through-cache-rule",
        "--prefix",
        "docker-hub",
        "--upstream-url",
        "registry-1.docker.io",
        "--upstream-registry",
        "docker-hub",
        "--credential-arn",
        secret,
        "--json",
    )
    assert created.code == 0, created.err
    assert created.json()[0]["prefix"] == "docker-hub"
    listed = run(capsys, "describe-pull-through-cache-rules")
    assert listed.out.splitlines()[1].split()[:3] == ["docker-hub", "registry-1.docker.io", "docker-hub"]
    assert run(capsys, "delete-pull-through-cache-rule", "--prefix", "docker-hub").code == 0


def test_missing_pull_through_cache_rule(stub: Stubber, capsys: Capsys) -> None:
    stub.add_client_error(
        "delete_pull_through_cache_rule",
        "PullThroughCacheRuleNotFoundException",
        "not found",
        expected_params={"ecrRepositoryPrefix": "quay"},
    )
    result = run(capsys, "delete-pull-through-cache-rule", "--prefix", "quay")
    assert result.code == NotFoundError.exit_code
    assert result.err == (
        "ocipush: error: delete-pull-through-cache-rule quay in us-east-1: "
        "no pull-through cache rule has that prefix\n"
    )


def test_account_setting_blob_mounting(stub: Stubber, capsys: Capsys) -> None:
    stub.add_response(
        "put_account_setting",
        {"name": BLOB_MOUNTING, "value": "ENABLED"},
        {"name": BLOB_MOUNTING, "value": "ENABLED"},
    )
    stub.add_response(
        "get_account_setting", {"name": BLOB_MOUNTING, "value": "ENABLED"}, {"name": BLOB_MOUNTING}
    )
    assert (
        run(capsys, "put-account-setting", BLOB_MOUNTING, "ENABLED").out
        == "name=BLOB_MOUNTING value=ENABLED\n"
    )
    assert run(capsys, "get-account-setting", BLOB_MOUNTING, "--json").json() == {
        "name": BLOB_MOUNTING,
        "value": "ENABLED",
    }


def test_describe_repositories_follows_next_token(stub: Stubber) -> None:
    def repo(name: str) -> dict[str, object]:
        return {
            "repositoryName": name,
            "repositoryArn": f"arn:aws:ecr:us-east-1:123456789012:repository/{name}",
            "registryId": "123456789012",
            "repositoryUri": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}",
        }

    stub.add_response("describe_repositories", {"repositories": [repo("aa")], "nextToken": "t"}, {})
    stub.add_response("describe_repositories", {"repositories": [repo("bb")]}, {"nextToken": "t"})
    assert [r.name for r in describe_repositories()] == ["aa", "bb"]


@pytest.mark.parametrize(
    ("code", "error_class", "text"),
    [
        (
            "AccessDeniedException",
            AuthError,
            "access denied (User is not authorized to perform: ecr:CreateRepository): check the IAM policy",
        ),
        ("ThrottlingException", AwsError, f"still throttled after {MAX_ATTEMPTS} attempts"),
        ("LimitExceededException", AwsError, "an ECR service quota was reached"),
        ("KmsException", AwsError, "KMS refused the key"),
        ("SomethingNewException", AwsError, "SomethingNewException: User is not authorized"),
    ],
)
def test_aws_errors_become_one_line_messages(
    code: str, error_class: type[Exception], text: str, stub: Stubber, capsys: Capsys
) -> None:
    stub.add_client_error(
        "create_repository",
        code,
        "User is not authorized to perform: ecr:CreateRepository.",
        expected_params={
            "repositoryName": "app",
            "imageTagMutability": "MUTABLE",
            "imageScanningConfiguration": {"scanOnPush": False},
            "encryptionConfiguration": {"encryptionType": "AES256"},
        },
    )
    result = run(capsys, "create-repository", "app")
    assert result.code == error_class.exit_code  # type: ignore[attr-defined]
    assert result.err.startswith("ocipush: error: create-repository app in us-east-1: ")
    assert text in result.err and result.err.count("\n") == 1


def test_connection_and_credential_errors() -> None:
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError

    unreachable = aws_error(
        EndpointConnectionError(endpoint_url="https://ecr.example.invalid"),
        action="list-images",
        repository="app",
        region="eu-west-1",
    )
    assert isinstance(unreachable, TransportError)
    assert str(unreachable).startswith("list-images app in eu-west-1: cannot reach the ECR endpoint")
    no_creds = aws_error(
        NoCredentialsError(), action="describe-repositories", repository=None, region="eu-west-1"
    )
    assert isinstance(no_creds, AuthError) and "no AWS credentials found" in str(no_creds)


def test_clients_retry_throttling_adaptively_and_are_cached() -> None:
    client = ecr_client("eu-central-1")
    retries = getattr(client.meta.config, "retries", None)
    assert retries == {"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS}
    assert ecr_client("eu-central-1") is client
    assert ecr_client("eu-central-1", max_attempts=1) is not client
