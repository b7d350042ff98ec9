"""The base index (directories and symlinks read from layer headers) and where a layer's DEST lands in a base.

Bases are synthetic layouts written with tests/imagehelpers.py, so each case states exactly what the base holds."""

from __future__ import annotations

import contextlib
import gzip
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from imagehelpers import build_image as make_base
from imagehelpers import build_index, dir, file, symlink, whiteout
from transferhelpers import log_between, log_mark, options

from ocipush import api
from ocipush import mediatypes as mt
from ocipush.build import BuildSpec, LayerSpec, build_image
from ocipush.build.base_index import IMPLIED_DIR, BaseIndex, LayerOpener, Node, SummaryStore
from ocipush.build.destination import place, resolve
from ocipush.build.spec import parse_platforms
from ocipush.build.tarstream import DIR, Entry
from ocipush.errors import BuildError, DigestMismatchError
from ocipush.extract import Reader
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.models import Descriptor
from ocipush.progress import ProgressEvent

# A merged-/usr base in two layers, the top one changing what the bottom one has.
BOTTOM = [
    dir("usr"), dir("usr/bin"), file("usr/bin/sh", "sh"), symlink("bin", "usr/bin"),
    dir("etc"), dir("tmp", 0o1777), dir("var"), dir("var/local", 0o2775, 0, 50), dir("run"),
    symlink("var/run", "/run"), dir("opt"), dir("opt/old"), dir("srv"), dir("srv/keep"), dir("srv/gone"),
    dir("home"), dir("home/user", 0o700, 1000, 1000), dir("data"), symlink("lib", "usr/lib"),
]  # fmt: skip
TOP = [
    dir("usr/local", 0o2775, 0, 50), dir("usr/local/bin"), whiteout("opt/.wh.old"), dir("srv", 0o750),
    file("srv/.wh..wh..opq"), dir("srv/keep", 0o711), file("data"), file("deep/inside/file"),
    symlink("etc/alt", "../usr/share/alt"), symlink("loop", "loop2"), symlink("loop2", "/loop"),
]  # fmt: skip


def base_layout(path: Path, layers: list[list[object]] | None = None) -> tuple[OCILayout, list[Descriptor]]:
    layout = OCILayout(str(path), create=True)
    make_base(layout, [(entries, "gzip") for entries in (layers or [BOTTOM, TOP])], tag="base")  # type: ignore[misc]
    manifest = layout.read_manifest(layout.resolve("base")).manifest
    return layout, list(manifest.layers)


def counting_opener(layout: OCILayout, opened: list[str]) -> LayerOpener:
    @contextlib.contextmanager
    def opener(layer: Descriptor) -> Iterator[Reader]:
        opened.append(layer.digest)
        with layout.open_blob(layer.digest) as blob:
            yield blob

    return opener


@pytest.fixture
def index(tmp_path: Path) -> BaseIndex:
    layout, layers = base_layout(tmp_path / "base")
    return BaseIndex(layers, counting_opener(layout, []), SummaryStore(str(tmp_path / "cache")))


def test_lookup_merges_layers_top_down(index: BaseIndex) -> None:
    assert index.lookup("tmp") == Node("dir", 0o1777, 0, 0)
    assert index.lookup("var/local") == Node("dir", 0o2775, 0, 50)
    assert index.lookup("home/user") == Node("dir", 0o700, 1000, 1000)
    assert index.lookup("bin") == Node("link", 0o777, link="usr/bin")
    assert index.lookup("var/run") == Node("link", 0o777, link="/run")
    assert index.lookup("usr/local") == Node("dir", 0o2775, 0, 50)  # only in the top layer
    assert index.lookup("srv") == Node("dir", 0o750, 0, 0)  # the top layer's entry wins
    assert index.lookup("nothing/here") is None


def test_whiteouts_opaque_dirs_and_replaced_paths(index: BaseIndex) -> None:
    assert index.lookup("opt") == Node("dir", 0o755, 0, 0)
    assert index.lookup("opt/old") is None  # whited out by the top layer
    assert index.lookup("srv/keep") == Node("dir", 0o711, 0, 0)  # re-made inside the opaque dir
    assert index.lookup("srv/gone") is None  # hidden by the opaque marker
    assert index.lookup("data") == Node("other", 0)  # a file in the top layer over a directory below
    assert index.lookup("deep/inside") == IMPLIED_DIR  # only implied by an entry beneath it


