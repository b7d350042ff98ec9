"""The fault-injecting proxy: streaming, counting and every fault, observed with plain httpx."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator

import httpx
import pytest
from support.handles import RegistryHandle
from support.proxy import ECR_MIN_PART, EXPIRED_TOKEN_BODY, FaultProxy, Reset, expired_token, status, throttled
from support.v2 import digest_of, push_blob, start_upload, with_digest

from ocipush.localregistry import LocalRegistry

MiB = 1 << 20
Factory = Callable[..., FaultProxy]


def _stream(block: bytes, count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield block


def test_streams_and_counts_a_50mb_upload(registry: LocalRegistry, fault_proxy: Factory) -> None:
    proxy = fault_proxy(registry.url)
    block, count = os.urandom(MiB), 50
    hasher = hashlib.sha256()
    for piece in _stream(block, count):
        hasher.update(piece)
    digest = f"sha256:{hasher.hexdigest()}"
    with httpx.Client(timeout=120) as client:
        location = start_upload(client, proxy.url, "big/app")
        assert location.startswith(proxy.url)
        patch = client.patch(location, content=_stream(block, count), headers={"Content-Length": str(count * MiB)})
        assert patch.status_code == 202
        assert patch.headers["Range"] == f"0-{count * MiB - 1}"
        put = client.put(with_digest(str(httpx.URL(proxy.url).join(patch.headers["Location"])), digest))
        assert put.status_code == 201
        got = hashlib.sha256()
        with client.stream("GET", f"{proxy.url}/v2/big/app/blobs/{digest}") as resp:
            assert resp.status_code == 200
            for piece in resp.iter_raw():
                got.update(piece)
    assert f"sha256:{got.hexdigest()}" == digest
    stats = proxy.stats
    assert stats.requests[("POST", "upload")] == 1
    assert stats.requests[("PATCH", "upload")] == 1
    assert stats.requests[("PUT", "upload")] == 1
    assert stats.requests[("GET", "blob")] == 1
    assert stats.body_bytes[("PATCH", "upload")] == count * MiB
    assert stats.bytes_received == count * MiB
    assert stats.bytes_sent >= count * MiB


def test_chunked_request_bodies_pass(registry: LocalRegistry, fault_proxy: Factory) -> None:
    proxy = fault_proxy(registry.url)
    data = os.urandom(3 * MiB + 17)
    digest = digest_of(data)
    with httpx.Client() as client:
        push_blob(client, proxy.url, "chunked/app", _stream(data, 1), digest)
        assert client.get(f"{registry.url}/v2/chunked/app/blobs/{digest}").content == data
    assert proxy.stats.body_bytes[("PUT", "upload")] == len(data)


def test_reset_after_n_bytes_of_the_kth_request(registry: LocalRegistry, fault_proxy: Factory) -> None:
    proxy = fault_proxy(registry.url)
    fault = proxy.add_fault("PATCH", r"/blobs/uploads/", Reset(after_bytes=1_000_000), skip=1)
    first, second = os.urandom(2 * MiB), os.urandom(3 * MiB)
    with httpx.Client() as client:
        location = start_upload(client, proxy.url, "reset/app")
        ok = client.patch(location, content=first)
        assert ok.status_code == 202
        with pytest.raises(httpx.TransportError):
            client.patch(str(httpx.URL(proxy.url).join(ok.headers["Location"])), content=second)
        after = client.patch(location, content=first)
    assert fault.applied == 1
    assert proxy.stats.body_bytes[("PATCH", "upload")] == 2 * MiB + 1_000_000 + 2 * MiB
    # The proxy keeps serving once the fault is used up; distribution itself then usually answers 404
    # BLOB_UPLOAD_INVALID, as the session state no longer matches the bytes it stored from the cut request.
    assert after.status_code in (202, 400, 404, 416)


@pytest.mark.parametrize("code", [500, 502, 503])
def test_status_then_success(registry: LocalRegistry, fault_proxy: Factory, code: int) -> None:
    proxy = fault_proxy(registry.url)
    proxy.add_fault("PUT", r"/blobs/uploads/", status(code), times=1)
    data = os.urandom(1000)
    with httpx.Client() as client:
        location = with_digest(start_upload(client, proxy.url, "flaky/app"), digest_of(data))
        assert client.put(location, content=data).status_code == code
        assert client.put(location, content=data).status_code == 201
    assert proxy.stats.statuses[("PUT", "upload", code)] == 1


def test_throttling_with_retry_after(registry: LocalRegistry, fault_proxy: Factory) -> None:
    proxy = fault_proxy(registry.url)
    fault = proxy.add_fault("GET", r"/manifests/", throttled(retry_after=1), times=2)
    with httpx.Client() as client:
        for _ in range(2):
            resp = client.get(f"{proxy.url}/v2/any/manifests/latest")
            assert resp.status_code == 429
            assert resp.headers["Retry-After"] == "1"
            assert resp.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert client.get(f"{proxy.url}/v2/any/manifests/latest").status_code == 404
    assert fault.applied == 2


def test_expired_token_403(auth_registry: RegistryHandle, fault_proxy: Factory) -> None:
    proxy = fault_proxy(auth_registry.url)
    proxy.add_fault(None, r"^/v2/", expired_token(), times=2)
    with httpx.Client(auth=auth_registry.auth) as client:
        got = client.get(f"{proxy.url}/v2/")
        assert (got.status_code, got.content) == (403, EXPIRED_TOKEN_BODY)
        head = client.head(f"{proxy.url}/v2/x/blobs/{digest_of(b'')}")
        assert (head.status_code, head.content) == (403, b"")
        assert client.get(f"{proxy.url}/v2/").status_code == 200


def test_ecr_mode(registry: LocalRegistry, fault_proxy: Factory) -> None:
    proxy = fault_proxy(registry.url, ecr=True)
    parts = [os.urandom(ECR_MIN_PART + 1), os.urandom(ECR_MIN_PART + 2), os.urandom(1000)]
    with httpx.Client() as client:
        location = start_upload(client, proxy.url, "ecr/app")
        ranges = []
        for part in parts:
            resp = client.patch(location, content=part)
            assert resp.status_code == 201
            ranges.append(resp.headers["Range"])
            location = str(httpx.URL(proxy.url).join(resp.headers["Location"]))
        # Frozen at the first PATCH's value although the registry stored more.
        assert ranges == [f"0-{ECR_MIN_PART}"] * 3
        status_now = client.get(f"{registry.url}{httpx.URL(location).raw_path.decode()}")
        assert status_now.headers["Range"] == f"0-{sum(map(len, parts)) - 1}"
        # The 1000-byte part turned out not to be the last: the next part and a PUT with a body are refused.
        too_small = client.patch(location, content=b"more")
        assert too_small.status_code == 400
        assert "LayerPartTooSmallException" in too_small.text
        digest = digest_of(b"".join(parts))
        assert client.put(with_digest(location, digest), content=b"more").status_code == 400
        assert client.put(with_digest(location, digest)).status_code == 201


def test_blob_redirect_rejects_authorization(auth_registry: RegistryHandle, fault_proxy: Factory) -> None:
    proxy = fault_proxy(auth_registry.url, redirect_blobs=True)
    store = proxy.blobstore
    assert store is not None
    data = os.urandom(200_000)
    digest = digest_of(data)
    with httpx.Client(auth=auth_registry.auth) as client:
        push_blob(client, proxy.url, "redirect/app", data, digest)
        resp = client.get(f"{proxy.url}/v2/redirect/app/blobs/{digest}")
        assert resp.status_code == 307
        target = resp.headers["Location"]
        assert target.startswith(store.url)
        refused = client.get(target)
        assert refused.status_code == 400
        assert b"Only one auth mechanism allowed" in refused.content
        # HEAD is answered by the registry itself; a missing blob is not redirected.
        assert client.head(f"{proxy.url}/v2/redirect/app/blobs/{digest}").status_code == 200
        missing = client.get(f"{proxy.url}/v2/redirect/app/blobs/{digest_of(b'none')}")
        assert missing.status_code == 404
    assert httpx.get(f"{proxy.url}/v2/redirect/app/blobs/{digest}").status_code == 401
    assert httpx.get(target).content == data
    part = httpx.get(target, headers={"Range": "bytes=10-19"})
    assert (part.status_code, part.content) == (206, data[10:20])
    followed = httpx.get(f"{proxy.url}/v2/redirect/app/blobs/{digest}", auth=auth_registry.auth, follow_redirects=True)
    assert followed.content == data
    assert store.rejected == 1
