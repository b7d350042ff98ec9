"""The push with nothing to do (ocipush/unchanged.py): a layout image its target tags already name is settled from
the layout's raw JSON with one HEAD per tag, without pydantic's models, and reports what the regular path
reports. Anything else (a changed tag, a referrer, an index.json it cannot read on its own) goes the regular way."""

from __future__ import annotations

import re
from pathlib import Path

import imagehelpers as ih
from transferhelpers import log_between, log_mark, make_image, modules_after_pushes, options

from ocipush import api
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.transfer import TransferResult


def _fields(result: TransferResult) -> tuple[object, ...]:
    return (result.digest, result.media_type, result.size, result.tags, result.blobs, result.counts, result.referrers)


def _requests(lines: list[str]) -> list[str]:
    return [m.group(1) for line in lines if (m := re.search(r'"((?:GET|HEAD|POST|PUT|PATCH) /v2/[^ ]*)', line))]


def test_an_unchanged_push_reports_what_the_regular_path_reports(registry: LocalRegistry, tmp_path: Path) -> None:
    make_image(tmp_path / "img")
    layout = OCILayout(str(tmp_path / "multi"), create=True)
    amd = ih.build_image(layout, [([ih.file("a", "amd")], "gzip")], tag=None, arch="amd64")
    arm = ih.build_image(layout, [([ih.file("a", "arm")], "gzip")], tag=None, arch="arm64")
    ih.build_index(layout, [amd, arm], "multi")
    for source, repo in ((f"oci:{tmp_path / 'img'}:v1", "single"), (f"oci:{layout.path}:multi", "index")):
        target = f"{registry.host}/{repo}:v1"
        first = api.push(source, target, tags=["also"], options=options(tmp_path))
        assert first.uploaded > 0
        start = log_mark(registry)
        fast = api.push(source, target, tags=["also"], options=options(tmp_path))
        end = log_mark(registry)
        # the regular path: carrying referrers makes it look for them, so the shortcut stands aside
        regular = api.push(source, target, tags=["also"], options=options(tmp_path), referrers=True)
        assert _fields(fast) == _fields(regular)
        assert fast.counts == {"uploaded": 0, "exists": len(first.blobs), "mounted": 0}
        sent = [r for r in _requests(log_between(registry, start, end)) if not r.startswith("GET /v2/log-mark")]
        # the loopback scheme probe, then one HEAD per tag, as the regular no-op push sends
        assert sent == ["GET /v2/", f"HEAD /v2/{repo}/manifests/v1", f"HEAD /v2/{repo}/manifests/also"], sent


def test_a_changed_tag_goes_the_regular_way(registry: LocalRegistry, tmp_path: Path) -> None:
    make_image(tmp_path / "one", seed=1)
    make_image(tmp_path / "two", seed=2)
    target = f"{registry.host}/moved:v1"
    api.push(f"oci:{tmp_path / 'one'}:v1", target, options=options(tmp_path))
    start = log_mark(registry)
    moved = api.push(f"oci:{tmp_path / 'two'}:v1", target, options=options(tmp_path))
    sent = _requests(log_between(registry, start, log_mark(registry)))
    assert moved.uploaded > 0 and api.resolve_digest(target, options=options(tmp_path)) == moved.digest
    # the shortcut's HEAD of the tag is the regular path's too: asked once, not once by each
    assert sent.count("HEAD /v2/moved/manifests/v1") == 1, sent


def test_an_unchanged_push_loads_no_models(registry: LocalRegistry, tmp_path: Path) -> None:
    make_image(tmp_path / "img")
    source, target, watch = f"oci:{tmp_path / 'img'}:v1", f"{registry.host}/light:v1", ("pydantic", "ocipush.models")
    loaded = [modules_after_pushes(source, [(target, None)], tmp_path / "cache", watch)[0] for _ in range(2)]
    assert loaded == [["ocipush.models"], []]  # the first push (the control) does load them
