"""Values shared by several ECR modules: how an image is named and what ECR says about it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from ocipush.errors import UsageError

if TYPE_CHECKING:
    from mypy_boto3_ecr.type_defs import ImageIdentifierTypeDef


class ImageId(BaseModel):
    """An image in a repository, named by tag, by digest, or both (ECR's `imageId`)."""

    model_config = ConfigDict(frozen=True)

    tag: str | None = None
    digest: str | None = None

    def to_api(self) -> ImageIdentifierTypeDef:
        ident: ImageIdentifierTypeDef = {}
        if self.tag:
            ident["imageTag"] = self.tag
        if self.digest:
            ident["imageDigest"] = self.digest
        return ident

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return tag + (f"@{self.digest}" if self.digest else "")


def parse_image(image: str) -> tuple[str, ImageId]:
    """Split `repo:tag`, `repo@sha256:…` or `repo:tag@sha256:…` into the repository and the image id."""
    name, _, digest = image.partition("@")
    # ECR repository names cannot contain ':', so the last ':' before any digest starts the tag.
    repository, _, tag = name.partition(":")
    if not repository or not (tag or digest):
        raise UsageError(f"{image!r} names no image: write REPOSITORY:TAG or REPOSITORY@DIGEST")
    return repository, ImageId(tag=tag or None, digest=digest or None)


class ImageDetail(BaseModel):
    """One image as `describe_images` reports it (an image is one digest; it may carry several tags)."""

    model_config = ConfigDict(frozen=True)

    digest: str
    tags: tuple[str, ...] = ()
    pushed_at: datetime
    size_bytes: int = 0
    media_type: str | None = None
    scan_status: str | None = None
    last_pulled_at: datetime | None = None

    @classmethod
    def from_api(cls, item: Any) -> ImageDetail:
        scan = item.get("imageScanStatus") or {}
        return cls(
            digest=item["imageDigest"],
            tags=tuple(item.get("imageTags") or ()),
            pushed_at=item["imagePushedAt"],
            size_bytes=item.get("imageSizeInBytes") or 0,
            media_type=item.get("imageManifestMediaType"),
            scan_status=scan.get("status"),
            last_pulled_at=item.get("lastRecordedPullTime"),
        )
