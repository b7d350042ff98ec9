"""Push, pull, copy, delete, tags and catalog against the real distribution registry."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from support.handles import RegistryHandle
from support.proxy import FaultProxy
from transferhelpers import layout_blobs, make_image, options

from ocipush import api
from ocipush.errors import NotFoundError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.progress import ProgressEvent


def test_push_then_pull_is_byte_identical(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src", big=12 << 20)
    events: list[ProgressEvent] = []
    opts = options(tmp_path, chunk_size=5 << 20)  # forces the chunked path for the 12 MiB layer
    pushed = api.push(f"oci:{source.path}:v1", f"{registry.host}/team/app:v1", options=opts, progress=events.append)
    assert pushed.digest == descriptor.digest
    assert sorted(pushed.blobs.values()) == ["uploaded"] * 3
    assert {e.kind for e in events} >= {"start", "progress", "done"}

    pulled = api.pull(f"{registry.host}/team/app:v1", f"oci:{tmp_path / 'dst'}:copy", options=opts)
    assert pulled.digest == descriptor.digest
    assert layout_blobs(OCILayout(str(tmp_path / "dst"))) == layout_blobs(source)
    assert OCILayout(str(tmp_path / "dst")).resolve("copy").digest == descriptor.digest


def test_repush_skips_existing_blobs_and_adds_tags(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src")
    target = f"{registry.host}/app:v1"
    api.push(f"oci:{source.path}:v1", target, options=options(tmp_path))
    again = api.push(f"oci:{source.path}:v1", target, tags=["v2", "latest"], options=options(tmp_path))
    assert set(again.blobs.values()) == {"exists"}
    assert sorted(api.list_tags(f"{registry.host}/app", options=options(tmp_path))) == ["latest", "v1", "v2"]
    assert api.resolve_digest(f"{registry.host}/app:v2", options=options(tmp_path)) == descriptor.digest


def test_copy_within_registry_mounts(registry: LocalRegistry, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{registry.host}/a/app:v1", options=options(tmp_path))
    copied = api.copy(f"{registry.host}/a/app:v1", f"{registry.host}/b/app:v1", options=options(tmp_path))
    assert set(copied.blobs.values()) == {"mounted"}
    assert sorted(api.catalog(registry.host, options=options(tmp_path))) == ["a/app", "b/app"]


def test_copy_across_registries_streams(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src", big=8 << 20)
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    with LocalRegistry() as other:
        copied = api.copy(f"{registry.host}/app:v1", f"{other.host}/mirror/app:v9", options=options(tmp_path))
        assert copied.digest == descriptor.digest
        assert set(copied.blobs.values()) == {"uploaded"}
        api.pull(f"{other.host}/mirror/app:v9", f"oci:{tmp_path / 'back'}", options=options(tmp_path))
    assert layout_blobs(OCILayout(str(tmp_path / "back"))) == layout_blobs(source)
    # nothing was stored on the way: the cache holds no blob copies
    assert not list((tmp_path / "cache").rglob("blobs/sha256/*"))


def test_multi_platform_index_push_and_platform_pull(registry: LocalRegistry, tmp_path: Path) -> None:
    import imagehelpers as ih

    layout = OCILayout(str(tmp_path / "src"), create=True)
    amd = ih.build_image(layout, [([ih.file("arch", "amd64")], "gzip")], tag=None, arch="amd64")
    arm = ih.build_image(layout, [([ih.file("arch", "arm64")], "gzip")], tag=None, arch="arm64")
    index = ih.build_index(layout, [amd, arm], "multi")
    pushed = api.push(f"oci:{layout.path}:multi", f"{registry.host}/multi:1", options=options(tmp_path))
    assert pushed.digest == index.digest
    arm_pull = api.pull(
        f"{registry.host}/multi:1", f"oci:{tmp_path / 'arm'}", platform="linux/arm64", options=options(tmp_path)
    )
    assert arm_pull.digest == arm.digest
    whole = api.pull(
        f"{registry.host}/multi:1", f"oci:{tmp_path / 'all'}:1", all_platforms=True, options=options(tmp_path)
    )
    assert whole.digest == index.digest
    with pytest.raises(NotFoundError, match="linux/s390x"):
        api.pull(
            f"{registry.host}/multi:1", f"oci:{tmp_path / 'none'}", platform="linux/s390x", options=options(tmp_path)
        )


def test_delete_by_tag_and_digest(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    assert api.delete(f"{registry.host}/app:v1", options=options(tmp_path)) == descriptor.digest
    with pytest.raises(NotFoundError):
        api.resolve_digest(f"{registry.host}/app:v1", options=options(tmp_path))
    with pytest.raises(NotFoundError):
        api.delete(f"{registry.host}/app@{descriptor.digest}", options=options(tmp_path))


def test_inspect_reports_manifest_and_config(registry: LocalRegistry, tmp_path: Path) -> None:
    source, descriptor = make_image(tmp_path / "src", seed=7)
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    found = api.inspect(f"{registry.host}/app:v1", options=options(tmp_path))
    assert found.digest == descriptor.digest
    assert found.config is not None and found.config["config"]["Env"] == ["SEED=7"]
    assert json.loads(source.read_blob(descriptor.digest)) == found.manifest


@pytest.mark.parametrize("kind", ["auth", "token", "tls", "s3"])
def test_push_pull_through_each_registry_kind(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle: RegistryHandle = request.getfixturevalue(f"{kind}_registry")
    extra: dict[str, object] = {}
    if handle.username:
        extra.update(username=handle.username, password=handle.password)
    if handle.ca_path:
        extra.update(ca_file=str(handle.ca_path))
    opts = options(tmp_path, **extra)
    source, descriptor = make_image(tmp_path / "src", big=6 << 20)
    api.push(f"oci:{source.path}:v1", f"{handle.host}/team/app:v1", options=opts)
    pulled = api.pull(f"{handle.host}/team/app:v1", f"oci:{tmp_path / 'dst'}", options=opts)
    assert pulled.digest == descriptor.digest
    assert layout_blobs(OCILayout(str(tmp_path / "dst"))) == layout_blobs(source)
    if kind == "s3":
        log = handle.log_path.read_text()
        assert '"GET /v2/team/app/blobs/sha256:' in log and " 307 " in log


def test_tags_and_catalog_follow_pagination(registry: LocalRegistry, tmp_path: Path) -> None:
    from ocipush.registry.client import RegistryClient, list_catalog
    from ocipush.registry.session import RegistrySession

    source, _ = make_image(tmp_path / "src")
    tags = [f"t{i}" for i in range(7)]
    api.push(f"oci:{source.path}:v1", f"{registry.host}/paged/app:v1", tags=tags, options=options(tmp_path))
    for name in ("a", "b", "c"):
        api.copy(f"{registry.host}/paged/app:v1", f"{registry.host}/{name}/x:1", options=options(tmp_path))
    with RegistrySession(options(tmp_path)) as session:
        client = RegistryClient(session.transport(registry.host), "paged/app")
        assert sorted(client.list_tags(page_size=2)) == sorted(["v1", *tags])
        assert sorted(list_catalog(session.transport(registry.host), page_size=2)) == ["a/x", "b/x", "c/x", "paged/app"]


def test_unchanged_repush_is_one_manifest_head(
    registry: LocalRegistry, fault_proxy: Callable[..., FaultProxy], tmp_path: Path
) -> None:
    proxy = fault_proxy(registry.url)
    source, _ = make_image(tmp_path / "src", big=1 << 20)
    api.push(f"oci:{source.path}:v1", f"{proxy.host}/app:v1", options=options(tmp_path))
    proxy.reset_stats()
    again = api.push(f"oci:{source.path}:v1", f"{proxy.host}/app:v1", options=options(tmp_path))
    assert set(again.blobs.values()) == {"exists"}
    requests = {key: n for key, n in proxy.stats.requests.items() if n}
    assert requests == {("GET", "base"): 1, ("HEAD", "manifest"): 1}


def test_copy_to_a_digest_must_be_that_digest(registry: LocalRegistry, tmp_path: Path) -> None:
    from ocipush.errors import UsageError

    source, descriptor = make_image(tmp_path / "src")
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    other = "sha256:" + "0" * 64
    with pytest.raises(UsageError, match="names digest"):
        api.copy(f"{registry.host}/app:v1", f"{registry.host}/copy@{other}", options=options(tmp_path))
    done = api.copy(f"{registry.host}/app:v1", f"{registry.host}/copy@{descriptor.digest}", options=options(tmp_path))
    assert done.digest == descriptor.digest
    with pytest.raises(UsageError, match="one platform"):
        api.pull(f"{registry.host}/app:v1", f"docker-archive:{tmp_path / 'a.tar'}", all_platforms=True,
                 options=options(tmp_path))  # fmt: skip


def test_two_pulls_into_one_layout_at_once(registry: LocalRegistry, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    source, descriptor = make_image(tmp_path / "src", big=16 << 20)
    api.push(f"oci:{source.path}:v1", f"{registry.host}/app:v1", options=options(tmp_path))
    target = f"oci:{tmp_path / 'shared'}:v1"
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda i: api.pull(f"{registry.host}/app:v1", target, options=options(tmp_path)),
                                range(2)))  # fmt: skip
    assert {r.digest for r in results} == {descriptor.digest}
    assert layout_blobs(OCILayout(str(tmp_path / "shared"))) == layout_blobs(source)
    assert not list((tmp_path / "shared" / ".ingest").iterdir())


def test_insecure_means_tls_without_verification(tls_registry: RegistryHandle, tmp_path: Path) -> None:
    from ocipush.errors import TransportError

    source, descriptor = make_image(tmp_path / "src")
    target = f"{tls_registry.host}/app:v1"
    with pytest.raises(TransportError, match="not trusted"):  # an unknown CA is refused...
        api.push(f"oci:{source.path}:v1", target, options=options(tmp_path, max_attempts=1))
    # ...unless the user marks the host insecure, as with docker and skopeo
    pushed = api.push(f"oci:{source.path}:v1", target, options=options(tmp_path, insecure={tls_registry.host}))
    assert pushed.digest == descriptor.digest


def test_catalog_on_a_registry_whose_page_cap_is_below_1000(tmp_path: Path) -> None:
    """distribution refuses `n` above its `catalog.maxentries` (PAGINATION_NUMBER_INVALID): its own page size is
    used instead, and its Link pages are followed."""
    source, _ = make_image(tmp_path / "src")
    with LocalRegistry(catalog_max_entries=2, log_path=tmp_path / "registry.log") as capped:
        names = ["a/app", "b/app", "c/app", "d/app", "e/app"]
        for name in names:
            api.push(f"oci:{source.path}:v1", f"{capped.host}/{name}:v1", options=options(tmp_path))
        assert sorted(api.catalog(capped.host, options=options(tmp_path))) == names
        log = (tmp_path / "registry.log").read_text()
        assert "PAGINATION_NUMBER_INVALID" in log or '"GET /v2/_catalog?n=1000 HTTP/1.1" 400' in log
