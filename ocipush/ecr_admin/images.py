"""Images in an ECR repository: list, describe and delete in batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ocipush.aws import aws_call, ecr_client
from ocipush.ecr_admin.models import ImageDetail, ImageId

TagStatus = Literal["TAGGED", "UNTAGGED", "ANY"]
# batch_delete_image takes at most this many image ids per call.
DELETE_BATCH = 100


class DeleteFailure(BaseModel):
    """One image ECR could not delete, with its reason."""

    model_config = ConfigDict(frozen=True)

    image: ImageId
    code: str
    reason: str


class DeleteResult(BaseModel):
    """What a batch delete removed and what it could not."""

    model_config = ConfigDict(frozen=True)

    deleted: list[ImageId]
    failures: list[DeleteFailure]


def list_images(
    repository: str, tag_status: TagStatus = "ANY", *, region: str | None = None, profile: str | None = None
) -> list[ImageId]:
    """Every image id (one per tag, plus untagged digests) in the repository."""
    client = ecr_client(region, profile)
    ids: list[ImageId] = []
    with aws_call("list-images", repository=repository, region=client.meta.region_name):
        pages = client.get_paginator("list_images").paginate(
            repositoryName=repository, filter={"tagStatus": tag_status}
        )
        for page in pages:
            ids.extend(ImageId(tag=i.get("imageTag"), digest=i.get("imageDigest")) for i in page["imageIds"])
    return ids


def describe_images(
    repository: str,
    tag_status: TagStatus = "ANY",
    image_ids: Sequence[ImageId] = (),
    *,
    region: str | None = None,
    profile: str | None = None,
) -> list[ImageDetail]:
    """Details (tags, digest, size, pushed-at, scan status) of the given images, or of every image."""
    client = ecr_client(region, profile)
    kwargs: dict[str, Any] = {"repositoryName": repository}
    if image_ids:
        kwargs["imageIds"] = [image.to_api() for image in image_ids]
    else:
        kwargs["filter"] = {"tagStatus": tag_status}
    details: list[ImageDetail] = []
    with aws_call("describe-images", repository=repository, region=client.meta.region_name):
        for page in client.get_paginator("describe_images").paginate(**kwargs):
            details.extend(ImageDetail.from_api(item) for item in page["imageDetails"])
    # Some ECR look-alikes (moto) ignore the filter; applying it again costs nothing on ECR itself.
    if tag_status == "TAGGED":
        return [d for d in details if d.tags]
    if tag_status == "UNTAGGED":
        return [d for d in details if not d.tags]
    return details


def batch_delete_image(
    repository: str, images: Sequence[ImageId], *, region: str | None = None, profile: str | None = None
) -> DeleteResult:
    """Delete images in batches of 100. By tag removes the tag; by digest removes the image and all its tags.

    Per-image failures are returned, not raised, so the caller can report each one."""
    client = ecr_client(region, profile)
    deleted: list[ImageId] = []
    failures: list[DeleteFailure] = []
    with aws_call("batch-delete-image", repository=repository, region=client.meta.region_name):
        for start in range(0, len(images), DELETE_BATCH):
            batch = [image.to_api() for image in images[start : start + DELETE_BATCH]]
            response = client.batch_delete_image(repositoryName=repository, imageIds=batch)
            deleted.extend(
                ImageId(tag=i.get("imageTag"), digest=i.get("imageDigest")) for i in response["imageIds"]
            )
            failures.extend(
                DeleteFailure(
                    image=ImageId(tag=f["imageId"].get("imageTag"), digest=f["imageId"].get("imageDigest")),
                    code=f.get("failureCode", ""),
                    reason=f.get("failureReason", ""),
                )
                for f in response["failures"]
            )
    return DeleteResult(deleted=deleted, failures=failures)
