"""HTTP transport for one registry: a bounded httpx client, auth challenges, ECR token refresh, the retry policy and
redirects that never carry Authorization to another host."""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterable
from urllib.parse import urljoin, urlsplit

import httpx
from httpcore._sync import http11 as httpcore_http11

from ocipush.errors import TransportError
from ocipush.limits import MAX_LISTING_BYTES, buffered
from ocipush.log import get_logger, redact
from ocipush.registry import deadline, ecr
from ocipush.registry.auth import Authenticator
from ocipush.registry.options import RegistryOptions, is_loopback
from ocipush.registry.retry import RETRYABLE_STATUS, RetryBudget
from ocipush.registry.tls import ssl_context

BodyFactory = Callable[[], Iterable[bytes] | bytes]

# httpcore reads HTTP/1.1 bodies 64 KiB at a time: pulling 1 GiB cost ~16,000 recv calls and 1.6-3 s of system
# time on a 2-core machine. 1 MiB reads cut a pull of 1 GiB from 2.6-3.0 s to 1.8-2.0 s. httpx has no setting for
# it; the class attribute is the knob httpcore itself reads.
_READ_SIZE = 1 << 20
if getattr(httpcore_http11.HTTP11Connection, "READ_NUM_BYTES", 0) < _READ_SIZE:
    httpcore_http11.HTTP11Connection.READ_NUM_BYTES = _READ_SIZE
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
        self._clients: dict[str, httpx.Client] = {}
        self._clients_lock = threading.Lock()
        # Docker Hub's quota headers (remaining, limit) from the latest answer carrying them, for `sync` to heed.
        self.ratelimit: tuple[str, str] | None = None

    def client_for(self, url: str) -> httpx.Client:
        """The pooled client for the URL. The HTTPS one (whose trust store costs ~45 ms to load) is made only
        when an HTTPS URL comes up; the plain one never carries TLS, so it needs no trust store at all."""
        parts = urlsplit(url)
        scheme = "https" if parts.scheme == "https" else "http"
        # --insecure HOST: TLS without verification for that registry (self-signed, as docker and skopeo allow),
        # never for the hosts it redirects to.
        verify = scheme == "https" and not (parts.netloc == self.host and self.host in self.options.insecure)
        key = f"{scheme}:{'verified' if verify else 'unverified'}"
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                jobs = max(self.options.jobs, 1)
                tls = ssl_context(self.host, self.options, verify) if scheme == "https" else False
                limits = httpx.Limits(max_connections=jobs + 4, max_keepalive_connections=jobs + 4)
                connections = httpx.HTTPTransport(verify=tls, limits=limits)
                deadline.install(connections)
                client = self._clients[key] = httpx.Client(
                    transport=connections,
                    verify=tls,  # and limits: for the transports httpx makes for proxies from the environment
                    limits=limits,
                    timeout=httpx.Timeout(self.options.timeout, connect=min(self.options.timeout, 15.0)),
                    follow_redirects=False,
                    headers={"User-Agent": USER_AGENT},
                )
            return client

    def close(self) -> None:
        with self._clients_lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

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
            with self.client_for(url).stream("GET", url, timeout=5.0) as answer:
                return scheme == "https" or "docker-distribution-api-version" in answer.headers
        except httpx.TransportError as exc:
            if _untrusted_certificate(exc):
                # It speaks TLS, with a certificate we cannot verify: falling back to HTTP would only fail later.
                raise TransportError(
                    f"the TLS certificate of {self.host} is not trusted: pass --ca-file with its CA, "
                    f"or --insecure {self.host}"
                ) from None
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
    ) -> httpx.Response:
        """Send a request, handling auth, retries and redirects. A streamed response must be closed by the caller;
        any other is read here, refused past `limit` bytes (an error answer is cut at MAX_ERROR_BYTES).

        `body` is a factory so that the request can be sent again after a retry or an auth challenge."""
        url = self.url(path)
        origin = urlsplit(self.base_url)[:2]
        budget = self.budget()
        auth_rounds = 0
        redirects = 0
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
                client = self.client_for(url)
                request = client.build_request(method, url, headers=request_headers, content=content, params=params)
                with deadline.deadline(self.options.deadline):
                    response = self._send(client, request, stream, limit)
                status = response.status_code
                if _log.isEnabledFor(logging.DEBUG):
                    _log.debug("%s %s -> %d", method, redact(str(request.url)), status)
                if "ratelimit-remaining" in response.headers:
                    headers_ = response.headers
                    self.ratelimit = (headers_["ratelimit-remaining"], headers_.get("ratelimit-limit", ""))
                if status == 401 and same_host and auth_rounds < 2:
                    auth_rounds += 1
                    if auth_rounds == 2:
                        self.auth.forget_token(scopes)
                    self.auth.handle_unauthorized(response, scopes, self.client_for, "Authorization" in request_headers)
                    continue
                if status == 403 and same_host and self.auth.ecr_host is not None and auth_rounds < 2:
                    data = response.content
                    if ecr.is_expired_token_answer(status, data) and self.auth.refresh_expired_ecr_token():
                        response.close()
                        auth_rounds += 1
                        continue
                if status in REDIRECTS and "location" in response.headers and redirects < MAX_REDIRECTS:
                    response.close()
                    url = urljoin(str(response.url), response.headers["location"])
                    params = None  # the Location carries its own query
                    redirects += 1
                    if status == 303:
                        method, body = "GET", None
                    continue
                if status in RETRYABLE_STATUS and retry:
                    retry_after = response.headers.get("retry-after")
                    response.close()
                    if budget.sleep(retry_after, f"{method} {redact(url)}: HTTP {status}"):
                        # A presigned redirect target may have expired meanwhile: start again from the registry.
                        url, redirects = self.url(path), 0
                        continue
                return response
            except httpx.TransportError as exc:  # sending, or reading an answer the server cut short
                if retry and budget.sleep(why=f"{method} {redact(url)}: {_describe(exc)}"):
                    continue
                # Without `retry` the caller retries (a blob upload resumes where it stopped): nothing to count here.
                tries = f" (gave up after {budget.attempt} attempts)" if retry else ""
                raise TransportError(f"{method} {self.host}: {_describe(exc)}{tries}") from None

    @staticmethod
    def _send(client: httpx.Client, request: httpx.Request, stream: bool, limit: int) -> httpx.Response:
        """Send and, unless streamed, read the answer, all within the deadline. Answers that are not to be handed
        back as a stream (an auth challenge, an error, a redirect) are read here too, within their limits."""
        response = client.send(request, stream=True)
        keep_open = stream and response.status_code < 300
        return response if keep_open else buffered(response, limit)


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect (is the registry address right and reachable?)"
    if isinstance(exc, httpx.TimeoutException):
        return f"{deadline.MESSAGE} (--deadline)" if deadline.MESSAGE in str(exc) else "timed out"
    return f"connection failed ({exc.__class__.__name__})"


def _untrusted_certificate(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
