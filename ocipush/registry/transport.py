"""HTTP transport for one registry: kept-alive connections (`wire.py`), auth challenges, ECR token refresh, the
retry policy and redirects that never carry Authorization to another host."""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import urlencode, urljoin, urlsplit

from ocipush.errors import TransportError
from ocipush.limits import MAX_LISTING_BYTES, buffered
from ocipush.log import DEBUG, get_logger, redact
from ocipush.registry import deadline, ecr
from ocipush.registry.auth import Authenticator
from ocipush.registry.options import RegistryOptions, is_loopback
from ocipush.registry.retry import RETRYABLE_STATUS, RetryBudget
from ocipush.registry.wire import (
    Body,
    ConnectError,
    Pool,
    ProxyRefused,
    Response,
    StaleConnection,
    Timeout,
    TLSFailed,
    WireError,
)

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    import ssl

BodyFactory = Callable[[], Body]

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
USER_AGENT = "ocipush/0.1"
_log = get_logger(__name__)


class Transport:
    """Everything needed to send one request to registry `host` and get a meaningful answer back."""

    def __init__(self, host: str, options: RegistryOptions) -> None:
        self.host = host
        self.options = options
        self.base_url = options.base_url(host)
        self.auth = Authenticator(host, options)
        self._scheme_lock = threading.Lock()
        self._scheme_known = not options.may_use_http(host)
        jobs = max(options.jobs, 1)
        self.pool = Pool(options.timeout, min(options.timeout, 15.0), max_idle=jobs + 4)
        self._tls: dict[bool, ssl.SSLContext] = {}
        self._tls_lock = threading.Lock()
        # Docker Hub's quota headers (remaining, limit) from the latest answer carrying them, for `sync` to heed.
        self.ratelimit: tuple[str, str] | None = None

    def tls_for(self, url: str) -> ssl.SSLContext | None:
        """The TLS context for an https URL, made when first needed (the trust store costs ~20 ms to load).
        --insecure HOST: TLS without verification for that registry (self-signed, as docker and skopeo allow),
        never for the hosts it redirects to."""
        parts = urlsplit(url)
        if parts.scheme != "https":
            return None
        verify = not (parts.netloc == self.host and self.host in self.options.insecure)
        with self._tls_lock:
            context = self._tls.get(verify)
            if context is None:
                from ocipush.registry.tls import ssl_context  # here: plain-HTTP registries never load ssl

                context = self._tls[verify] = ssl_context(self.host, self.options, verify)
            return context

    def send(
        self, method: str, url: str, headers: dict[str, str], body: Body | None, limit: int | None,
        within: float | None = None,
    ) -> Response:  # fmt: skip
        """One request as it is (no auth, retries or redirects), within the deadline (`within` seconds, else the
        options'); the answer is read unless `limit` is None and it succeeded (the caller streams and closes it)."""
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
        with deadline.deadline(within or self.options.deadline):
            url = self.options.route(url)
            response = self.pool.request(method, url, headers, body, self.tls_for(url))
            keep_open = limit is None and response.status_code < 300
            return response if keep_open else buffered(response, limit or MAX_LISTING_BYTES)

    def close(self) -> None:
        self.pool.close()

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if not self._scheme_known:
            self._choose_scheme()
        return self.base_url + path

    def _choose_scheme(self) -> None:
        """For insecure and loopback hosts, as docker does: HTTPS when the registry speaks it, else plain HTTP.
        Loopback is asked over HTTP first: nothing leaves the machine, and it spares loading a trust store."""
        with self._scheme_lock:
            if self._scheme_known:
                return
            plain = (is_loopback(self.host) and self._answers("http")) or not self._answers("https")
            if plain:
                self.base_url = f"http://{self.host}"
            self._scheme_known = True

    def _answers(self, scheme: str) -> bool:
        """Whether a registry answers `GET /v2/` on this scheme (any status but Go's 400 to HTTP on a TLS port)."""
        url = f"{scheme}://{self.host}/v2/"
        try:
            answer = self.send("GET", url, {}, None, MAX_LISTING_BYTES, within=5.0)
            return scheme == "https" or "docker-distribution-api-version" in answer.headers
        except WireError as exc:
            if _untrusted_certificate(exc):
                # It speaks TLS, with a certificate we cannot verify: falling back to HTTP would only fail later.
                raise TransportError(
                    f"the TLS certificate of {self.host} is not trusted: pass --ca-file with its CA, "
                    f"or --insecure {self.host}"
                ) from None
            if isinstance(exc, ProxyRefused):  # says nothing about the registry's scheme
                raise TransportError(f"GET {self.host}: {exc}") from None
            return False

    def budget(self) -> RetryBudget:
        return RetryBudget(self.options.max_attempts, self.options.max_retry_seconds)

    def request(
        self,
        method: str,
        path: str,
        *,
        scopes: tuple[str, ...],
        headers: dict[str, str] | None = None,
        body: BodyFactory | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
        retry: bool = True,
        limit: int = MAX_LISTING_BYTES,
    ) -> Response:
        """Send a request, handling auth, retries and redirects. A streamed response must be closed by the caller;
        any other is read here, refused past `limit` bytes (an error answer is cut at MAX_ERROR_BYTES).

        `body` is a factory so that the request can be sent again after a retry or an auth challenge."""
        url = start = self.url(path) + (("&" if "?" in path else "?") + urlencode(params) if params else "")
        origin = urlsplit(self.base_url)[:2]
        budget = self.budget()
        auth_rounds = redirects = stale = 0
        while True:
            request_headers = dict(headers or {})
            # Credentials go only to the registry itself, with the scheme it was reached with: never to a
            # redirect target on another host, nor over plain HTTP to an HTTPS registry.
            same_host = urlsplit(url)[:2] == origin
            if same_host:
                authorization = self.auth.authorization(scopes)
                if authorization:
                    request_headers["Authorization"] = authorization
            content = body() if body is not None else None
            try:
                response = self.send(method, url, request_headers, content, None if stream else limit)
            except StaleConnection:
                stale += 1
                if stale <= 2:  # the server had closed a kept-alive connection: not a failure of this request
                    continue
                raise TransportError(f"{method} {self.host}: the registry keeps closing connections") from None
            except WireError as exc:  # sending, or reading an answer the server cut short
                if retry and budget.sleep(why=f"{method} {redact(url)}: {_describe(exc)}"):
                    continue
                # Without `retry` the caller retries (a blob upload resumes where it stopped): nothing to count here.
                tries = f" (gave up after {budget.attempt} attempts)" if retry else ""
                raise TransportError(f"{method} {self.host}: {_describe(exc)}{tries}") from None
            status = response.status_code
            if status == 407:
                raise TransportError(f"{method} {self.host}: the proxy asks for credentials (HTTP 407): set them "
                                     "in the proxy URL (http://USER:PASSWORD@HOST:PORT)")  # fmt: skip
            if _log.isEnabledFor(DEBUG):
                _log.debug("%s %s -> %d", method, redact(url), status)
            if "ratelimit-remaining" in response.headers:
                self.ratelimit = (response.headers["ratelimit-remaining"], response.headers.get("ratelimit-limit", ""))
            if status == 401 and same_host and auth_rounds < 2:
                auth_rounds += 1
                if auth_rounds == 2:
                    self.auth.forget_token(scopes)
                self.auth.handle_unauthorized(response, scopes, self.send, "Authorization" in request_headers)
                continue
            if (
                status == 403 and same_host and self.auth.ecr_host is not None and auth_rounds < 2
                and ecr.is_expired_token_answer(status, response.content) and self.auth.refresh_expired_ecr_token()
            ):  # fmt: skip
                auth_rounds += 1
                continue
            if status in REDIRECTS and "location" in response.headers and redirects < MAX_REDIRECTS:
                url = urljoin(url, response.headers["location"])  # the Location carries its own query
                redirects += 1
                if status == 303:
                    method, body = "GET", None
                continue
            if status in RETRYABLE_STATUS and retry:
                why = f"{method} {redact(url)}: HTTP {status}"
                if budget.sleep(response.headers.get("retry-after"), why):
                    # A presigned redirect target may have expired meanwhile: start again from the registry.
                    url, redirects = start, 0
                    continue
            return response


def _describe(exc: WireError) -> str:
    if _untrusted_certificate(exc):
        return f"{exc} (pass --ca-file with its CA)"
    if isinstance(exc, ProxyRefused | TLSFailed):
        return str(exc)
    if isinstance(exc, ConnectError):
        return "cannot connect (is the registry address right and reachable?)"
    if isinstance(exc, Timeout):
        return f"{deadline.MESSAGE} (--deadline)" if deadline.MESSAGE in str(exc) else "timed out"
    return f"connection failed ({exc})"


def _untrusted_certificate(exc: BaseException) -> bool:
    import ssl

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
