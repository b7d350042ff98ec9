"""The distribution v2 calls for one repository: blobs, manifests, tags, catalog, deletes, upload sessions."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Generator, Iterator
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from ocipush import mediatypes as mt
from ocipush.digest import hash_as, is_digest
from ocipush.document import ManifestDocument, sniff_media_type
from ocipush.errors import DigestMismatchError, NotFoundError, RegistryError
from ocipush.lazy import Pattern
from ocipush.limits import MAX_MANIFEST_BYTES, read_limited
from ocipush.registry import deadline
from ocipush.registry.auth import CATALOG_SCOPE, delete_scope, pull_scope, push_scope
from ocipush.registry.errors import error_codes, registry_error
from ocipush.registry.transport import BodyFactory, Transport
from ocipush.registry.wire import Response

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    from typing import Any

    from ocipush.models import Descriptor

_LINK_RE = Pattern(r"<([^>]+)>\s*;\s*rel=\"?next\"?")
MAX_PAGES = 10_000  # ten million tags or repositories at the usual page size


class RegistryClient:
    """Calls on repository `repository` of the registry behind `transport`."""

    def __init__(self, transport: Transport, repository: str) -> None:
        self.transport = transport
        self.repository = repository
        self.pull_scopes = (pull_scope(repository),)
        self.push_scopes = (push_scope(repository),)

    @property
    def name(self) -> str:
        return f"{self.transport.host}/{self.repository}"

    def _ref(self, tag_or_digest: str) -> str:
        """`host/repo:tag` or `host/repo@digest`, as errors name what was asked for."""
        return f"{self.name}{'@' if ':' in tag_or_digest else ':'}{tag_or_digest}"

    def _path(self, suffix: str) -> str:
        return f"/v2/{self.repository}/{suffix}"

    # --- blobs ---------------------------------------------------------------------------------------------------

    def blob_size(self, digest: str, push: bool = False) -> int | None:
        """Size of a blob the repository has, or None."""
        scopes = self.push_scopes if push else self.pull_scopes
        response = self.transport.request("HEAD", self._path(f"blobs/{digest}"), scopes=scopes)
        if response.status_code == 200:
            return int(response.headers.get("content-length", "-1"))
        if response.status_code == 404:
            return None
        raise registry_error(response, f"check blob {digest[:19]} in {self.name}", f"{self.name}@{digest}")

    @contextlib.contextmanager
    def open_blob(self, digest: str, start: int = 0) -> Iterator[Response]:
        """A streamed GET of a blob from byte `start` (redirects followed without credentials)."""
        # identity: the bytes must be the blob's own, read raw and hashed as they come.
        headers = {"Accept-Encoding": "identity"}
        if start:
            headers["Range"] = f"bytes={start}-"
        response = self.transport.request(
            "GET", self._path(f"blobs/{digest}"), scopes=self.pull_scopes, headers=headers, stream=True
        )
        try:
            if response.status_code not in (200, 206):
                # the transport has read (a bounded part of) the error body
                raise registry_error(response, f"fetch blob {digest[:19]} from {self.name}", f"{self.name}@{digest}")
            yield response
        finally:
            response.close()

    def blob_chunks(self, response: Response) -> Generator[bytes, None, None]:
        """The raw bytes of an open_blob answer; each MiB must come within the deadline (a trickle ends)."""
        return deadline.paced(response.iter_raw(), self.transport.options.deadline)

    def blob_views(self, response: Response, buffer: memoryview) -> Generator[memoryview, None, None]:
        """`blob_chunks`, read into `buffer`: each piece is a view of it, valid until the next one."""
        return deadline.paced(response.iter_into(buffer), self.transport.options.deadline)

    def fetch_blob_bytes(self, digest: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        """A small blob (a config) in memory, verified against its digest."""
        with self.open_blob(digest) as response:
            data = read_limited(self.blob_chunks(response), limit, f"blob {digest} in {self.name}")
        if hash_as(digest, data) != digest:
            raise DigestMismatchError(f"blob {digest} from {self.name} does not match its digest")
        return data

    def delete_blob(self, digest: str) -> None:
        response = self.transport.request(
            "DELETE", self._path(f"blobs/{digest}"), scopes=(delete_scope(self.repository),)
        )
        if response.status_code not in (202, 204):
            raise registry_error(response, f"delete blob {digest} from {self.name}", f"{self.name}@{digest}")

    # --- upload sessions -----------------------------------------------------------------------------------------

    def start_upload(self, mount: str | None = None, mount_from: str | None = None) -> tuple[str | None, str | None]:
        """POST an upload. Returns (session URL, None), or (None, digest) when a cross-repo mount succeeded."""
        params = None
        scopes: tuple[str, ...] = self.push_scopes
        if mount:
            params = {"mount": mount}
            if mount_from:
                params["from"] = mount_from
                scopes = (*scopes, pull_scope(mount_from))
        response = self.transport.request(
            "POST", self._path("blobs/uploads/"), scopes=scopes, params=params, headers={"Content-Length": "0"}
        )
        if response.status_code == 201 and mount:
            return None, mount
        if response.status_code == 202 and "location" in response.headers:
            return self.absolute(response, response.headers["location"]), None
        raise registry_error(response, f"start blob upload to {self.name}", self.name)

    def absolute(self, response: Response, location: str) -> str:
        """A Location made absolute. One that names the registry with another scheme (a TLS-terminating proxy
        saying http://) keeps the registry's own, so that credentials never go over plain HTTP."""
        url = urljoin(response.url, location)
        parts, base = urlsplit(url), urlsplit(self.transport.base_url)
        if parts.netloc == base.netloc and parts.scheme != base.scheme:
            url = urlunsplit((base.scheme, *parts[1:]))
        return url

    def upload_status(self, session_url: str) -> tuple[str, int] | None:
        """(session URL, bytes the registry holds) of an open upload, or None when the session is gone."""
        response = self.transport.request("GET", session_url, scopes=self.push_scopes)
        if response.status_code in (404, 400, 410):
            return None
        if response.status_code not in (200, 204):
            raise registry_error(response, f"query upload status on {self.name}", self.name)
        url = self.absolute(response, response.headers.get("location", session_url))
        return url, _range_end(response.headers.get("range")) or 0

    def patch_chunk(self, session_url: str, start: int, length: int, body: BodyFactory) -> tuple[str, Response]:
        """Send one chunk; returns (next session URL, response). 202 is the spec's answer, ECR answers 201."""
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{start + length - 1}",
            "Content-Length": str(length),
        }
        response = self.transport.request(
            "PATCH", session_url, scopes=self.push_scopes, headers=headers, body=body, retry=False
        )
        url = session_url
        if response.status_code in (201, 202) and "location" in response.headers:
            url = self.absolute(response, response.headers["location"])
        return url, response

    def finish_upload(self, session_url: str, digest: str, body: BodyFactory | None = None, length: int = 0) -> None:
        """PUT `?digest=` to close the session, optionally with the whole blob (monolithic upload)."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        separator = "&" if "?" in session_url else "?"
        response = self.transport.request(
            "PUT",
            f"{session_url}{separator}digest={digest}",
            scopes=self.push_scopes,
            headers=headers,
            body=body or (lambda: b""),
            retry=body is None,
        )
        if response.status_code not in (201, 204):
            raise registry_error(response, f"finish upload of {digest[:19]} to {self.name}", f"{self.name}@{digest}")

    def cancel_upload(self, session_url: str) -> None:
        with contextlib.suppress(Exception):
            self.transport.request("DELETE", session_url, scopes=self.push_scopes, retry=False)

    # --- manifests -----------------------------------------------------------------------------------------------

    def manifest_digest(self, reference: str) -> tuple[str, str, int] | None:
        """(digest, media type, size) of a manifest via HEAD, or None when missing. Falls back to GET when the
        registry sends no Docker-Content-Digest."""
        response = self.transport.request(
            "HEAD",
            self._path(f"manifests/{reference}"),
            scopes=self.pull_scopes,
            headers={"Accept": mt.ACCEPT_MANIFESTS},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise registry_error(response, f"check manifest {reference} in {self.name}", self._ref(reference))
        digest = response.headers.get("docker-content-digest")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if digest and media_type in mt.MANIFESTS:
            return digest, media_type, int(response.headers.get("content-length", "0"))
        document = self.get_manifest(reference)
        return document.digest, document.media_type, len(document.raw)

    def get_manifest(self, reference: str) -> ManifestDocument:
        response = self.transport.request(
            "GET",
            self._path(f"manifests/{reference}"),
            scopes=self.pull_scopes,
            headers={"Accept": mt.ACCEPT_MANIFESTS},
            limit=MAX_MANIFEST_BYTES,
        )
        if response.status_code != 200:
            raise registry_error(response, f"get manifest {reference} from {self.name}", self._ref(reference))
        raw = response.content
        document = ManifestDocument(raw, sniff_media_type(raw, response.headers.get("content-type")))
        # ECR sends no Docker-Content-Digest on GET: the digest is always the hash of the body we received, and
        # it must match what was asked for, or what the registry announced when it did.
        announced = response.headers.get("docker-content-digest", "")
        # Each digest is checked with its own algorithm (sha256 or sha512, the two the OCI spec names).
        expected = reference if is_digest(reference) else announced if is_digest(announced) else None
        if expected and (actual := hash_as(expected, raw)) != expected:
            raise DigestMismatchError(f"manifest {reference} from {self.name} hashes to {actual}, not {expected}")
        return document

    def put_manifest(self, reference: str, document: ManifestDocument) -> str:
        response = self.transport.request(
            "PUT",
            self._path(f"manifests/{reference}"),
            scopes=self.push_scopes,
            headers={"Content-Type": document.media_type},
            body=lambda: document.raw,
        )
        if response.status_code not in (200, 201, 202):
            raise registry_error(response, f"push manifest {reference} to {self.name}", self._ref(reference))
        return document.digest

    def delete_manifest(self, digest: str) -> None:
        response = self.transport.request(
            "DELETE", self._path(f"manifests/{digest}"), scopes=(delete_scope(self.repository),)
        )
        if response.status_code not in (200, 202, 204):
            raise registry_error(response, f"delete manifest {digest} from {self.name}", self._ref(digest))

    # --- listings ------------------------------------------------------------------------------------------------

    def list_tags(self, page_size: int = 1000) -> list[str]:
        return self._paginate(
            self._path(f"tags/list?n={page_size}"), "tags", self.pull_scopes, f"list tags of {self.name}"
        )

    def list_referrers(self, digest: str, artifact_type: str | None = None) -> list[Descriptor] | None:
        """Descriptors of the manifests whose `subject` is `digest`, from the OCI 1.1 referrers API (every `Link`
        page), or None when the registry does not serve that API (404, as the spec says such a registry answers;
        405 or 501 from those that refuse unknown routes otherwise)."""
        query = f"?artifactType={quote(artifact_type, safe='')}" if artifact_type else ""
        what = f"list referrers of {digest[:19]} in {self.name}"
        try:
            path = self._path(f"referrers/{digest}{query}")
            found = self._paginate(path, "manifests", self.pull_scopes, what, item=dict)
        except NotFoundError:
            return None
        except RegistryError as exc:
            if exc.status in (405, 501):
                return None
            raise
        from ocipush.models import Descriptor
        from ocipush.records import Invalid

        try:
            return [Descriptor.model_validate(item) for item in found]
        except Invalid:
            raise RegistryError(f"{what}: the registry's answer holds a malformed descriptor") from None

    def _paginate(self, path: str, key: str, scopes: tuple[str, ...], what: str, item: type = str) -> list[Any]:
        """Every `Link` page's `key` list, each entry an `item` (names: str; descriptors: dict)."""
        items: list[Any] = []
        url: str | None = path
        seen: set[str] = set()
        while url:
            if url in seen or len(seen) >= MAX_PAGES:
                raise RegistryError(f"{what}: the registry's pages do not end (Link: rel=next loops)")
            seen.add(url)
            response = self.transport.request("GET", url, scopes=scopes)
            if url == path and "?n=" in path and _page_size_refused(response):
                url = path.split("?", 1)[0]  # a registry with a smaller page cap: let it choose the page size
                continue
            if response.status_code != 200:
                raise registry_error(response, what, self.name if self.repository else self.transport.host)
            items.extend(_listed(response, key, what, item))
            link = response.headers.get("link")
            match = _LINK_RE.search(link) if link else None
            url = self.absolute(response, match.group(1)) if match else None
        return items