def test_layers_are_read_only_as_far_as_needed_then_cached(tmp_path: Path) -> None:
    layout, layers = base_layout(tmp_path / "base")
    opened: list[str] = []
    events: list[ProgressEvent] = []
    store = SummaryStore(str(tmp_path / "cache"), emit=events.append)
    first = BaseIndex(layers, counting_opener(layout, opened), store)
    assert first.lookup("usr/local/bin") == Node("dir", 0o755, 0, 0)
    assert opened == [layers[1].digest]  # settled by the top layer: the bottom one is not read
    assert first.lookup("usr/bin") == Node("dir", 0o755, 0, 0)
    assert opened == [layers[1].digest, layers[0].digest]
    assert [(e.kind, e.digest) for e in events] == [("info", d) for d in opened]  # the user is told, per layer
    # A new build with the same cache dir reads no blob at all.
    again: list[str] = []
    second = BaseIndex(layers, counting_opener(layout, again), SummaryStore(str(tmp_path / "cache")))
    assert second.lookup("tmp") == Node("dir", 0o1777, 0, 0)
    assert again == []
    # Without the disk cache (--no-cache) the headers are read again.
    third = BaseIndex(layers, counting_opener(layout, again), SummaryStore(str(tmp_path / "cache"), use_disk=False))
    assert third.lookup("tmp") == Node("dir", 0o1777, 0, 0)
    assert again == [layers[1].digest, layers[0].digest]


def test_a_layer_that_does_not_match_its_digest_is_refused_and_not_cached(tmp_path: Path) -> None:
    layout, layers = base_layout(tmp_path / "base")
    blob = Path(layout.blob_path(layers[1].digest))
    other = Path(layout.blob_path(layers[0].digest))
    blob.chmod(0o644)
    blob.write_bytes(other.read_bytes())  # a valid layer, but not the one the digest names
    index = BaseIndex(layers, counting_opener(layout, []), SummaryStore(str(tmp_path / "cache")))
    with pytest.raises(DigestMismatchError):
        index.lookup("tmp")
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_a_layer_that_is_not_a_tar_is_refused(tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "base"), create=True)
    blob = gzip.compress(b"not a tar archive, " * 100)
    layer = Descriptor(media_type=mt.OCI_LAYER_GZIP, digest=layout.write_blob(blob), size=len(blob))
    index = BaseIndex([layer], counting_opener(layout, []), SummaryStore(str(tmp_path / "cache")))
    with pytest.raises(BuildError, match=f"base layer {layer.digest} is damaged or not a tar stream"):
        index.lookup("etc")


def test_resolution_follows_relative_absolute_and_chained_links(index: BaseIndex) -> None:
    def names(dest: str) -> list[str]:
        return [name for name, _ in resolve(dest, index.lookup)]

    assert names("/bin/tools") == ["usr", "bin", "tools"]
    assert names("/var/run/app") == ["run", "app"]
    assert names("/etc/alt/x") == ["usr", "share", "alt", "x"]  # '..' in a link target
    assert names("/lib/x") == ["usr", "lib", "x"]  # a link to a directory the base lacks
    assert [node for _, node in resolve("/bin/tools", index.lookup)] == [
        Node("dir", 0o755, 0, 0), Node("dir", 0o755, 0, 0), None,
    ]  # fmt: skip
    with pytest.raises(BuildError, match="too many levels of symbolic links"):
        resolve("/loop/x", index.lookup)
    with pytest.raises(BuildError, match="/data is not a directory"):
        resolve("/data/x", index.lookup)


def test_placement_keeps_the_base_metadata_of_existing_directories(index: BaseIndex) -> None:
    placed = place("/usr/local/bin/app", index.lookup)
    assert placed.prefix == b"usr/local/bin/app/"
    assert placed.parents == (
        Entry(b"usr/", DIR, 0o755, owner=(0, 0)),
        Entry(b"usr/local/", DIR, 0o2775, owner=(0, 50)),
        Entry(b"usr/local/bin/", DIR, 0o755, owner=(0, 0)),
        Entry(b"usr/local/bin/app/", DIR, 0o755),  # made by the layer: the layer's owner
    )
    existing = place("/home/user", index.lookup)
    assert existing.parents[-1] == Entry(b"home/user/", DIR, 0o700, owner=(1000, 1000))
    assert place("/", index.lookup).parents == ()


def tar_members(layout: OCILayout, digest: str) -> dict[str, tarfile.TarInfo]:
    with layout.open_blob(digest) as blob, tarfile.open(fileobj=blob, mode="r|gz") as tar:
        return {m.name.rstrip("/"): m for m in tar}


