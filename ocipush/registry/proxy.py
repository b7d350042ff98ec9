"""The HTTP proxy the environment names for a request, as curl, docker and skopeo read it: `HTTPS_PROXY` for
https URLs, `HTTP_PROXY` for http ones, `ALL_PROXY` for both (lower-case names too, which win), and `NO_PROXY`
(comma-separated host names, domain suffixes with or without a leading dot, IP addresses, `*` for all)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ocipush.errors import UsageError
from ocipush.registry.credentials import basic_authorization


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy to send requests through, with its Proxy-Authorization value if it needs one."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # carries the proxy's password


def _setting(name: str) -> str:
    upper = name.upper()
    if upper == "HTTP_PROXY" and "REQUEST_METHOD" in os.environ:
        # under CGI, HTTP_PROXY comes from the client's "Proxy:" header (httpoxy): urllib and httpx ignore it too
        upper = ""
    return os.environ.get(name.lower()) or (upper and os.environ.get(upper)) or ""


def proxy_for(scheme: str, host: str) -> Proxy | None:
    """The proxy for a request to `host` over `scheme`, or None to go direct."""
    url = _setting(f"{scheme}_proxy") or _setting("all_proxy")
    if not url or bypassed(host, _setting("no_proxy")):
        return None
    return _parse(url)


def bypassed(host: str, no_proxy: str) -> bool:
    host = host.strip("[]").lower()
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        if entry.startswith("["):  # [IPv6] or [IPv6]:port
            entry = entry[1:].split("]", 1)[0]
        elif entry.count(":") == 1:  # a port on a name is not compared
            entry = entry.rsplit(":", 1)[0]
        entry = entry.removeprefix("*").lstrip(".")  # "*.example.com", as Go (docker, skopeo) reads it
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def _parse(url: str) -> Proxy:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", ""):
        raise UsageError(f"proxy scheme {parts.scheme!r} is not supported (an http:// proxy is)")
    try:
        port = parts.port or 80
    except ValueError:
        port = 0
    if not parts.hostname or not port:
        raise UsageError("the proxy named in the environment is not a host[:port] URL")
    authorization = None
    if parts.username is not None:
        authorization = basic_authorization(unquote(parts.username), unquote(parts.password or ""))
    return Proxy(parts.hostname, port, authorization)
