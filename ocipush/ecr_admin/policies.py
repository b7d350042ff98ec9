"""Resource policies (IAM JSON): on one repository, and on the whole registry."""

from __future__ import annotations

import json

from ocipush.aws import aws_call, ecr_client
from ocipush.errors import UsageError


def check_policy_json(text: str) -> str:
    """Refuse a policy that is not a JSON object before ECR sees it (its own errors are less precise)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"policy is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or "Statement" not in document:
        raise UsageError('policy must be a JSON object with a "Statement"')
    return text


def set_repository_policy(
    repository: str,
    policy: str,
    *,
    force: bool = False,
    region: str | None = None,
    profile: str | None = None,
) -> None:
    """Set the repository's policy; `force` lets a policy that would lock you out through."""
    client = ecr_client(region, profile)
    with aws_call("set-repository-policy", repository=repository, region=client.meta.region_name):
        client.set_repository_policy(
            repositoryName=repository, policyText=check_policy_json(policy), force=force
        )


def get_repository_policy(repository: str, *, region: str | None = None, profile: str | None = None) -> str:
    client = ecr_client(region, profile)
    with aws_call("get-repository-policy", repository=repository, region=client.meta.region_name):
        return client.get_repository_policy(repositoryName=repository)["policyText"]


def delete_repository_policy(
    repository: str, *, region: str | None = None, profile: str | None = None
) -> None:
    client = ecr_client(region, profile)
    with aws_call("delete-repository-policy", repository=repository, region=client.meta.region_name):
        client.delete_repository_policy(repositoryName=repository)


def put_registry_policy(policy: str, *, region: str | None = None, profile: str | None = None) -> None:
    client = ecr_client(region, profile)
    with aws_call("put-registry-policy", region=client.meta.region_name):
        client.put_registry_policy(policyText=check_policy_json(policy))


def get_registry_policy(*, region: str | None = None, profile: str | None = None) -> str:
    client = ecr_client(region, profile)
    with aws_call("get-registry-policy", region=client.meta.region_name):
        return client.get_registry_policy()["policyText"]


def delete_registry_policy(*, region: str | None = None, profile: str | None = None) -> None:
    client = ecr_client(region, profile)
    with aws_call("delete-registry-policy", region=client.meta.region_name):
        client.delete_registry_policy()
