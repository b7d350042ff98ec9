"""A registry front that serves the OCI 1.1 referrers API, for the one thing the distribution 2.8 registry behind it
cannot do: `GET /v2/<name>/referrers/<digest>[?artifactType=T]` by distribution-spec "Listing Referrers" (an image
index of the descriptors of the manifests pushed through it with that `subject`, artifactType and annotations
copied, pages of `page_size` linked by `Link: <…>; rel="next"`, `OCI-Filters-Applied` when filtered), and the
`OCI-Subject` header on a manifest PUT with a subject. Everything else is forwarded to the real registry unchanged."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from .server import BackgroundServer, QuietHandler

_MANIFEST = re.compile(r"^/v2/(.+)/manifests/([^/]+)$")
_REFERRERS = re.compile(r"^/v2/(.+)/referrers/([^/]+)$")
INDEX = "application/vnd.oci.image.index.v1+json"


class ReferrersApiRegistry(BackgroundServer):
    def __init__(self, upstream_url: str, page_size: int = 2) -> None:
        super().__init__(_Handler)
        self.upstream = httpx.Client(base_url=upstream_url, timeout=30)
        self.page_size = page_size
        self.lock = threading.Lock()
        self.referrers: dict[tuple[str, str], dict[str, dict[str, object]]] = {}
        self.requests: Counter[str] = Counter()  # "referrers", "referrers-page", "filtered"

    def stop(self) -> None:
        super().stop()
        self.upstream.close()

    def record(self, name: str, body: bytes, media_type: str) -> str | None:
        """Remember a pushed manifest with a subject; returns the subject digest."""
        try:
            document = json.loads(body)
        except ValueError:
            return None
        subject = document.get("subject") if isinstance(document, dict) else None
        if not isinstance(subject, dict):
            return None
        artifact_type = document.get("artifactType") or (document.get("config") or {}).get("mediaType")
        descriptor: dict[str, object] = {
            "mediaType": media_type,
            "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "size": len(body),
        }
        if artifact_type:
            descriptor["artifactType"] = artifact_type
        if document.get("annotations"):
            descriptor["annotations"] = document["annotations"]
        with self.lock:
            self.referrers.setdefault((name, subject["digest"]), {})[str(descriptor["digest"])] = descriptor
        return str(subject["digest"])


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        owner: ReferrersApiRegistry = self.server.owner  # type: ignore[attr-defined]
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        listing = _REFERRERS.match(split.path)
        if listing and self.command == "GET":
            self._list(owner, listing.group(1), listing.group(2), parse_qs(split.query))
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "connection")}
        response = owner.upstream.request(self.command, self.path, headers=headers, content=body)
        extra: dict[str, str] = {}
        pushed = _MANIFEST.match(split.path)
        if pushed and self.command == "PUT" and response.status_code == 201:
            subject = owner.record(pushed.group(1), body, self.headers.get("Content-Type", ""))
            if subject:
                extra["OCI-Subject"] = subject
        self.send_response(response.status_code)
        for key, value in response.headers.multi_items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding", "content-encoding"):
                self.send_header(key, value)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.content)

    def _list(self, owner: ReferrersApiRegistry, name: str, digest: str, query: dict[str, list[str]]) -> None:
        wanted = query.get("artifactType", [None])[0]
        page = int(query.get("page", ["0"])[0])
        with owner.lock:
            found = list(owner.referrers.get((name, digest), {}).values())
            owner.requests["referrers" if page == 0 else "referrers-page"] += 1
        if wanted:
            found = [d for d in found if d.get("artifactType") == wanted]
        size = owner.page_size
        body = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": found[page * size : (page + 1) * size]})
        self.send_response(200)
        self.send_header("Content-Type", INDEX)
        if wanted:
            self.send_header("OCI-Filters-Applied", "artifactType")
        if (page + 1) * size < len(found):
            params = {"page": str(page + 1), **({"artifactType": wanted} if wanted else {})}
            self.send_header("Link", f'</v2/{name}/referrers/{digest}?{urlencode(params)}>; rel="next"')
        data = body.encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
