"""Amazon ECR as a registry: host recognition, and registry passwords from `GetAuthorizationToken`, cached per
account and Region, refreshed at half-life and whenever ECR answers 403 "token has expired"."""

from __future__ import annotations

import threading
import time

from ocipush.lazy import Pattern
from ocipush.log import get_logger
from ocipush.registry.credentials import Credentials

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

_log = get_logger(__name__)

_PRIVATE_HOST = Pattern(
    r"^(?P<account>\d{12})\.(?:dkr\.ecr(?P<fips>-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"|dkr-ecr(?P<fips2>-fips)?\.(?P<region2>[a-z0-9-]+)\.on\.aws)(?::\d+)?$"
)
_AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".on.aws")
ECR_PUBLIC_HOST = "public.ecr.aws"
EXPIRED_MARKER = "authorization token has expired"


# Plain classes for the records every command builds: a dataclass costs 0.2-0.4 ms to make at import (S5 in
# docs/benchmarks.md), and these need no equality or repr.
class EcrHost:
    """The account and Region a private ECR registry host names, and whether it is a FIPS endpoint."""

    __slots__ = ("account", "fips", "region")

    def __init__(self, account: str, region: str, fips: bool) -> None:
        self.account = account
        self.region = region
        self.fips = fips


def parse_ecr_host(host: str) -> EcrHost | None:
    """Account and Region of a private ECR registry host (standard, .com.cn, FIPS, dual-stack), else None."""
    host = host.lower()
    # Every registry host is asked: the pattern is compiled only for a name (without its port) that could be AWS's.
    match = _PRIVATE_HOST.match(host) if host.rsplit(":", 1)[0].endswith(_AWS_SUFFIXES) else None
    if not match:
        return None
    region = match.group("region") or match.group("region2")
    fips = bool(match.group("fips") or match.group("fips2"))
    return EcrHost(match.group("account"), region, fips)


def is_ecr_public(host: str) -> bool:
    return host.lower() == ECR_PUBLIC_HOST


def is_ecr(host: str) -> bool:
    """Private ECR or ECR Public: uploads in parts, and a Range header that is never evidence."""
    return parse_ecr_host(host) is not None or is_ecr_public(host)


def is_expired_token_answer(status: int, body: bytes) -> bool:
    """ECR says 403 with a 'token has expired' body (a bare 403 on HEAD, which we treat the same way)."""
    return status == 403 and (not body or EXPIRED_MARKER in body.decode(errors="replace").lower())


class _Token:
    """ECR credentials, when they were fetched and when they expire (epoch seconds)."""

    __slots__ = ("credentials", "expires", "fetched")

    def __init__(self, credentials: Credentials, fetched: float, expires: float) -> None:
        self.credentials = credentials
        self.fetched = fetched
        self.expires = expires

    @property
    def stale(self) -> bool:
        # The official credential helper treats a token as stale at half-life; so do we.
        return time.time() >= self.fetched + (self.expires - self.fetched) / 2


def _token_of(data: Mapping[str, Any]) -> _Token:
    """The credentials of an `authorizationData` entry (ECR's or ECR Public's), and when they expire."""
    import base64  # here: only a registry token needs it

    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    now = time.time()
    expires = data["expiresAt"].timestamp() if data.get("expiresAt") else now + 12 * 3600
    # moto hands out tokens that are already "expired": never let that make a token permanently stale.
    return _Token(Credentials(user, password), now, max(expires, now + 600))


class EcrTokenCache:
    """Process-wide cache of ECR registry passwords, keyed by (account, Region, profile)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str | None], _Token] = {}

    def credentials(self, host: EcrHost, profile: str | None = None) -> Credentials:
        key = (host.account, host.region, profile)
        with self._lock:
            token = self._tokens.get(key)
            if token is None or token.stale:
                token = self._fetch(host, profile)
                self._tokens[key] = token
            return token.credentials

    def invalidate(self, host: EcrHost, profile: str | None = None) -> None:
        with self._lock:
            self._tokens.pop((host.account, host.region, profile), None)

    @staticmethod
    def _fetch(host: EcrHost, profile: str | None) -> _Token:
        from ocipush.aws import aws_error, ecr_client

        client = ecr_client(region=host.region, profile=profile)
        _log.info("fetching an ECR registry token for account %s in %s", host.account, host.region)
        try:
            answer = client.get_authorization_token(registryIds=[host.account])
        except Exception as exc:
            raise aws_error(exc, action="get an ECR registry token", repository=None, region=host.region) from None
        return _token_of(answer["authorizationData"][0])

    def public_credentials(self, profile: str | None = None) -> Credentials | None:
        """Basic credentials for ECR Public's token endpoint (its API lives only in us-east-1), or None when no AWS
        credentials are configured: then pulls go anonymous, as `docker pull public.ecr.aws/...` does."""
        key = ("public", "us-east-1", profile)
        with self._lock:
            token = self._tokens.get(key)
            if token is None or token.stale:
                from ocipush.aws import ecr_public_client

                try:
                    data = ecr_public_client(profile=profile).get_authorization_token()["authorizationData"]
                except Exception:
                    return None
                token = self._tokens[key] = _token_of(data)
            return token.credentials


ECR_TOKENS = EcrTokenCache()
