"""Lifecycle policies on ECR: put (validated first), get, delete, and previews (server-side or offline)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from ocipush.aws import aws_call, ecr_client
from ocipush.ecr_admin.images import describe_images
from ocipush.ecr_admin.lifecycle import Expiration, LifecyclePolicy, evaluate, parse_policy
from ocipush.ecr_admin.models import ImageDetail
from ocipush.errors import AwsError


def put_lifecycle_policy(
    repository: str, policy: LifecyclePolicy, *, region: str | None = None, profile: str | None = None
) -> None:
    """Set the repository's lifecycle policy (already validated by building the LifecyclePolicy)."""
    client = ecr_client(region, profile)
    with aws_call("put-lifecycle-policy", repository=repository, region=client.meta.region_name):
        client.put_lifecycle_policy(repositoryName=repository, lifecyclePolicyText=policy.to_json())


def get_lifecycle_policy(
    repository: str, *, region: str | None = None, profile: str | None = None
) -> LifecyclePolicy:
    """The repository's lifecycle policy; NotFoundError when none is set."""
    client = ecr_client(region, profile)
    with aws_call("get-lifecycle-policy", repository=repository, region=client.meta.region_name):
        response = client.get_lifecycle_policy(repositoryName=repository)
    return parse_policy(response["lifecyclePolicyText"])


def delete_lifecycle_policy(
    repository: str, *, region: str | None = None, profile: str | None = None
) -> None:
    client = ecr_client(region, profile)
    with aws_call("delete-lifecycle-policy", repository=repository, region=client.meta.region_name):
        client.delete_lifecycle_policy(repositoryName=repository)


def preview_offline(
    repository: str,
    policy: LifecyclePolicy | None = None,
    *,
    now: datetime | None = None,
    region: str | None = None,
    profile: str | None = None,
) -> list[Expiration]:
    """Evaluate a policy (default: the repository's own) locally against the repository's images."""
    if policy is None:
        policy = get_lifecycle_policy(repository, region=region, profile=profile)
    images = describe_images(repository, region=region, profile=profile)
    return evaluate(policy, images, now or datetime.now(UTC))


def preview_on_server(
    repository: str,
    policy: LifecyclePolicy | None = None,
    *,
    region: str | None = None,
    profile: str | None = None,
    on_wait: Callable[[str], None] | None = None,
    poll_seconds: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Expiration]:
    """Ask ECR to preview the policy (default: the repository's own) and wait for its answer."""
    client = ecr_client(region, profile)
    with aws_call("start-lifecycle-policy-preview", repository=repository, region=client.meta.region_name):
        if policy is None:
            client.start_lifecycle_policy_preview(repositoryName=repository)
        else:
            client.start_lifecycle_policy_preview(
                repositoryName=repository, lifecyclePolicyText=policy.to_json()
            )
    with aws_call("get-lifecycle-policy-preview", repository=repository, region=client.meta.region_name):
        while True:
            first = client.get_lifecycle_policy_preview(repositoryName=repository)
            if first["status"] != "IN_PROGRESS":
                break
            if on_wait:
                on_wait(first["status"])
            sleep(poll_seconds)
        if first["status"] != "COMPLETE":
            raise AwsError(f"lifecycle policy preview of {repository} ended {first['status']}")
        results = []
        for page in client.get_paginator("get_lifecycle_policy_preview").paginate(repositoryName=repository):
            results.extend(page.get("previewResults", []))
    return [
        Expiration(
            image=ImageDetail(
                digest=item["imageDigest"],
                tags=tuple(item.get("imageTags") or ()),
                pushed_at=item["imagePushedAt"],
            ),
            rule_priority=item.get("appliedRulePriority", 0),
            reason=f"rule {item.get('appliedRulePriority')}: selected by ECR's preview",
        )
        for item in results
        if item.get("action", {}).get("type", "EXPIRE") == "EXPIRE"
    ]
