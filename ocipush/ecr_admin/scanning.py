"""Image scanning: start a scan, wait for it, read findings by severity, registry scanning configuration."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ocipush.aws import aws_call, ecr_client
from ocipush.ecr_admin.models import ImageId
from ocipush.errors import AwsError, UsageError

# Lowest to highest; UNTRIAGED (enhanced scanning) and UNDEFINED rank below everything.
SEVERITIES = ("UNDEFINED", "UNTRIAGED", "INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
# Scan statuses after which waiting is pointless (ACTIVE is enhanced scanning's "done, and watching").
_FINISHED = {"COMPLETE", "ACTIVE"}
_FAILED = {
    "FAILED",
    "UNSUPPORTED_IMAGE",
    "SCAN_ELIGIBILITY_EXPIRED",
    "FINDINGS_UNAVAILABLE",
    "LIMIT_EXCEEDED",
}


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    severity: str
    package: str | None = None
    uri: str | None = None
    description: str | None = None


class ScanResult(BaseModel):
    """A scan's status and its findings, with ECR's per-severity counts."""

    model_config = ConfigDict(frozen=True)

    repository: str
    image: ImageId
    status: str
    description: str | None = None
    severity_counts: dict[str, int] = {}
    findings: list[Finding] = []

    def count_at_or_above(self, threshold: str) -> int:
        """How many findings are at `threshold` severity or worse (for `--fail-on`)."""
        floor = severity_rank(threshold)
        return sum(n for severity, n in self.severity_counts.items() if severity_rank(severity) >= floor)


class ScanningRule(BaseModel):
    """A registry scanning rule: how often to scan repositories matching the wildcard filters."""

    model_config = ConfigDict(frozen=True)

    frequency: Literal["SCAN_ON_PUSH", "CONTINUOUS_SCAN", "MANUAL"]
    filters: tuple[str, ...]


class RegistryScanning(BaseModel):
    model_config = ConfigDict(frozen=True)

    scan_type: Literal["BASIC", "ENHANCED"]
    rules: tuple[ScanningRule, ...] = ()


def severity_rank(severity: str) -> int:
    try:
        return SEVERITIES.index(severity.upper())
    except ValueError:
        raise UsageError(f"unknown severity {severity!r}; choose from {', '.join(SEVERITIES[2:])}") from None


def start_image_scan(
    repository: str, image: ImageId, *, region: str | None = None, profile: str | None = None
) -> str:
    """Start a basic scan of one image; returns ECR's scan status (normally IN_PROGRESS)."""
    # One attempt: LimitExceededException here means "already scanned today", not "slow down".
    client = ecr_client(region, profile, max_attempts=1)
    with aws_call("start-image-scan", repository=f"{repository}{image}", region=client.meta.region_name):
        response = client.start_image_scan(repositoryName=repository, imageId=image.to_api())
    return response["imageScanStatus"]["status"]


def describe_image_scan_findings(
    repository: str, image: ImageId, *, region: str | None = None, profile: str | None = None
) -> ScanResult:
    """The image's latest scan status and all its findings (basic and enhanced)."""
    client = ecr_client(region, profile)
    findings: list[Finding] = []
    status: dict[str, Any] = {}
    counts: dict[str, int] = {}
    with aws_call(
        "describe-image-scan-findings", repository=f"{repository}{image}", region=client.meta.region_name
    ):
        pages = client.get_paginator("describe_image_scan_findings").paginate(
            repositoryName=repository, imageId=image.to_api()
        )
        for page in pages:
            status = dict(page.get("imageScanStatus") or {})
            result = page.get("imageScanFindings") or {}
            counts.update({str(k): v for k, v in (result.get("findingSeverityCounts") or {}).items()})
            findings.extend(_basic(f) for f in result.get("findings", []))
            findings.extend(_enhanced(f) for f in result.get("enhancedFindings", []))
    findings.sort(key=lambda f: (-severity_rank(f.severity), f.name))
    return ScanResult(
        repository=repository,
        image=image,
        status=status.get("status", "UNKNOWN"),
        description=status.get("description"),
        severity_counts=counts,
        findings=findings,
    )


