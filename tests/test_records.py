"""ocipush.records, the typed records behind the document models and the build settings: what they accept, what
they refuse (one message naming the place), and that a document read and written again keeps what it had."""

from __future__ import annotations

import json

import pytest

from ocipush.build.spec import BuildSpec, LayerSpec, make_spec
from ocipush.errors import UsageError
from ocipush.models import Descriptor, ImageConfig, Index, Manifest
from ocipush.records import Invalid

DIGEST = "sha256:" + "a" * 64
CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 2}


def test_a_manifest_keeps_unknown_keys_and_writes_them_back() -> None:
    raw = {"schemaVersion": 2, "config": {**CONFIG, "x-vendor": {"k": [1, None]}}, "layers": [],
           "annotations": {"a": "b"}, "x-top": True}  # fmt: skip
    manifest = Manifest.model_validate_json(json.dumps(raw))
    assert manifest.config.extra == {"x-vendor": {"k": [1, None]}} and manifest.extra == {"x-top": True}
    assert json.loads(manifest.to_json_bytes()) == {**raw, "mediaType": "application/vnd.oci.image.manifest.v1+json"}


def test_fields_are_read_by_alias_or_by_name() -> None:
    by_alias = Descriptor.model_validate(CONFIG)
    by_name = Descriptor.model_validate({"media_type": CONFIG["mediaType"], "digest": DIGEST, "size": 2})
    assert by_alias == by_name == Descriptor(media_type=CONFIG["mediaType"], digest=DIGEST, size=2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"config": {**CONFIG, "size": "2"}, "layers": []}, "config.size: expected an integer, not str '2'"),
        ({"config": {**CONFIG, "size": True}, "layers": []}, "config.size: expected an integer, not bool True"),
        ({"config": {**CONFIG, "size": -1}, "layers": []}, "config.size: must be at least 0, not -1"),
        ({"config": CONFIG}, "layers: required, and missing"),
        ({"config": CONFIG, "layers": [CONFIG, 7]}, "layers.1: expected an object, not int 7"),
        ({"config": CONFIG, "layers": [], "annotations": {"a": 1}}, "annotations.a: expected a string, not int 1"),
        ([], "expected an object, not list []"),
    ],
)
def test_a_malformed_manifest_is_refused_naming_the_place(data: object, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        Manifest.model_validate(data)
    assert str(caught.value) == message


def test_model_copy_is_shallow_unless_deep() -> None:
    config = ImageConfig.model_validate({"architecture": "amd64", "os": "linux", "config": {"Env": ["A=1"]}})
    deep = config.model_copy(deep=True)
    assert deep.config is not None and config.config is not None
    deep.config.env = [*(deep.config.env or []), "B=2"]
    assert config.environment == {"A": "1"} and deep.environment == {"A": "1", "B": "2"}
    empty = Index.model_validate({"manifests": []})
    index = empty.model_copy(update={"manifests": [Descriptor.model_validate(CONFIG)]})
    assert [m.digest for m in index.manifests] == [DIGEST] and empty.manifests == []


def test_build_settings_refuse_unknown_keys_and_check_values_made_in_code_too() -> None:
    spec = make_spec({"expose": [8080, "53/udp"], "env": {"A": "1"}}, {"layers": [LayerSpec(source="/a")]})
    assert spec.expose == ["8080/tcp", "53/udp"] and spec.layers[0].dest == "/"
    for fields, message in [
        ({"workdir": "app"}, "invalid build setting workdir: workdir 'app' must be an absolute path"),
        ({"compression": "lz4"}, "invalid build setting compression: expected one of gzip, zstd, none, not str 'lz4'"),
        ({"layer": []}, "invalid build setting layer: unknown setting"),
        ({"python": {"libc": "bsd"}}, "invalid build setting python.libc: libc 'bsd': expected glibc, musl, "
         "glibc:2.34 or musl:1.2"),
    ]:  # fmt: skip
        with pytest.raises(UsageError) as caught:
            make_spec(fields, {})
        assert str(caught.value) == message
    with pytest.raises(Invalid, match="workdir 'app' must be an absolute path"):
        BuildSpec(workdir="app")
    with pytest.raises(Exception, match="cannot assign"):  # frozen, as the pydantic model was
        LayerSpec(source="/a").source = "/b"  # type: ignore[misc]
