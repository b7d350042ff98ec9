"""Registry authentication: anonymous, Basic, and Bearer token challenges (realm/service/scope), with a token cache
per scope set. Credentials come from explicit options, ECR (boto3), or the docker config."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlencode, urlsplit

from ocipush.errors import AuthError, TransportError
from ocipush.lazy import Pattern
from ocipush.limits import MAX_TOKEN_BYTES
from ocipush.log import get_logger, redact
from ocipush.registry import ecr
from ocipush.registry.credentials import Credentials, basic_authorization, lookup_credentials
from ocipush.registry.options import RegistryOptions
from ocipush.registry.wire import WireError

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from typing import Protocol

    from ocipush.registry.wire import Response

    class Send(Protocol):
        """How the authenticator reaches a token service: one plain request, its answer read up to `limit` bytes."""

        def __call__(
            self, method: str, url: str, headers: dict[str, str], body: bytes | None, limit: int
        ) -> Response: ...


_PARAM_RE = Pattern(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')
_UNSET = object()
_log = get_logger(__name__)


# Plain classes for the records every command builds: a dataclass costs 0.2-0.4 ms to make at import (S5 in
# docs/benchmarks.md), and these need no equality or repr.
class Challenge:
    """A `WWW-Authenticate` challenge: its scheme (Bearer, Basic) and parameters (realm, service, scope)."""

    __slots__ = ("params", "scheme")

    def __init__(self, scheme: str, params: dict[str, str]) -> None:
        self.scheme = scheme
        self.params = params


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a `WWW-Authenticate` header (registries send one)."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM_RE.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def delete_scope(repository: str) -> str:
    return f"repository:{repository}:delete"


CATALOG_SCOPE = "registry:catalog:*"


class _Token:
    """A bearer token and when it expires (epoch seconds). Its repr shows neither: a token is a credential."""

    __slots__ = ("expires", "value")

    def __init__(self, value: str, expires: float) -> None:
        self.value = value
        self.expires = expires


class Authenticator:
    """Auth state of one registry host, shared by all threads that talk to it."""

    def __init__(self, host: str, options: RegistryOptions) -> None:
        self.host = host
        self.options = options
        self._lock = threading.Lock()
        self._scheme: str | None = None
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self._credentials: object = _UNSET
        self.ecr_host = ecr.parse_ecr_host(host)

    # --- credentials ---------------------------------------------------------------------------------------------

    def credentials(self) -> Credentials | None:
        if self.ecr_host and self.options.username is None:
            return ecr.ECR_TOKENS.credentials(self.ecr_host, self.options.aws_profile)
        with self._lock:
            if self._credentials is _UNSET:
                self._credentials = self._find_credentials()
            found = self._credentials
        return found if isinstance(found, Credentials) else None

    def _find_credentials(self) -> Credentials | None:
        if self.options.username is not None:
            _log.info("credentials for %s: the given username", self.host)
            return Credentials(self.options.username, self.options.password or "")
        found = lookup_credentials(self.host, self.options.docker_config)
        if found is None and ecr.is_ecr_public(self.host):
            found = ecr.ECR_TOKENS.public_credentials(self.options.aws_profile)
        _log.info("credentials for %s: %s", self.host, "found in the configuration" if found else "none (anonymous)")
        return found

    # --- headers -------------------------------------------------------------------------------------------------

    def authorization(self, scopes: tuple[str, ...]) -> str | None:
        """The Authorization header value for a request needing `scopes`, from what earlier challenges taught."""
        if self._scheme == "basic":
            creds = self.credentials()
            return None if creds is None else basic_authorization(creds.username, creds.password)
        if self._scheme == "bearer":
            with self._lock:
                token = self._tokens.get(scopes)
            if token and token.expires > time.time():
                return f"Bearer {token.value}"
        return None

    def handle_unauthorized(
        self,
        response: Response,
        scopes: tuple[str, ...],
        send: Send,
        sent_authorization: bool,
    ) -> None:
        """Learn from a 401 and get what the next attempt needs; raises AuthError when nothing can help."""
        challenge = parse_challenge(response.headers.get("www-authenticate", ""))
        _log.debug("%s answered 401; challenge: %s", self.host, challenge.scheme if challenge else "none")
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            raise AuthError(f"{self.host} refused access and offered no usable authentication challenge")
        if challenge.scheme == "basic":
            if self.credentials() is None:
                raise AuthError(f"{self.host} requires credentials, and none are configured for it",
                                host=self.host, missing_credentials=True, status=401)  # fmt: skip
            if self._scheme == "basic" and sent_authorization:
                raise AuthError(self._rejected(), host=self.host, status=401)
            self._scheme = "basic"
            return
        self._scheme = "bearer"
        token = self._fetch_token(challenge, scopes, send)
        with self._lock:
            self._tokens[scopes] = token

    def _rejected(self) -> str:
        if self.ecr_host is not None and self.options.username is None:
            account, region = self.ecr_host.account, self.ecr_host.region
            return (
                f"{self.host} rejected the ECR registry token: check that the AWS identity has IAM permission for "
                f"ecr:GetAuthorizationToken and this repository, and that account {account} and Region {region} are "
                "the ones meant (a token is valid only for the account and Region in the host)"
            )
        return f"{self.host} rejected the credentials (check the username and password)"

    def forget_token(self, scopes: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop(scopes, None)

    def refresh_expired_ecr_token(self) -> bool:
        """After ECR's 403 "token has expired": drop the cached token so the next attempt fetches a new one."""
        if self.ecr_host is None or self.options.username is not None:
            return False
        ecr.ECR_TOKENS.invalidate(self.ecr_host, self.options.aws_profile)
        return True

    def _realm_credentials(self, realm: str) -> Credentials | None:
        """The credentials that token service `realm` may receive: none over plain HTTP (loopback and --insecure
        hosts aside), and never an AWS-issued registry password: ECR answers Basic challenges only, so a bearer
        challenge in its name must not carry its token elsewhere."""
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AuthError(f"{self.host} named a token service that is not an http(s) URL")
        explicit = self.options.username is not None
        not_ecr = AuthError(
            f"{self.host} asked for a bearer token from {parts.netloc}, which Amazon ECR never does: "
            "refusing to send it the ECR token"
        )
        if self.ecr_host is not None and not explicit:
            raise not_ecr
        creds = self.credentials()
        if creds is not None and not explicit and ecr.is_ecr_public(self.host) and parts.netloc != ecr.ECR_PUBLIC_HOST:
            raise not_ecr
        if creds is not None and parts.scheme == "http" and not self.options.may_use_http(parts.netloc):
            raise AuthError(
                f"the token service of {self.host} ({parts.netloc}) is plain HTTP: refusing to send credentials "
                f"over it (--insecure {parts.netloc} allows it)"
            )
        return creds

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...], send: Send) -> _Token:
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthError(f"{self.host} sent a bearer challenge without a realm")
        # The challenge's own scope matters on registries with non-repository scopes (ECR Public says "aws").
        wanted = list(scopes)
        if challenge.params.get("scope") and challenge.params["scope"] not in wanted:
            wanted.append(challenge.params["scope"])
        service = challenge.params.get("service")
        creds = self._realm_credentials(realm)
        _log.info("token for %s from %s (scopes %s, %s)", self.host, redact(realm), " ".join(wanted),
                  "with credentials" if creds else "anonymous")  # fmt: skip
        try:
            if creds is not None and creds.is_identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": creds.password, "client_id": "ocipush"}
                if service:
                    form["service"] = service
                if wanted:
                    form["scope"] = " ".join(wanted)
                headers = {"Content-Type": "application/x-www-form-urlencoded"}
                answer = send("POST", realm, headers, urlencode(form).encode(), MAX_TOKEN_BYTES)
            else:
                query = urlencode(([("service", service)] if service else []) + [("scope", s) for s in wanted])
                url = realm + ("&" if "?" in realm else "?") + query if query else realm
                headers = {"Authorization": basic_authorization(creds.username, creds.password)} if creds else {}
                answer = send("GET", url, headers, None, MAX_TOKEN_BYTES)
        except WireError as exc:
            raise TransportError(f"cannot reach the token service of {self.host}: {exc.__class__.__name__}") from None
        if answer.status_code in (401, 403):
            what = "rejected the credentials" if creds else "requires credentials (none are configured)"
            raise AuthError(f"token service for {self.host} {what}", host=self.host, missing_credentials=not creds,
                            status=answer.status_code)  # fmt: skip
        if answer.status_code != 200:
            raise AuthError(f"token service for {self.host} answered HTTP {answer.status_code}")
        try:
            data = answer.json()
            value = data.get("token") or data.get("access_token")
            expires_in = int(data.get("expires_in") or 60)
        except (ValueError, TypeError, AttributeError):  # not JSON, not an object, a bad expires_in
            value, expires_in = None, 60
        if not value:
            raise AuthError(f"token service for {self.host} returned no token")
        if not isinstance(value, str) or not value.isascii() or not value.isprintable():
            raise AuthError(f"token service for {self.host} returned a token that is not printable ASCII")
        # Renew a little early so a token never expires mid-request.
        return _Token(str(value), time.time() + max(expires_in - 10, 10))
