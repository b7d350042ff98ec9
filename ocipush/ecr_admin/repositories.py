"""ECR repositories: create (with scanning, tag mutability, encryption, tags), describe, delete, settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, model_validator

from ocipush.aws import aws_call, ecr_client
from ocipush.errors import UsageError

if TYPE_CHECKING:
    from mypy_boto3_ecr.type_defs import CreateRepositoryRequestTypeDef

    from ocipush.reference import Reference

TagMutability = Literal["MUTABLE", "IMMUTABLE", "MUTABLE_WITH_EXCLUSION", "IMMUTABLE_WITH_EXCLUSION"]
Encryption = Literal["AES256", "KMS", "KMS_DSSE"]
TAG_MUTABILITY_CHOICES: tuple[TagMutability, ...] = (
    "MUTABLE",
    "IMMUTABLE",
    "MUTABLE_WITH_EXCLUSION",
    "IMMUTABLE_WITH_EXCLUSION",
)
ENCRYPTION_CHOICES: tuple[Encryption, ...] = ("AES256", "KMS", "KMS_DSSE")


class RepositoryOptions(BaseModel):
    """How to create a repository; the same options serve `create-repository` and `push --create-repo`."""

    model_config = ConfigDict(frozen=True)

    scan_on_push: bool = False
    tag_mutability: TagMutability = "MUTABLE"
    # Wildcard tag filters (`latest`, `dev-*`) exempt from the mutability setting; only with *_WITH_EXCLUSION.
    mutability_exclusions: tuple[str, ...] = ()
    encryption: Encryption = "AES256"
    kms_key: str | None = None
    tags: dict[str, str] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # UsageError is not a ValueError, so pydantic lets it through unchanged: the CLI shows it as one line.
        excluding = self.tag_mutability.endswith("_WITH_EXCLUSION")
        if excluding and not self.mutability_exclusions:
            raise UsageError(
                f"{self.tag_mutability} needs at least one exclusion filter (--mutability-exclusion)"
            )
        if self.mutability_exclusions and not excluding:
            raise UsageError(
                "exclusion filters need --image-tag-mutability MUTABLE_WITH_EXCLUSION or "
                "IMMUTABLE_WITH_EXCLUSION"
            )
        if self.kms_key and self.encryption == "AES256":
            raise UsageError("--kms-key needs --encryption KMS or KMS_DSSE")
        return self

    def to_api(self) -> dict[str, Any]:
        """The create_repository arguments these options stand for (without the name)."""
        request: dict[str, Any] = {
            "imageTagMutability": self.tag_mutability,
            "imageScanningConfiguration": {"scanOnPush": self.scan_on_push},
            "encryptionConfiguration": {"encryptionType": self.encryption},
        }
        if self.kms_key:
            request["encryptionConfiguration"]["kmsKey"] = self.kms_key
        if self.mutability_exclusions:
            request["imageTagMutabilityExclusionFilters"] = _exclusion_filters(self.mutability_exclusions)
        if self.tags:
            request["tags"] = [{"Key": key, "Value": value} for key, value in self.tags.items()]
        return request


class Repository(BaseModel):
    """A repository as ECR describes it."""

    model_config = ConfigDict(frozen=True)

    name: str
    uri: str
    arn: str
    registry_id: str
    created_at: datetime | None = None
    tag_mutability: str
    mutability_exclusions: tuple[str, ...] = ()
    scan_on_push: bool = False
    encryption: str = "AES256"
    kms_key: str | None = None

    @classmethod
    def from_api(cls, item: Any) -> Repository:
        encryption = item.get("encryptionConfiguration") or {}
        return cls(
            name=item["repositoryName"],
            uri=item["repositoryUri"],
            arn=item["repositoryArn"],
            registry_id=item["registryId"],
            created_at=item.get("createdAt"),
            tag_mutability=item.get("imageTagMutability", "MUTABLE"),
            mutability_exclusions=tuple(
                f["filter"] for f in item.get("imageTagMutabilityExclusionFilters") or ()
            ),
            scan_on_push=bool((item.get("imageScanningConfiguration") or {}).get("scanOnPush")),
            encryption=encryption.get("encryptionType", "AES256"),
            kms_key=encryption.get("kmsKey"),
        )


def create_repository(
    name: str, options: RepositoryOptions, *, region: str | None = None, profile: str | None = None
) -> Repository:
    """Create a repository; raises AwsError when it already exists."""
    client = ecr_client(region, profile)
    with aws_call("create-repository", repository=name, region=client.meta.region_name):
        response = client.create_repository(**_create_request(name, options))
    return Repository.from_api(response["repository"])


def ensure_repository(
    repository: str, region: str, options: RepositoryOptions, profile: str | None = None
) -> bool:
    """Create the repository unless it exists; True when this call created it (create-on-push)."""
    from botocore.exceptions import ClientError

    client = ecr_client(region, profile)
    with aws_call("create-repository", repository=repository, region=client.meta.region_name):
        try:
            client.create_repository(**_create_request(repository, options))
        except ClientError as exc:
            # Another pusher (a parallel CI job) may have created it between our NAME_UNKNOWN and this call.
            if exc.response.get("Error", {}).get("Code") == "RepositoryAlreadyExistsException":
                return False
            raise
    return True


def create_missing_repository(
    target: str | Reference, options: RepositoryOptions | None = None, profile: str | None = None
) -> Callable[[], bool]:
    """A ready-made `create_repository` hook for `push`, `copy` and `build_push`: when ECR answers that the target's
    repository does not exist (NAME_UNKNOWN), the hook creates it with `options` and the push goes on; the result's
    `created_repository` then says so. Raises UsageError for a target that is not on private ECR."""
    from ocipush.reference import parse_reference
    from ocipush.registry.ecr import parse_ecr_host

    reference = parse_reference(target) if isinstance(target, str) else target
    host = parse_ecr_host(reference.registry)
    if host is None:
        raise UsageError(f"creating a missing repository works only for Amazon ECR targets, not {target}")
    wanted = options or RepositoryOptions()

    def create() -> bool:
        return ensure_repository(reference.repository, host.region, wanted, profile=profile)

    return create


def describe_repositories(
    names: Sequence[str] = (), *, region: str | None = None, profile: str | None = None
) -> list[Repository]:
    """Describe the named repositories, or every repository in the registry when no name is given."""
    client = ecr_client(region, profile)
    kwargs: dict[str, Any] = {"repositoryNames": list(names)} if names else {}
    repositories: list[Repository] = []
    with aws_call(
        "describe-repositories", repository=", ".join(names) or None, region=client.meta.region_name
    ):
        for page in client.get_paginator("describe_repositories").paginate(**kwargs):
            repositories.extend(Repository.from_api(item) for item in page["repositories"])
    return repositories


def delete_repository(
    name: str, *, force: bool = False, region: str | None = None, profile: str | None = None
) -> Repository:
    """Delete a repository; `force` also deletes the images it holds."""
    client = ecr_client(region, profile)
    with aws_call("delete-repository", repository=name, region=client.meta.region_name):
        response = client.delete_repository(repositoryName=name, force=force)
    return Repository.from_api(response["repository"])


def put_image_tag_mutability(
    name: str,
    mutability: TagMutability,
    exclusions: Sequence[str] = (),
    *,
    region: str | None = None,
    profile: str | None = None,
) -> None:
    """Change tag mutability (and its exclusion filters) on an existing repository."""
    RepositoryOptions(
        tag_mutability=mutability, mutability_exclusions=tuple(exclusions)
    )  # validates the pair
    client = ecr_client(region, profile)
    with aws_call("put-image-tag-mutability", repository=name, region=client.meta.region_name):
        if exclusions:
            client.put_image_tag_mutability(
                repositoryName=name,
                imageTagMutability=mutability,
                imageTagMutabilityExclusionFilters=_exclusion_filters(exclusions),  # type: ignore[arg-type]
            )
        else:
            client.put_image_tag_mutability(repositoryName=name, imageTagMutability=mutability)


def put_image_scanning_configuration(
    name: str, scan_on_push: bool, *, region: str | None = None, profile: str | None = None
) -> None:
    """Turn scan-on-push on or off for an existing repository."""
    client = ecr_client(region, profile)
    with aws_call("put-image-scanning-configuration", repository=name, region=client.meta.region_name):
        client.put_image_scanning_configuration(
            repositoryName=name, imageScanningConfiguration={"scanOnPush": scan_on_push}
        )


def _create_request(name: str, options: RepositoryOptions) -> CreateRepositoryRequestTypeDef:
    request: CreateRepositoryRequestTypeDef = {"repositoryName": name, **options.to_api()}  # type: ignore[typeddict-item]
    return request


def _exclusion_filters(patterns: Sequence[str]) -> list[dict[str, str]]:
    return [{"filterType": "WILDCARD", "filter": pattern} for pattern in patterns]
