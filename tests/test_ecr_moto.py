"""`ocipush ecr …` and `ocipush.ecr_admin` against moto's server with real boto3 clients.

The `aws_env` fixture (tests/conftest.py) points boto3 at a per-worker moto server; names are unique because
the server is shared. Registry-wide settings use a Region of their own so they cannot meet another test."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from ecr_conftest_helpers import push_fake_image, run, unique

from ocipush.ecr_admin import RepositoryOptions, ensure_repository
from ocipush.ecr_admin.images import batch_delete_image, describe_images
from ocipush.ecr_admin.models import ImageId
from ocipush.ecr_admin.repositories import describe_repositories
from ocipush.errors import AwsError, NotFoundError, UsageError

pytestmark = pytest.mark.usefixtures("aws_env")
Capsys = pytest.CaptureFixture[str]


def test_create_describe_delete_repository(capsys: Capsys) -> None:
    name = unique("app")
    created = run(
        capsys,
        "create-repository",
        name,
        "--scan-on-push",
        "--image-tag-mutability",
        "IMMUTABLE_WITH_EXCLUSION",
        "--mutability-exclusion",
        "latest",
        "--mutability-exclusion",
        "dev-*",
        "--encryption",
        "KMS",
        "--kms-key",
        "arn:aws:kms:us-east-1:123456789012:key/example",
        "--tag",
        "team=ci",
        "--json",
    )
    assert created.code == 0, created.err
    [repo] = created.json()
    assert repo["name"] == name and repo["scan_on_push"] is True
    assert repo["tag_mutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repo["mutability_exclusions"] == ["latest", "dev-*"]
    assert (repo["encryption"], repo["kms_key"]) == ("KMS", "arn:aws:kms:us-east-1:123456789012:key/example")
    tags = boto3.client("ecr").list_tags_for_resource(resourceArn=repo["arn"])["tags"]
    assert tags == [{"Key": "team", "Value": "ci"}]

    table = run(capsys, "describe-repositories", name)
    assert table.code == 0
    header, row = table.out.splitlines()
    assert header.split()[:2] == ["NAME", "URI"] and row.split()[0] == name

    again = run(capsys, "create-repository", name)
    assert again.code == AwsError.exit_code
    assert (
        again.err == f"ocipush: error: create-repository {name} in us-east-1: the repository already exists; "
        "use it or choose another name\n"
    )

    assert run(capsys, "delete-repository", name).code == 0
    gone = run(capsys, "describe-repositories", name)
    assert gone.code == NotFoundError.exit_code
    assert gone.err.startswith(
        f"ocipush: error: describe-repositories {name} in us-east-1: repository not found"
    )
    assert gone.err.count("\n") == 1


def test_describe_repositories_lists_all(capsys: Capsys) -> None:
    # moto answers in one page; following nextToken is tested with the Stubber (test_ecr_stubbed.py).
    prefix = unique("page")
    names = {f"{prefix}-{i}" for i in range(3)}
    for name in names:
        assert run(capsys, "create-repository", name).code == 0
    listed = run(capsys, "describe-repositories", "--json").json()
    assert names <= {r["name"] for r in listed}


def test_flag_combinations_are_checked_before_aws(capsys: Capsys) -> None:
    name = unique("bad")
    result = run(capsys, "create-repository", name, "--image-tag-mutability", "MUTABLE_WITH_EXCLUSION")
    assert result.code == UsageError.exit_code and "needs at least one exclusion filter" in result.err
    result = run(capsys, "create-repository", name, "--kms-key", "k")
    assert result.code == UsageError.exit_code and "--kms-key needs --encryption KMS" in result.err
    assert run(capsys, "describe-repositories", name).code == NotFoundError.exit_code


def test_settings_on_an_existing_repository(capsys: Capsys) -> None:
    name = unique("settings")
    assert run(capsys, "create-repository", name).code == 0
    assert run(capsys, "put-image-tag-mutability", name, "--image-tag-mutability", "IMMUTABLE").code == 0
    assert run(capsys, "put-image-scanning-configuration", name, "--scan-on-push").code == 0
    [repo] = run(capsys, "describe-repositories", name, "--json").json()
    assert (repo["tag_mutability"], repo["scan_on_push"]) == ("IMMUTABLE", True)


def test_ensure_repository_creates_once() -> None:
    name = unique("ensure")
    options = RepositoryOptions(scan_on_push=True, tag_mutability="IMMUTABLE")
    assert ensure_repository(name, "us-east-1", options) is True
    assert ensure_repository(name, "us-east-1", options) is False
    described = boto3.client("ecr").describe_repositories(repositoryNames=[name])["repositories"][0]
    assert described["imageTagMutability"] == "IMMUTABLE"
    assert described["imageScanningConfiguration"] == {"scanOnPush": True}


def test_images_list_describe_and_filters(capsys: Capsys) -> None:
    name = unique("images")
    run(capsys, "create-repository", name)
    tagged = push_fake_image(name, "v1", "one")
    untagged = push_fake_image(name, None, "two")

    ids = run(capsys, "list-images", name, "--json").json()
    assert {(i["tag"], i["digest"]) for i in ids} == {("v1", tagged), (None, untagged)}
    only_untagged = run(capsys, "describe-images", name, "--untagged", "--json").json()
    assert [i["digest"] for i in only_untagged] == [untagged]
    only_tagged = run(capsys, "describe-images", name, "--tagged", "--json").json()
    assert [(i["digest"], i["tags"]) for i in only_tagged] == [(tagged, ["v1"])]

    table = run(capsys, "describe-images", name).out.splitlines()
    assert table[0].split() == ["TAGS", "DIGEST", "SIZE", "PUSHED", "SCAN"]
    assert len(table) == 3


def test_batch_delete_reports_partial_failure(capsys: Capsys) -> None:
    name = unique("delete")
    run(capsys, "create-repository", name)
    push_fake_image(name, "keep", "keep")
    doomed = push_fake_image(name, "old", "old")
    result = run(capsys, "batch-delete-image", name, "--digest", doomed, "--tag", "missing", "--json")
    assert result.code == 12  # partly failed: its own exit code, not 1 ("other error")
    body = result.json()
    assert [i["digest"] for i in body["deleted"]] == [doomed]
    assert [f["image"]["tag"] for f in body["failures"]] == ["missing"]
    assert result.err.startswith(f"ocipush: error: cannot delete {name}:missing")
    assert [i.tags for i in describe_images(name)] == [("keep",)]
    assert run(capsys, "batch-delete-image", name, "--tag", "keep").code == 0


def test_batch_delete_sends_batches_of_100() -> None:
    name = unique("bulk")
    boto3.client("ecr").create_repository(repositoryName=name)
    for i in range(105):
        push_fake_image(name, f"t{i}", f"seed-{i}")
    result = batch_delete_image(name, [ImageId(tag=f"t{i}") for i in range(105)])
    assert len(result.deleted) == 105 and result.failures == []
    assert describe_images(name) == []


def test_delete_repository_needs_force_when_not_empty(capsys: Capsys) -> None:
    name = unique("full")
    run(capsys, "create-repository", name)
    push_fake_image(name, "v1", "x")
    refused = run(capsys, "delete-repository", name)
    assert refused.code == AwsError.exit_code and "pass --force" in refused.err
    assert run(capsys, "delete-repository", name, "--force").code == 0


def test_lifecycle_put_get_preview_offline_delete(capsys: Capsys, tmp_path: Path) -> None:
    name = unique("life")
    run(capsys, "create-repository", name)
    # The untagged image strictly older than the others (moto stamps push times to the second): otherwise the
    # "2 newest" of rule 2 depends on how a tie is broken, and so does whether the protected image is among them.
    push_fake_image(name, None, "untagged")
    time.sleep(1.1)
    for i in range(4):
        push_fake_image(name, f"v{i}", f"life-{i}")

    dry = run(
        capsys, "put-lifecycle-policy", name, "--keep-last", "2", "--expire-untagged-days", "1", "--dry-run"
    )
    assert dry.code == 0 and "keep the last 2 images" in dry.out
    assert run(capsys, "get-lifecycle-policy", name).code == NotFoundError.exit_code

    assert (
        run(capsys, "put-lifecycle-policy", name, "--keep-last", "2", "--expire-untagged-days", "1").code == 0
    )
    stored = json.loads(boto3.client("ecr").get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
    assert [r["selection"]["tagStatus"] for r in stored["rules"]] == ["untagged", "any"]
    got = run(capsys, "get-lifecycle-policy", name, "--json")
    assert got.json() == stored

    # The stored policy: the untagged image is protected by rule 1 (pushed just now), rule 2 keeps the 2 newest.
    preview = run(capsys, "preview-lifecycle-policy", name, "--offline", "--json")
    assert preview.code == 0, preview.err
    expired = preview.json()
    assert {e["rule_priority"] for e in expired} == {2} and len(expired) == 2

    policy_file = tmp_path / "p.json"
    policy_file.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {
                            "tagStatus": "tagged",
                            "tagPatternList": ["v*"],
                            "countType": "imageCountMoreThan",
                            "countNumber": 3,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        )
    )
    from_file = run(capsys, "preview-lifecycle-policy", name, "--offline", "--file", f"file://{policy_file}")
    assert from_file.code == 0 and len(from_file.out.splitlines()) == 2  # header + one image

    assert run(capsys, "delete-lifecycle-policy", name).code == 0
    assert run(capsys, "get-lifecycle-policy", name).code == NotFoundError.exit_code


def test_invalid_policy_file_never_reaches_ecr(capsys: Capsys, tmp_path: Path) -> None:
    name = unique("invalid")
    run(capsys, "create-repository", name)
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {
                            "tagStatus": "any",
                            "countType": "imageCountMoreThan",
                            "countNumber": 1,
                        },
                        "action": {"type": "expire"},
                    },
                    {
                        "rulePriority": 2,
                        "selection": {
                            "tagStatus": "untagged",
                            "countType": "imageCountMoreThan",
                            "countNumber": 1,
                        },
                        "action": {"type": "expire"},
                    },
                ]
            }
        )
    )
    result = run(capsys, "put-lifecycle-policy", name, "--file", str(bad))
    assert result.code == UsageError.exit_code and "highest rulePriority" in result.err
    assert run(capsys, "get-lifecycle-policy", name).code == NotFoundError.exit_code


def _set_findings(counts: dict[str, int], repository: str, tag: str, endpoint: str) -> None:
    """Tell moto what describe_image_scan_findings should answer for this image."""
    result: dict[str, Any] = {
        "registryId": "123456789012",
        "repositoryName": repository,
        "imageId": {"imageTag": tag},
        "imageScanStatus": {"status": "COMPLETE", "description": "done"},
        "imageScanFindings": {
            "findings": [
                {
                    "name": f"CVE-2026-{i}{severity}",
                    "severity": severity,
                    "uri": "https://example.invalid/cve",
                    "attributes": [{"key": "package_name", "value": "openssl"}],
                }
                for severity, n in counts.items()
                for i in range(n)
            ],
            "findingSeverityCounts": counts,
        },
    }
    body = {"results": [result], "region": "us-east-1"}
    httpx.post(f"{endpoint}/moto-api/static/ecr/scan-finding-results", json=body).raise_for_status()


def test_scan_fail_on_threshold(capsys: Capsys, aws_env: dict[str, str]) -> None:
    name = unique("scan")
    run(capsys, "create-repository", name)
    push_fake_image(name, "v1", "scan")
    _set_findings({"HIGH": 2, "LOW": 1}, name, "v1", aws_env["AWS_ENDPOINT_URL"])

    high = run(capsys, "scan", f"{name}:v1", "--fail-on", "high")
    assert high.code == 11  # the scan gate's own exit code, not 1 ("other error")
    assert high.out.splitlines()[0] == f"{name}:v1: scan COMPLETE; findings: HIGH 2, LOW 1"
    assert high.out.splitlines()[2].split()[0] == "HIGH"  # worst first
    assert "ocipush: error: 2 findings at HIGH or above" in high.err

    # ECR allows one scan a day: a second `scan` reads today's result instead of failing.
    critical = run(capsys, "scan", f"{name}:v1", "--fail-on", "CRITICAL", "--json")
    assert critical.code == 0, critical.err
    assert critical.json()["severity_counts"] == {"HIGH": 2, "LOW": 1}
    findings = run(capsys, "describe-image-scan-findings", f"{name}:v1", "--fail-on", "LOW")
    assert findings.code == 11


def test_scan_errors_are_one_line(capsys: Capsys) -> None:
    name = unique("noscan")
    run(capsys, "create-repository", name)
    push_fake_image(name, "v1", "noscan")
    never = run(capsys, "describe-image-scan-findings", f"{name}:v1")
    assert never.code == NotFoundError.exit_code and "run `ocipush ecr start-image-scan` first" in never.err
    assert run(capsys, "start-image-scan", f"{name}:v1").code == 0
    limited = run(capsys, "start-image-scan", f"{name}:v1")
    assert limited.code == AwsError.exit_code and "one scan per image per day" in limited.err
    assert run(capsys, "scan", name).code == UsageError.exit_code


def test_registry_scanning_configuration(capsys: Capsys) -> None:
    region = "eu-west-3"
    put = run(
        capsys, "put-registry-scanning-configuration", "--region", region, "--rule", "SCAN_ON_PUSH:prod-*"
    )
    assert put.code == 0, put.err
    got = run(capsys, "get-registry-scanning-configuration", "--region", region, "--json").json()
    assert got == {"scan_type": "BASIC", "rules": [{"frequency": "SCAN_ON_PUSH", "filters": ["prod-*"]}]}
    assert (
        run(capsys, "put-registry-scanning-configuration", "--rule", "SOMETIMES:x").code
        == UsageError.exit_code
    )


POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "pull",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": ["ecr:BatchGetImage"],
        }
    ],
}


def test_repository_policy(capsys: Capsys, tmp_path: Path) -> None:
    name = unique("policy")
    run(capsys, "create-repository", name)
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(POLICY))
    assert run(capsys, "set-repository-policy", name, "--file", str(policy_file)).code == 0
    assert json.loads(run(capsys, "get-repository-policy", name).out) == POLICY
    assert run(capsys, "delete-repository-policy", name).code == 0
    missing = run(capsys, "get-repository-policy", name)
    assert missing.code == NotFoundError.exit_code and "no repository policy" in missing.err
    policy_file.write_text("[]")
    assert run(capsys, "put-repository-policy", name, "--file", str(policy_file)).code == UsageError.exit_code


def test_registry_policy(capsys: Capsys, tmp_path: Path) -> None:
    region = "eu-north-1"
    policy = {
        **POLICY,
        "Statement": [
            {
                **POLICY["Statement"][0],
                "Action": ["ecr:ReplicateImage"],
                "Resource": "arn:aws:ecr:eu-north-1:123456789012:repository/*",
            }
        ],
    }
    policy_file = tmp_path / "registry.json"
    policy_file.write_text(json.dumps(policy))
    assert run(capsys, "put-registry-policy", "--region", region, "--file", str(policy_file)).code == 0
    assert json.loads(run(capsys, "get-registry-policy", "--region", region).out) == policy
    assert run(capsys, "delete-registry-policy", "--region", region).code == 0
    assert run(capsys, "get-registry-policy", "--region", region).code == NotFoundError.exit_code


def test_replication(capsys: Capsys) -> None:
    region = "ap-south-1"
    assert run(capsys, "get-replication-configuration", "--region", region).out == "replication is off\n"
    put = run(
        capsys,
        "put-replication-configuration",
        "--region",
        region,
        "--destination",
        "eu-west-1",
        "--prefix",
        "prod",
        "--json",
    )
    assert put.code == 0, put.err
    assert put.json() == [
        {"destinations": [{"region": "eu-west-1", "registry_id": "123456789012"}], "prefixes": ["prod"]}
    ]
    same = run(capsys, "put-replication-configuration", "--region", region, "--destination", region)
    assert same.code == UsageError.exit_code and "cannot be the same" in same.err
    assert run(capsys, "put-replication-configuration", "--region", region).code == 0
    assert run(capsys, "get-replication-configuration", "--region", region, "--json").json() == []


def test_get_login_password(capsys: Capsys) -> None:
    result = run(capsys, "get-login-password")
    assert (result.code, result.out) == (0, "123456789012-auth-token\n")


def test_no_region_is_a_usage_error(capsys: Capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    result = run(capsys, "describe-repositories")
    assert result.code == UsageError.exit_code
    assert result.err == (
        "ocipush: error: no AWS Region configured: set AWS_REGION or a Region in the AWS profile; pass --region\n"
    )
    with pytest.raises(UsageError) as caught:  # the library's message names no flag; the CLI adds it
        describe_repositories()
    assert "--" not in str(caught.value) and caught.value.cli_hint == "pass --region"


def test_unknown_profile_is_an_auth_error(
    capsys: Capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    result = run(capsys, "describe-repositories", "--profile", "nobody")
    assert result.code == 4 and "check the profile name (or AWS_PROFILE); check --profile" in result.err
