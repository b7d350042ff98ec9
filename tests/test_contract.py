"""The library contract against the real registry and skopeo: odd-but-valid blobs, lying descriptors, argument
checks, options from the environment, and pulls that fail without leaving a layout that looks complete."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from transferhelpers import make_image, options

import ocipush
from ocipush import api
from ocipush import mediatypes as mt
from ocipush.build import BuildSpec
from ocipush.digest import sha256_of
from ocipush.errors import DigestMismatchError, RegistryError, UsageError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.models import Descriptor, ImageConfig, RootFS
from ocipush.registry.options import RegistryOptions

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
    with pytest.raises(ValueError, match="size: must be at least 0"):
        Descriptor(media_type=mt.OCI_LAYER, digest=EMPTY, size=-1)


# --- item 10: arguments -------------------------------------------------------------------------------------------


def test_a_string_of_tags_is_refused_not_split(registry: LocalRegistry, tmp_path: Path) -> None:
    layout, _ = make_image(tmp_path / "src")
    target = f"{registry.host}/app:v1"
    with pytest.raises(UsageError, match=r"tags=\['prod'\]"):
        api.push(f"oci:{layout.path}:v1", target, tags="prod", options=options(tmp_path))  # type: ignore[arg-type]
    api.push(f"oci:{layout.path}:v1", target, tags=("prod",), options=options(tmp_path))
    assert sorted(api.list_tags(f"{registry.host}/app", options=options(tmp_path))) == ["prod", "v1"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda o: api.push(None, "localhost:5000/x:v1", options=o), "source: expected a location string"),
        (lambda o: api.push("oci:x", 42, options=o), "target: expected a location string"),
        (lambda o: api.pull("localhost:5000/x:v1", "oci:x", platform=123, options=o), "platform: expected"),
        (lambda o: api.pull("localhost:5000/x:v1", "oci:x", all_platforms="yes", options=o), "all_platforms"),
        (lambda o: api.copy("oci:x", "localhost:5000/x", tags=[1], options=o), "tags: expected strings, got int"),
        (lambda o: api.copy("oci:x", "localhost:5000/x", progress=3, options=o), "progress: expected a function"),
        (lambda o: api.copy("oci:x", "localhost:5000/x", conversion="gzip", options=o), "conversion: expected"),
        (lambda o: api.pull_rootfs("localhost:5000/x:v1", None, options=o), "directory: expected"),
        (lambda o: api.pull_rootfs("localhost:5000/x:v1", "d", allow_devices="no", options=o), "allow_devices"),
        (lambda o: api.list_tags(["a"], options=o), "repository: expected a location string"),
        (lambda o: api.catalog(5000, options=o), "registry: expected a non-empty string"),
        (lambda o: api.fetch_blob_bytes("localhost:5000/x", "md5:1", options=o), "digest: invalid digest"),
        (lambda o: api.inspect("localhost:5000/x", options="fast"), "options: expected RegistryOptions"),
        (lambda o: api.delete("oci:x", options=o), "location: oci:x is not a registry reference"),
        (lambda o: api.build_push({"context": "."}, "localhost:5000/x", options=o), "spec: expected BuildSpec"),
        (lambda o: RegistryOptions(jobs=0), "jobs must be a number of at least 1"),
        (lambda o: RegistryOptions(chunk_size=1024), "chunk_size must be a number of at least"),
        (lambda o: RegistryOptions(endpoints={"h": "http://[bad"}), r"endpoint h=http://\[bad"),
        (lambda o: RegistryOptions(endpoints={"h": "http://127.0.0.1:99999"}), "endpoint h="),
        (lambda o: RegistryOptions(ca_file="/nope.pem"), "CA file /nope.pem: no such file"),
    ],
)
def test_bad_arguments_are_usage_errors(
    call: Callable[[RegistryOptions], object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match=message):
        call(options(tmp_path))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ocipush.tag("localhost:5000/x:v1", "prod"), "tags: expected a list of tags"),
        (lambda: ocipush.untag(None), "reference: expected a non-empty string"),
        (lambda: ocipush.create_index("localhost:5000/x:v1", "localhost:5000/x:a"), "manifests: expected a list"),
        (lambda: ocipush.filter_index("localhost:5000/x:v1", [42]), "platform: expected"),
        (lambda: ocipush.remove_from_index("localhost:5000/x:v1", digests=[""]), "digests: expected a non-empty"),
        (lambda: ocipush.append_index("localhost:5000/x:v1", [], annotations={"a": 1}), "annotations: expected"),
        (lambda: ocipush.mutate("localhost:5000/x:v1", "localhost:5000/x:v2", {}), "spec: expected BuildSpec"),
        (lambda: ocipush.rebase("localhost:5000/x:v1", 3, "localhost:5000/x:v2"), "new_base: expected"),
        (lambda: ocipush.flatten("localhost:5000/x:v1", "localhost:5000/x:v2", compression="lz4"), "compression"),
        (lambda: ocipush.export("localhost:5000/x:v1", "out.tar"), "out: expected a binary file"),
        (lambda: ocipush.get_blob("localhost:5000/x", "sha256:abc", io.BytesIO()), "digest: invalid digest"),
        (lambda: ocipush.cat("localhost:5000/x:v1", "/etc/os-release", io.BytesIO(), options={}), "options:"),
        (lambda: ocipush.tag("localhost:5000/x:v1", ["a"], colour="red"), "unexpected keyword argument"),
    ],
)
def test_image_operations_check_their_arguments(call: Callable[[], object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        call()


def test_jobs_zero_in_build_push_is_a_usage_error(tmp_path: Path) -> None:
    opts = options(tmp_path)
    opts.jobs = 0  # set after creation: the call checks again
    spec = BuildSpec()
    with pytest.raises(UsageError, match="jobs"):
        api.build_push(spec, "localhost:5000/x:v1", options=opts)


# --- item 11: RegistryOptions and the environment -----------------------------------------------------------------


def test_options_fill_unset_fields_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OCIPUSH_ENDPOINTS", "mirror.example=http://127.0.0.1:1,given.example=http://127.0.0.1:2")
    monkeypatch.setenv("OCIPUSH_INSECURE", "insecure.example")
    monkeypatch.setenv("OCIPUSH_USERNAME", "env-user")
    monkeypatch.setenv("OCIPUSH_PASSWORD", "env-password")
    made = RegistryOptions(endpoints={"given.example": "http://127.0.0.1:3"}, jobs=2)
    assert made.endpoints == {"mirror.example": "http://127.0.0.1:1", "given.example": "http://127.0.0.1:3"}
    assert made.insecure == {"insecure.example"} and made.username == "env-user"
    assert RegistryOptions(username="me", password="pw").username == "me"
    assert RegistryOptions.from_env(jobs=2) == RegistryOptions(jobs=2)
    bare = RegistryOptions(environment=False)
    assert bare.endpoints == {} and bare.username is None


def test_docs_library_example_follows_an_endpoint_in_the_environment(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The docs example, run as written, with the registry host named only through OCIPUSH_ENDPOINTS."""
    docs = (Path(__file__).resolve().parent.parent / "docs" / "push-pull.md").read_text()
    example = docs.split("## Library", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    layout, descriptor = make_image(tmp_path / "build")
    ecr_host = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    monkeypatch.setenv("OCIPUSH_ENDPOINTS", f"{ecr_host}={registry.url}")
    monkeypatch.setenv("OCIPUSH_CACHE_DIR", str(tmp_path / "cache"))
    example = example.replace("/tmp/build", layout.path).replace("/tmp/ocipush", str(tmp_path / "cache"))
    offline = "\n".join(line for line in example.splitlines() if "public.ecr.aws" not in line)
    assert "ocipush.push(" in offline
    namespace: dict[str, object] = {}
    exec(offline, namespace)  # the pulls of a public image need the internet: left out
    with httpx.Client(base_url=registry.url) as http:
        served = http.head("/v2/app/manifests/v1", headers={"Accept": mt.OCI_MANIFEST})
    assert served.headers["docker-content-digest"] == descriptor.digest