def test_built_layers_respect_the_base(tmp_path: Path) -> None:
    base_layout(tmp_path / "base")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub/tool").write_text("x")
    src.chmod(0o700)
    spec = BuildSpec(
        base=f"oci:{tmp_path / 'base'}:base",
        layers=[LayerSpec(source=str(src), dest=d) for d in ("/bin/tools", "/etc", "/tmp/app", "/var/run/svc")],
        chown=(1000, 1000),
        cache_dir=str(tmp_path / "cache"),
    )
    store = OCILayout(str(tmp_path / "out"), create=True)
    result = build_image(spec, store, "v1")
    bin_layer, etc_layer, tmp_layer, run_layer = (tar_members(store, layer.digest) for layer in result.layers)

    def meta(m: tarfile.TarInfo) -> tuple[int, int, int]:
        return m.mode, m.uid, m.gid

    assert "bin" not in bin_layer  # the symlink is followed, never replaced
    assert meta(bin_layer["usr"]) == meta(bin_layer["usr/bin"]) == (0o755, 0, 0)
    assert meta(bin_layer["usr/bin/tools"]) == (0o755, 1000, 1000)  # made by the copy: --chown, 0755
    assert meta(bin_layer["usr/bin/tools/sub/tool"])[1:] == (1000, 1000)
    assert meta(etc_layer["etc"]) == (0o755, 0, 0)  # an existing DEST keeps its own metadata
    assert meta(etc_layer["etc/sub"]) == (0o755, 1000, 1000)
    assert meta(tmp_layer["tmp"]) == (0o1777, 0, 0)
    assert sorted(run_layer) == ["run", "run/svc", "run/svc/sub", "run/svc/sub/tool"]


def test_scratch_layers_make_every_directory_0755(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir(mode=0o700)
    (src / "f").write_text("x")
    store = OCILayout(str(tmp_path / "out"), create=True)
    spec = BuildSpec(layers=[LayerSpec(source=str(src), dest="/a/b")], cache_dir=str(tmp_path / "cache"))
    members = tar_members(store, build_image(spec, store, "v1").layers[0].digest)
    assert [(name, m.mode) for name, m in members.items()] == [("a", 0o755), ("a/b", 0o755), ("a/b/f", 0o644)]
    assert not (tmp_path / "cache" / "base-index").exists()  # scratch needs no index


def test_platforms_whose_bases_differ_get_their_own_layer(tmp_path: Path) -> None:
    layout = OCILayout(str(tmp_path / "base"), create=True)
    merged = make_base(layout, [([dir("usr"), dir("usr/bin"), symlink("bin", "usr/bin")], "gzip")], None, "amd64")
    split = make_base(layout, [([dir("bin", 0o751)], "gzip")], None, "arm64")
    build_index(layout, [merged, split], "base")
    src = tmp_path / "src"
    src.mkdir()
    (src / "tool").write_text("x")
    spec = BuildSpec(
        base=f"oci:{tmp_path / 'base'}:base",
        layers=[LayerSpec(source=str(src), dest="/bin/x"), LayerSpec(source=str(src), dest="/app")],
        platforms=parse_platforms(["linux/amd64,linux/arm64"]),
        cache_dir=str(tmp_path / "cache"),
    )
    store = OCILayout(str(tmp_path / "out"), create=True)
    result = build_image(spec, store, "v1")
    amd64, arm64 = (store.read_manifest(m).manifest.layers for m in result.manifests)
    assert amd64[-1] == arm64[-1]  # /app: the same on both bases, built once
    assert amd64[-2] != arm64[-2]
    assert sorted(tar_members(store, amd64[-2].digest)) == ["usr", "usr/bin", "usr/bin/x", "usr/bin/x/tool"]
    assert tar_members(store, arm64[-2].digest)["bin"].mode == 0o751
    assert len(result.layers) == 3
    assert os.path.isdir(tmp_path / "cache" / "base-index")


def test_a_registry_base_is_read_through_one_session(registry: LocalRegistry, tmp_path: Path) -> None:
    base_layout(tmp_path / "base", [[dir("usr"), file("usr/a")], [dir("etc")], [dir("var")]])
    opts = options(tmp_path)
    api.push(f"oci:{tmp_path / 'base'}:base", f"{registry.host}/base:1", options=opts)
    layers = api.fetch_manifest(f"{registry.host}/base:1", options=opts).manifest.layers
    start = log_mark(registry)
    src = tmp_path / "src"
    src.mkdir()
    spec = BuildSpec(
        base=f"{registry.host}/base:1", layers=[LayerSpec(source=str(src), dest="/opt/x")], cache_dir=opts.cache_dir
    )
    build_image(spec, OCILayout(str(tmp_path / "out"), create=True), "v1", fetch_options=opts)
    lines = log_between(registry, start, log_mark(registry))
    requests = [line.split('"')[1] for line in lines if '"GET ' in line and "log-mark-" not in line]
    first_layer = next(i for i, r in enumerate(requests) if layers[-1].digest in r)
    # /opt is in no layer: all three are read, top down, with no new session (a session starts with GET /v2/).
    assert [r.split()[1].rsplit("/", 1)[-1] for r in requests[first_layer:]] == [d.digest for d in reversed(layers)]
