"""Registry-wide settings: replication, pull-through cache rules, account settings (BLOB_MOUNTING)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from ocipush.aws import aws_call, ecr_client

# The account setting the transfer engine's cross-repository mount depends on (ENABLED | DISABLED).
BLOB_MOUNTING = "BLOB_MOUNTING"


class Destination(BaseModel):
    model_config = ConfigDict(frozen=True)

    region: str
    # None: this account's own registry.
    registry_id: str | None = None


class ReplicationRule(BaseModel):
    """Replicate repositories whose names start with one of `prefixes` (all when empty) to `destinations`."""

    model_config = ConfigDict(frozen=True)

    destinations: tuple[Destination, ...]
    prefixes: tuple[str, ...] = ()


class PullThroughCacheRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    prefix: str
    upstream_url: str
    upstream_registry: str | None = None
    credential_arn: str | None = None
    registry_id: str | None = None
    created_at: datetime | None = None


def get_replication_configuration(
    *, region: str | None = None, profile: str | None = None
) -> list[ReplicationRule]:
    """The registry's replication rules (ECR returns them from describe_registry)."""
    client = ecr_client(region, profile)
    with aws_call("describe-registry", region=client.meta.region_name):
        config = client.describe_registry().get("replicationConfiguration") or {}
    return [
        ReplicationRule(
            destinations=tuple(
                Destination(region=d["region"], registry_id=d["registryId"]) for d in rule["destinations"]
            ),
            prefixes=tuple(f["filter"] for f in rule.get("repositoryFilters", [])),
        )
        for rule in config.get("rules", [])
    ]


def put_replication_configuration(
    rules: Sequence[ReplicationRule], *, region: str | None = None, profile: str | None = None
) -> None:
    """Replace the registry's replication rules (an empty list turns replication off)."""
    client = ecr_client(region, profile)
    own_id = ""
    if any(d.registry_id is None for rule in rules for d in rule.destinations):
        with aws_call("describe-registry", region=client.meta.region_name):
            own_id = client.describe_registry()["registryId"]
    api_rules: list[Any] = []
    for rule in rules:
        api_rule: dict[str, Any] = {
            "destinations": [
                {"region": d.region, "registryId": d.registry_id or own_id} for d in rule.destinations
            ]
        }
        if rule.prefixes:
            api_rule["repositoryFilters"] = [
                {"filter": p, "filterType": "PREFIX_MATCH"} for p in rule.prefixes
            ]
        api_rules.append(api_rule)
    with aws_call("put-replication-configuration", region=client.meta.region_name):
        client.put_replication_configuration(replicationConfiguration={"rules": api_rules})


def create_pull_through_cache_rule(
    rule: PullThroughCacheRule, *, region: str | None = None, profile: str | None = None
) -> PullThroughCacheRule:
    client = ecr_client(region, profile)
    kwargs: dict[str, Any] = {"ecrRepositoryPrefix": rule.prefix, "upstreamRegistryUrl": rule.upstream_url}
    if rule.upstream_registry:
        kwargs["upstreamRegistry"] = rule.upstream_registry
    if rule.credential_arn:
        kwargs["credentialArn"] = rule.credential_arn
    with aws_call("create-pull-through-cache-rule", repository=rule.prefix, region=client.meta.region_name):
        return _cache_rule(client.create_pull_through_cache_rule(**kwargs))


def describe_pull_through_cache_rules(
    prefixes: Sequence[str] = (), *, region: str | None = None, profile: str | None = None
) -> list[PullThroughCacheRule]:
    client = ecr_client(region, profile)
    kwargs: dict[str, Any] = {"ecrRepositoryPrefixes": list(prefixes)} if prefixes else {}
    rules: list[PullThroughCacheRule] = []
    with aws_call("describe-pull-through-cache-rules", region=client.meta.region_name):
        for page in client.get_paginator("describe_pull_through_cache_rules").paginate(**kwargs):
            rules.extend(_cache_rule(item) for item in page["pullThroughCacheRules"])
    return rules


def delete_pull_through_cache_rule(
    prefix: str, *, region: str | None = None, profile: str | None = None
) -> PullThroughCacheRule:
    client = ecr_client(region, profile)
    with aws_call("delete-pull-through-cache-rule", repository=prefix, region=client.meta.region_name):
        return _cache_rule(client.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix))


def get_account_setting(name: str, *, region: str | None = None, profile: str | None = None) -> str:
    client = ecr_client(region, profile)
    with aws_call("get-account-setting", region=client.meta.region_name):
        return client.get_account_setting(name=name)["value"]


def put_account_setting(
    name: str, value: str, *, region: str | None = None, profile: str | None = None
) -> str:
    client = ecr_client(region, profile)
    with aws_call("put-account-setting", region=client.meta.region_name):
        return client.put_account_setting(name=name, value=value)["value"]


def _cache_rule(item: Any) -> PullThroughCacheRule:
    return PullThroughCacheRule(
        prefix=item["ecrRepositoryPrefix"],
        upstream_url=item["upstreamRegistryUrl"],
        upstream_registry=item.get("upstreamRegistry"),
        credential_arn=item.get("credentialArn"),
        registry_id=item.get("registryId"),
        created_at=item.get("createdAt"),
    )
