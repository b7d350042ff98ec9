"""Amazon ECR management via the ECR API: repositories, images, lifecycle policies (with an offline preview),
scanning, replication, pull-through cache, policies and account settings.

Each module has one job; functions are synchronous and typed, return pydantic models and raise ocipush errors.
`lifecycle` is pure (no AWS calls); the other modules call ECR through `ocipush.aws`."""

from __future__ import annotations

from ocipush.ecr_admin.repositories import RepositoryOptions, create_missing_repository, ensure_repository

__all__ = ["RepositoryOptions", "create_missing_repository", "ensure_repository"]