def current_digest(client: RegistryClient, reference: str) -> str | None:
    """The digest a tag (or digest) names in the client's repository now (one HEAD); None when it names nothing."""
    try:
        found = client.manifest_digest(reference)
    except NotFoundError:  # the repository itself may not exist yet
        return None
    return found[0] if found else None


def list_catalog(transport: Transport, page_size: int = 1000) -> list[str]:
    client = RegistryClient(transport, "")
    return client._paginate(
        f"/v2/_catalog?n={page_size}", "repositories", (CATALOG_SCOPE,), f"list repositories of {transport.host}"
    )


def _page_size_refused(response: Response) -> bool:
    return response.status_code == 400 and any(c == "PAGINATION_NUMBER_INVALID" for c, _ in error_codes(response))


def _listed(response: Response, key: str, what: str, item: type) -> list[Any]:
    """`{key: [item, ...]}` from a listing page; a missing or null list is an empty page."""
    try:
        data = response.json()
    except ValueError:
        data = None
    value = data.get(key) if isinstance(data, dict) else 0
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(entry, item) for entry in value):
        kind = "strings" if item is str else "objects"
        raise RegistryError(f"{what}: the registry's answer is not a JSON {key} list of {kind}")
    return value


def _range_end(value: str | None) -> int | None:
    """Bytes held according to a `Range: 0-N` (or `bytes=0-N`) header: N + 1. The distribution registry answers
    `0-0` for an empty upload too; a session holding exactly one byte never happens here (parts are >= 5 MiB,
    small blobs go whole), so `0-0` reads as nothing held."""
    if not value:
        return None
    match = re.search(r"(\d+)-(\d+)", value)
    if not match:
        return None
    end = int(match.group(2))
    return 0 if end == 0 else end + 1


def range_start(response: Response) -> int | None:
    """The first byte of a 206 answer, from `Content-Range: bytes START-END/TOTAL`."""
    match = re.match(r"bytes (\d+)-", response.headers.get("content-range", ""))
    return int(match.group(1)) if match else None
