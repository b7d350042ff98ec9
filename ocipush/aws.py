"""The one place that makes boto3 clients, and the one place that turns AWS errors into ocipush errors.

boto3 is imported inside the functions: `import ocipush` must stay fast and must not need AWS at all.
Endpoints come from boto3's own `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_ECR` handling (tests use moto)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ocipush.errors import AuthError, AwsError, NotFoundError, OcipushError, TransportError, UsageError

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecr_public import ECRPublicClient

# ECR Public's API (and its auth tokens) exist only in this Region.
ECR_PUBLIC_REGION = "us-east-1"
# Throttling (ThrottlingException, 429) is retried by botocore with client-side rate limiting ("adaptive").
# Counted with the first try (botocore's `max_attempts` would count retries only).
MAX_ATTEMPTS = 10

_lock = threading.Lock()
_clients: dict[tuple[str, ...], Any] = {}


def ecr_client(
    region: str | None = None, profile: str | None = None, *, max_attempts: int = MAX_ATTEMPTS
) -> ECRClient:
    """A cached, thread-safe ECR client for the Region (default: the profile's or environment's Region).

    `max_attempts=1` is for calls whose LimitExceededException is a quota, not a rate: botocore counts that
    code as throttling and would back off for a minute before reporting it."""
    client: ECRClient = _client("ecr", region, profile, max_attempts)
    return client


def ecr_public_client(profile: str | None = None) -> ECRPublicClient:
    """A cached ECR Public client; always in us-east-1, where the ECR Public API lives."""
    client: ECRPublicClient = _client("ecr-public", ECR_PUBLIC_REGION, profile, MAX_ATTEMPTS)
    return client


def kms_client(region: str | None = None, profile: str | None = None) -> Any:
    """A cached KMS client (signatures with `awskms://` keys)."""
    return _client("kms", region, profile, MAX_ATTEMPTS)


def clear_client_cache() -> None:
    """Forget cached clients (after credentials or endpoints change inside one process)."""
    with _lock:
        _clients.clear()


def _client(service: str, region: str | None, profile: str | None, attempts: int) -> Any:
    # The environment boto3 reads is part of the key: a process that switches Region, profile or endpoint
    # (a test, a Lambda reconfigured between invocations) never reuses a stale client.
    env = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL")
    endpoint = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
    key = (
        service,
        region or "",
        profile or "",
        str(attempts),
        *(os.environ.get(name, "") for name in (*env, endpoint)),
    )
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _new_client(service, region, profile, attempts)
            _clients[key] = client
        return client


def _new_client(service: str, region: str | None, profile: str | None, attempts: int) -> Any:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except BotoCoreError as exc:  # ProfileNotFound and friends
        raise aws_error(exc, action="configure AWS", repository=None, region=region) from exc
    if not session.region_name:
        raise UsageError(NO_REGION).hinted("pass --region")
    config = Config(retries={"mode": "adaptive", "total_max_attempts": attempts}, user_agent_extra="ocipush")
    return session.client(service, config=config)  # type: ignore[call-overload]


# AWS error codes grouped by what the user has to do about them.
_NOT_FOUND = {
    "RepositoryNotFoundException": "repository not found: check the name and the Region",
    "ImageNotFoundException": "image not found: check the tag or digest",
    "LifecyclePolicyNotFoundException": "no lifecycle policy is set on this repository",
    "LifecyclePolicyPreviewNotFoundException": "no lifecycle policy preview exists: start one first",
    "RepositoryPolicyNotFoundException": "no repository policy is set on this repository",
    "RegistryPolicyNotFoundException": "no registry policy is set in this Region",
    "ScanNotFoundException": "this image has not been scanned: start a scan first",
    "PullThroughCacheRuleNotFoundException": "no pull-through cache rule has that prefix",
}
# What the command line adds to those messages (the library's own messages name no flags).
_CLI_HINTS = {
    "RepositoryNotFoundException": "check --region",
    "ImageNotFoundException": "see `ocipush ecr list-images`",
    "ScanNotFoundException": "run `ocipush ecr start-image-scan` first",
    "RepositoryNotEmptyException": "pass --force to delete it with its images",
}
NO_REGION = "no AWS Region configured: set AWS_REGION or a Region in the AWS profile"
_AUTH = {
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "ExpiredToken",
    "SignatureDoesNotMatch",
}
_THROTTLED = {"ThrottlingException", "TooManyRequestsException", "Throttling", "RequestLimitExceeded"}
_BAD_INPUT = {
    "InvalidParameterException",
    "ValidationException",
    "InvalidTagParameterException",
    "InvalidLayerPartException",
    "LifecyclePolicyValidationException",
}
_HINTS = {
    "RepositoryAlreadyExistsException": "the repository already exists; use it or choose another name",
    "RepositoryNotEmptyException": "the repository still holds images: delete them, or delete it with force",
    "LimitExceededException": "an ECR service quota was reached (at most one scan per image per day); "
    "wait or request a quota increase",
    "TooManyTagsException": "too many tags on this resource (at most 50)",
    "KmsException": "KMS refused the key: check the key ARN, its Region and its key policy",
    "PullThroughCacheRuleAlreadyExistsException": "a pull-through cache rule with that prefix already exists",
    "LifecyclePolicyPreviewInProgressException": "a lifecycle policy preview is already running; wait for it",
    "UnsupportedImageTypeException": "ECR cannot scan this image type",
}


def aws_error(exc: BaseException, *, action: str, repository: str | None, region: str | None) -> OcipushError:
    """Turn a botocore error into a one-line ocipush error naming what failed, where, and what to do."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )

    where = _where(action, repository, region)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AuthError(
            f"{where}: no AWS credentials found: set AWS_PROFILE, run `aws configure` or attach a role"
        )
    if isinstance(exc, ProfileNotFound):
        return AuthError(f"{where}: {exc}: check the profile name (or AWS_PROFILE)").hinted("check --profile")
    if isinstance(exc, NoRegionError):
        return UsageError(f"{where}: {NO_REGION}").hinted("pass --region")
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return TransportError(
            f"{where}: cannot reach the ECR endpoint: check the network and the Region name"
        )
    if not isinstance(exc, ClientError):
        return AwsError(f"{where}: {exc}")
    code = str(exc.response.get("Error", {}).get("Code", ""))
    message = str(exc.response.get("Error", {}).get("Message", "")).strip().rstrip(".")
    if code in _NOT_FOUND:
        return NotFoundError(f"{where}: {_NOT_FOUND[code]}").hinted(_CLI_HINTS.get(code, ""))
    if code in _AUTH:
        # AWS names the missing permission (e.g. ecr:CreateRepository): exactly what the user needs.
        return AuthError(
            f"{where}: access denied ({message or code}): check the IAM policy of these credentials"
        )
    if code in _THROTTLED:
        return AwsError(
            f"{where}: still throttled after {MAX_ATTEMPTS} attempts: retry later or lower concurrency"
        )
    if code in _BAD_INPUT:
        return UsageError(f"{where}: ECR rejected the request: {message or code}")
    if code in _HINTS:
        return AwsError(f"{where}: {_HINTS[code]}").hinted(_CLI_HINTS.get(code, ""))
    return AwsError(f"{where}: {code}: {message}" if message else f"{where}: {code}")


@contextmanager
def aws_call(action: str, *, repository: str | None = None, region: str | None = None) -> Iterator[None]:
    """Run a block of boto3 calls, raising `aws_error(...)` for any botocore failure inside it."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise aws_error(exc, action=action, repository=repository, region=region) from exc


def _where(action: str, repository: str | None, region: str | None) -> str:
    target = f" {repository}" if repository else ""
    place = f" in {region}" if region else ""
    return f"{action}{target}{place}"
