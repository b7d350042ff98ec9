"""The library contract against the real registry and skopeo: odd-but-valid blobs, lying descriptors, argument
checks, options from the environment, and pulls that fail without leaving a layout that looks complete."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from transferhelpers import options

from ocipush import api
from ocipush import mediatypes as mt
from ocipush.digest import sha256_of
from ocipush.errors import DigestMismatchError, RegistryError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.models import Descriptor, ImageConfig, RootFS

EMPTY = sha256_of(b"")


def _put_blob(registry: LocalRegistry, repo: str, data: bytes) -> str:
    digest = sha256_of(data)
    with httpx.Client(base_url=registry.url) as http:
        started = http.post(f"/v2/{repo}/blobs/uploads/")
        location = started.headers["location"]
        put = http.put(f"{location}{'&' if '?' in location else '?'}digest={digest}", content=data)
        assert put.status_code == 201, put.text
    return digest


def _put_manifest(registry: LocalRegistry, repo: str, tag: str, manifest: dict[str, object]) -> str:
    raw = json.dumps(manifest).encode()
    with httpx.Client(base_url=registry.url) as http:
        put = http.put(f"/v2/{repo}/manifests/{tag}", content=raw, headers={"Content-Type": mt.OCI_MANIFEST})
        assert put.status_code == 201, put.text
    return sha256_of(raw)


def _image_with_layer(registry: LocalRegistry, repo: str, layer: bytes, claimed_size: int) -> dict[str, object]:
    """An image whose one layer is `layer`, its descriptor claiming `claimed_size`."""
    config = ImageConfig(architecture="amd64", os="linux", rootfs=RootFS(diff_ids=[sha256_of(layer)])).to_json_bytes()
    config_digest = _put_blob(registry, repo, config)
    layer_digest = _put_blob(registry, repo, layer)
    return {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER, "digest": layer_digest, "size": claimed_size}],
    }


# --- item 9: zero-byte blobs, sizes that lie ------------------------------------------------------------------------


def test_zero_byte_blob_pulls_like_skopeo(registry: LocalRegistry, tmp_path: Path) -> None:
    digest = _put_manifest(registry, "zero", "v1", _image_with_layer(registry, "zero", b"", 0))
    subprocess.run(
        ["skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", f"docker://{registry.host}/zero:v1",
         f"oci:{tmp_path / 'sk'}:v1"],
        check=True, capture_output=True,
    )  # fmt: skip
    pulled = api.pull(f"{registry.host}/zero:v1", f"oci:{tmp_path / 'ours'}:v1", options=options(tmp_path))
    assert pulled.digest == digest
    layout = OCILayout(str(tmp_path / "ours"))
    assert layout.has_blob(EMPTY, 0) and Path(layout.blob_path(EMPTY)).read_bytes() == b""
    assert (tmp_path / "sk" / "blobs" / "sha256" / EMPTY.split(":")[1]).read_bytes() == b""


def test_size_zero_for_a_non_empty_blob_is_a_digest_error(registry: LocalRegistry, tmp_path: Path) -> None:
    _put_manifest(registry, "liar", "v1", _image_with_layer(registry, "liar", b"not empty", 0))
    with pytest.raises(DigestMismatchError, match="sha256:"):
        api.pull(f"{registry.host}/liar:v1", f"oci:{tmp_path / 'dst'}", options=options(tmp_path))


def test_negative_size_is_refused(registry: LocalRegistry, tmp_path: Path) -> None:
    _put_manifest(registry, "neg", "v1", _image_with_layer(registry, "neg", b"data", -4))
    with pytest.raises(RegistryError, match="size") as caught:
        api.pull(f"{registry.host}/neg:v1", f"oci:{tmp_path / 'dst'}", options=options(tmp_path))
    assert caught.value.exit_code == 5
    assert not (tmp_path / "dst" / "blobs" / "sha256" / EMPTY.split(":")[1]).exists()
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Descriptor(media_type=mt.OCI_LAYER, digest=EMPTY, size=-1)