def scan_image(
    repository: str,
    image: ImageId,
    *,
    region: str | None = None,
    profile: str | None = None,
    on_progress: Callable[[str], None] | None = None,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ScanResult:
    """Start a scan and wait for its findings. ECR allows one basic scan per image a day: when today's scan
    already ran (or scan-on-push started one), its result is used instead of failing."""
    from botocore.exceptions import ClientError

    # One attempt: LimitExceededException here means "already scanned today", not "slow down".
    client = ecr_client(region, profile, max_attempts=1)
    with aws_call("start-image-scan", repository=f"{repository}{image}", region=client.meta.region_name):
        try:
            client.start_image_scan(repositoryName=repository, imageId=image.to_api())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "LimitExceededException":
                raise
    return wait_for_scan(
        repository,
        image,
        region=region,
        profile=profile,
        on_progress=on_progress,
        poll_seconds=poll_seconds,
        sleep=sleep,
    )


def wait_for_scan(
    repository: str,
    image: ImageId,
    *,
    region: str | None = None,
    profile: str | None = None,
    on_progress: Callable[[str], None] | None = None,
    poll_seconds: float = 5.0,
    max_polls: int = 360,
    sleep: Callable[[float], None] = time.sleep,
) -> ScanResult:
    """Poll the scan until it finishes; raises AwsError when it fails or does not finish in time."""
    for _ in range(max_polls):
        result = describe_image_scan_findings(repository, image, region=region, profile=profile)
        if on_progress:
            on_progress(result.status)
        if result.status in _FINISHED:
            return result
        if result.status in _FAILED:
            raise AwsError(f"scan of {repository}{image} ended {result.status}: {result.description or ''}")
        sleep(poll_seconds)
    raise AwsError(f"scan of {repository}{image} did not finish after {max_polls} polls")


def get_registry_scanning_configuration(
    *, region: str | None = None, profile: str | None = None
) -> RegistryScanning:
    client = ecr_client(region, profile)
    with aws_call("get-registry-scanning-configuration", region=client.meta.region_name):
        config = client.get_registry_scanning_configuration()["scanningConfiguration"]
    return RegistryScanning(
        scan_type=config.get("scanType", "BASIC"),
        rules=tuple(
            ScanningRule(
                frequency=rule["scanFrequency"], filters=tuple(f["filter"] for f in rule["repositoryFilters"])
            )
            for rule in config.get("rules", [])
        ),
    )


def put_registry_scanning_configuration(
    scan_type: Literal["BASIC", "ENHANCED"],
    rules: Sequence[ScanningRule],
    *,
    region: str | None = None,
    profile: str | None = None,
) -> None:
    client = ecr_client(region, profile)
    api_rules: Any = [
        {
            "scanFrequency": rule.frequency,
            "repositoryFilters": [{"filter": f, "filterType": "WILDCARD"} for f in rule.filters],
        }
        for rule in rules
    ]
    with aws_call("put-registry-scanning-configuration", region=client.meta.region_name):
        client.put_registry_scanning_configuration(scanType=scan_type, rules=api_rules)


def _basic(item: Any) -> Finding:
    attributes = {a["key"]: a.get("value") for a in item.get("attributes", [])}
    package = attributes.get("package_name")
    if package and attributes.get("package_version"):
        package = f"{package} {attributes['package_version']}"
    return Finding(
        name=item.get("name", "?"),
        severity=item.get("severity", "UNDEFINED"),
        package=package,
        uri=item.get("uri"),
        description=item.get("description"),
    )


def _enhanced(item: Any) -> Finding:
    details = item.get("packageVulnerabilityDetails") or {}
    packages = ", ".join(
        f"{p.get('name')} {p.get('version', '')}".strip() for p in details.get("vulnerablePackages", [])
    )
    return Finding(
        name=details.get("vulnerabilityId") or item.get("title", "?"),
        severity=item.get("severity", "UNDEFINED"),
        package=packages or None,
        uri=details.get("sourceUrl"),
        description=item.get("description"),
    )
