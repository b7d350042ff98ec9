"""Referrers: discover, attach, and carry along in copy/push/pull.

The distribution 2.8 registry has no referrers API (it answers 404), so the referrers tag schema path is tested
against it. The API path runs against `support.referrers_api.ReferrersApiRegistry`, a front that implements
`GET /v2/<name>/referrers/<digest>` by the spec over the same real registry: no registry that runs here serves it."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import imagehelpers as ih
import pytest
from support.proxy import FaultProxy, Respond
from support.referrers_api import ReferrersApiRegistry
from transferhelpers import make_image, options, run_cli

from ocipush import api, supply
from ocipush.errors import RegistryError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.referrers import Referrer, referrers_tag

SBOM_TYPE = "application/spdx+json"
NOTE_TYPE = "application/vnd.example.note"


def _files(tmp_path: Path) -> tuple[Path, Path]:
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_text(json.dumps({"spdxVersion": "SPDX-2.3", "name": "x"}))
    note = tmp_path / "note.txt"
    note.write_text("reviewed\n")
    return sbom, note


def test_attach_without_referrers_api_maintains_the_tag_index(registry: LocalRegistry, tmp_path: Path) -> None:
    source, image = make_image(tmp_path / "src")
    ref = f"{registry.host}/app:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
    sbom, note = _files(tmp_path)
    first = supply.attach(ref, SBOM_TYPE, [(str(sbom), SBOM_TYPE)], annotations={"k": "v"}, options=options(tmp_path))
    second = supply.attach(ref, NOTE_TYPE, [str(note)], options=options(tmp_path))
    again = supply.attach(ref, NOTE_TYPE, [str(note)], options=options(tmp_path))
    assert again.digest == second.digest  # same files, same manifest: nothing new

    # The registry really lacks the API: the discovery asked it and got 404.
    assert f'"GET /v2/app/referrers/{image.digest} HTTP/1.1" 404' in registry.log_path.read_text()
    index = json.loads(api.fetch_manifest(f"{registry.host}/app:{referrers_tag(image.digest)}").raw)
    assert [(m["digest"], m.get("artifactType")) for m in index["manifests"]] == [
        (first.digest, SBOM_TYPE),
        (second.digest, NOTE_TYPE),
    ]  # listed once each, in push order
    assert index["manifests"][0]["annotations"] == {"k": "v"}

    found = supply.list_referrers(ref, options=options(tmp_path))
    assert {(r.descriptor.digest, r.via) for r in found} == {
        (first.digest, "tag-schema"),
        (second.digest, "tag-schema"),
    }
    only = supply.list_referrers(ref, artifact_type=SBOM_TYPE, options=options(tmp_path))
    assert [r.descriptor.digest for r in only] == [first.digest]

    manifest = json.loads(api.fetch_manifest(f"{registry.host}/app@{first.digest}").raw)
    assert manifest["artifactType"] == SBOM_TYPE
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert manifest["subject"] == {"mediaType": image.media_type, "digest": image.digest, "size": image.size}
    assert manifest["layers"][0]["annotations"] == {"org.opencontainers.image.title": "sbom.spdx.json"}


def test_referrers_api_with_pagination_and_filter(registry: LocalRegistry, tmp_path: Path) -> None:
    source, image = make_image(tmp_path / "src")
    with ReferrersApiRegistry(registry.url, page_size=2) as front:
        ref = f"{front.host}/app:v1"
        api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
        sbom, note = _files(tmp_path)
        attached = [
            supply.attach(ref, SBOM_TYPE, [str(sbom)], options=options(tmp_path)).digest,
            supply.attach(ref, NOTE_TYPE, [str(note)], options=options(tmp_path)).digest,
            supply.attach(ref, NOTE_TYPE, [str(sbom)], options=options(tmp_path)).digest,
        ]
        found = supply.list_referrers(ref, options=options(tmp_path))
        assert sorted(r.descriptor.digest for r in found) == sorted(attached)
        assert {r.via for r in found} == {"api"}
        assert front.requests["referrers-page"] >= 1  # three referrers in pages of two: the Link was followed
        notes = supply.list_referrers(ref, artifact_type=NOTE_TYPE, options=options(tmp_path))
        assert sorted(r.descriptor.digest for r in notes) == sorted(attached[1:])
        # With the API, no referrers tag index is written.
        assert referrers_tag(image.digest) not in api.list_tags(f"{front.host}/app", options=options(tmp_path))


def test_copy_carries_referrers_recursively_between_registries(registry: LocalRegistry, tmp_path: Path) -> None:
    source, image = make_image(tmp_path / "src")
    ref = f"{registry.host}/app:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
    sbom, note = _files(tmp_path)
    sbom_digest = supply.attach(ref, SBOM_TYPE, [str(sbom)], options=options(tmp_path)).digest
    # A referrer of the SBOM (as a signature of it would be): must come along too.
    note_digest = supply.attach(f"{registry.host}/app@{sbom_digest}", NOTE_TYPE, [str(note)],
                                options=options(tmp_path)).digest  # fmt: skip
    with LocalRegistry() as other:
        copied = api.copy(ref, f"{other.host}/mirror:v1", options=options(tmp_path))
        assert copied.digest == image.digest
        assert sorted(copied.referrers) == sorted([sbom_digest, note_digest])
        tree = supply.list_referrers(f"{other.host}/mirror:v1", recursive=True, options=options(tmp_path))
        assert [(r.descriptor.digest, [c.descriptor.digest for c in r.children]) for r in tree] == [
            (sbom_digest, [note_digest])
        ]
        for digest in (sbom_digest, note_digest):  # bytes unchanged
            assert (
                api.fetch_manifest(f"{other.host}/mirror@{digest}").raw
                == api.fetch_manifest(f"{registry.host}/app@{digest}").raw
            )
        again = api.copy(ref, f"{other.host}/mirror:v1", options=options(tmp_path))
        assert set(again.blobs.values()) == {"exists"}
        bare = api.copy(ref, f"{other.host}/bare:v1", options=options(tmp_path), referrers=False)
        assert bare.referrers == []
        assert supply.list_referrers(f"{other.host}/bare:v1", options=options(tmp_path)) == []


def test_pull_keeps_referrers_in_the_layout_and_push_takes_them_on(registry: LocalRegistry, tmp_path: Path) -> None:
    source, image = make_image(tmp_path / "src")
    ref = f"{registry.host}/app:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
    sbom, _ = _files(tmp_path)
    sbom_digest = supply.attach(ref, SBOM_TYPE, [str(sbom)], options=options(tmp_path)).digest
    pulled = api.pull(ref, f"oci:{tmp_path / 'dst'}:v1", options=options(tmp_path), referrers=True)
    assert pulled.referrers == [sbom_digest]
    layout = OCILayout(str(tmp_path / "dst"))
    assert sbom_digest in {entry.digest for entry in layout.read_index().manifests}
    plain = api.pull(ref, f"oci:{tmp_path / 'plain'}:v1", options=options(tmp_path))
    assert plain.referrers == []

    with ReferrersApiRegistry(registry.url) as front:
        pushed = api.push(f"oci:{layout.path}:v1", f"{front.host}/again:v1", options=options(tmp_path),
                          referrers=True)  # fmt: skip
        assert pushed.referrers == [sbom_digest]
        found = supply.list_referrers(f"{front.host}/again:v1", options=options(tmp_path))
        assert [(r.descriptor.digest, r.via) for r in found] == [(sbom_digest, "api")]
    assert pulled.digest == image.digest


def test_ecr_refusal_of_an_index_subject_is_explained(
    registry: LocalRegistry, tmp_path: Path, fault_proxy: Callable[..., FaultProxy]
) -> None:
    layout = OCILayout(str(tmp_path / "src"), create=True)
    amd = ih.build_image(layout, [([ih.file("arch", "amd64")], "gzip")], tag=None, arch="amd64")
    ih.build_index(layout, [amd], "multi")
    proxy = fault_proxy(registry.url, ecr=True)
    ref = f"{proxy.host}/multi:1"
    api.push(f"oci:{layout.path}:multi", ref, options=options(tmp_path))
    # ECR's answer to a referrer of an index (ECR.md): 405 UNSUPPORTED. The proxy gives it; the real registry would
    # take the manifest.
    body = b'{"errors":[{"code":"UNSUPPORTED","message":"Invalid parameter at \'subject\'"}]}'
    fault = proxy.add_fault("PUT", r"/manifests/sha256:", Respond(405, body, (("Content-Type", "application/json"),)))
    sbom, _ = _files(tmp_path)
    with pytest.raises(RegistryError, match="is an image index"):
        supply.attach(ref, SBOM_TYPE, [str(sbom)], options=options(tmp_path))
    assert fault.applied == 1
    # The fault was for one PUT; one platform's manifest is accepted.
    done = supply.attach(ref, SBOM_TYPE, [str(sbom)], platform="linux/amd64", options=options(tmp_path))
    assert json.loads(api.fetch_manifest(f"{proxy.host}/multi@{done.digest}").raw)["subject"]["digest"] == amd.digest


def test_cli_attach_and_referrers(registry: LocalRegistry, tmp_path: Path) -> None:
    source, _ = make_image(tmp_path / "src")
    ref = f"{registry.host}/app:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
    sbom, _ = _files(tmp_path)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    done = run_cli("attach", ref, f"{sbom}:{SBOM_TYPE}", "--artifact-type", SBOM_TYPE, "-a", "a=b", "-q", *cache)
    assert done.returncode == 0, done.stderr
    listed = run_cli("referrers", ref, "--json", *cache)
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)["referrers"]
    assert [(e["digest"], e["artifactType"], e["via"]) for e in entries] == [
        (done.stdout.strip(), SBOM_TYPE, "tag-schema")
    ]
    bad = run_cli("attach", ref, str(sbom), "--artifact-type", SBOM_TYPE, "-a", "novalue", *cache)
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr


def test_a_concurrent_index_writer_is_merged_not_lost(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another client rewrites the referrers index between our write and our read-back (simulated by a real PUT
    to the registry right after ours): ocipush sees its entry gone and merges again; the other's entry stays."""
    from ocipush.models import Index, ManifestDocument
    from ocipush.registry.client import RegistryClient

    source, image = make_image(tmp_path / "src")
    ref = f"{registry.host}/app:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
    sbom, note = _files(tmp_path)
    first = supply.attach(ref, SBOM_TYPE, [str(sbom)], options=options(tmp_path))
    tag = referrers_tag(image.digest)
    earlier = json.loads(api.fetch_manifest(f"{registry.host}/app:{tag}").raw)["manifests"]
    original = RegistryClient.put_manifest
    raced: list[str] = []

    def racing(self: RegistryClient, reference: str, document: ManifestDocument) -> str:
        digest = original(self, reference, document)
        if reference == tag and not raced:
            # The other client read the index before our write and adds its own entry (the image itself here:
            # any manifest the repository holds) to what it read.
            other = Index.model_validate({"manifests": [*earlier, {"mediaType": image.media_type,
                                          "digest": image.digest, "size": image.size}]})  # fmt: skip
            raced.append(original(self, reference, ManifestDocument.from_model(other)))
        return digest

    monkeypatch.setattr(RegistryClient, "put_manifest", racing)
    second = supply.attach(ref, NOTE_TYPE, [str(note)], options=options(tmp_path))
    assert raced  # the competing write happened
    listed = [m["digest"] for m in json.loads(api.fetch_manifest(f"{registry.host}/app:{tag}").raw)["manifests"]]
    assert listed == [first.digest, image.digest, second.digest]


def test_referrer_cycles_through_cosign_tags_end(registry: LocalRegistry, tmp_path: Path) -> None:
    """cosign tags can name anything: a referrer whose `.sig` tag names itself and whose `.att` tag names the image
    make cycles that `copy` and `referrers --tree` must walk once, not for ever."""
    from ocipush.ops.tags import tag
    from ocipush.referrers import cosign_tag

    source, image = make_image(tmp_path / "src")
    ref = f"{registry.host}/app:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
    sbom, _ = _files(tmp_path)
    sbom_digest = supply.attach(ref, SBOM_TYPE, [str(sbom)], options=options(tmp_path)).digest
    tag(f"{registry.host}/app@{sbom_digest}", [cosign_tag(sbom_digest, ".sig")], options=options(tmp_path))
    tag(ref, [cosign_tag(sbom_digest, ".att")], options=options(tmp_path))
    tree = supply.list_referrers(ref, recursive=True, options=options(tmp_path))
    assert [(r.descriptor.digest, sorted(c.descriptor.digest for c in r.children)) for r in tree] == [
        (sbom_digest, sorted([sbom_digest, image.digest]))
    ]
    copied = api.copy(ref, f"{registry.host}/mirror:v1", options=options(tmp_path))
    assert copied.referrers == [sbom_digest]
    mirrored = supply.list_referrers(f"{registry.host}/mirror:v1", options=options(tmp_path))
    assert [r.descriptor.digest for r in mirrored] == [sbom_digest]


def test_copy_where_listing_tags_is_denied_still_finds_cosign_objects(
    registry: LocalRegistry, tmp_path: Path, fault_proxy: Callable[..., FaultProxy]
) -> None:
    """A pull-only role (ECR without ecr:ListImages) may read manifests but not list tags: `copy`, which carries
    referrers by default, must still work, and find cosign's tags by name. The proxy gives the 403 the registry would
    give such a role (distribution has no per-action policies)."""
    from ocipush.referrers import cosign_tag
    from ocipush.sign.keys import generate_key_pair

    source, image = make_image(tmp_path / "src")
    ref = f"{registry.host}/app:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
    keys = tmp_path / "keys"
    generate_key_pair(str(keys), b"pw")
    signed = supply.sign_image(ref, str(keys / "cosign.key"), password=lambda: b"pw", options=options(tmp_path))
    proxy = fault_proxy(registry.url)
    body = b'{"errors":[{"code":"DENIED","message":"not authorized to perform: ecr:ListImages"}]}'
    denied = proxy.add_fault("GET", r"/tags/list", Respond(403, body, (("Content-Type", "application/json"),)),
                             times=None)  # fmt: skip
    copied = api.copy(f"{proxy.host}/app:v1", f"{registry.host}/mirror:v1", options=options(tmp_path))
    assert denied.applied >= 1
    assert copied.digest == image.digest and copied.referrers == [signed.signature_manifest]
    listed = supply.list_referrers(f"{proxy.host}/mirror:v1", options=options(tmp_path))
    assert [(r.descriptor.digest, r.tag) for r in listed] == [(signed.signature_manifest, cosign_tag(image.digest))]


def test_referrers_beyond_the_graph_bound_stop_the_copy(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subject with more referrers than the graph bound (lowered here from 4096 to 3, so that four attached
    notes exceed it) stops `copy` with one error instead of walking a registry's endless list."""
    import ocipush.transfer

    source, image = make_image(tmp_path / "src")
    ref = f"{registry.host}/app:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
    _, note = _files(tmp_path)
    for n in range(4):
        supply.attach(ref, NOTE_TYPE, [str(note)], annotations={"n": str(n)}, options=options(tmp_path))
    monkeypatch.setattr(ocipush.transfer, "MAX_MANIFESTS", 3)
    with pytest.raises(RegistryError, match="more than 3 manifests with their referrers"):
        api.copy(ref, f"{registry.host}/mirror:v1", options=options(tmp_path))
    bare = api.copy(ref, f"{registry.host}/mirror:v1", referrers=False, options=options(tmp_path))
    assert bare.digest == image.digest


def test_referrers_tree_lists_a_shared_referrer_once(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three levels of two manifests, each level the `.sig` and `.att` of every manifest above it (cosign tags can
    name anything): `referrers --tree` asks for each manifest's referrers once (7), not once a path (15), which
    grows exponentially with the depth."""
    from ocipush.ops.tags import tag
    from ocipush.referrers import RegistryReferrers, cosign_tag

    digests = []
    for seed in range(1, 8):
        source, image = make_image(tmp_path / f"src{seed}", seed=seed)
        api.push(f"oci:{source.path}:v1", f"{registry.host}/app:m{seed}", options=options(tmp_path))
        digests.append(image.digest)
    levels = [digests[0:1], digests[1:3], digests[3:5], digests[5:7]]
    for upper, lower in itertools.pairwise(levels):
        for parent in upper:
            for suffix, child in zip((".sig", ".att"), lower, strict=True):
                tag(f"{registry.host}/app@{child}", [cosign_tag(parent, suffix)], options=options(tmp_path))
    asked: list[str] = []
    find = RegistryReferrers.find

    def counting(self: RegistryReferrers, digest: str, wanted_type: str | None = None) -> list[Referrer]:
        asked.append(digest)
        return find(self, digest, wanted_type)

    monkeypatch.setattr(RegistryReferrers, "find", counting)
    tree = supply.list_referrers(f"{registry.host}/app:m1", recursive=True, options=options(tmp_path))
    assert sorted(asked) == sorted(digests)
    first, second = tree
    assert [c.descriptor.digest for c in first.children] == [c.descriptor.digest for c in second.children] == levels[2]
    # Each manifest's referrers once: under the first path that reaches it; elsewhere it is listed without them.
    assert [[d.descriptor.digest for d in c.children] for c in first.children] == [levels[3], levels[3]]
    assert [len(d.children) for c in first.children for d in c.children] == [0, 0, 0, 0]
    assert [len(c.children) for c in second.children] == [0, 0]


def test_sbom_of_an_spdx_referrer_without_a_document_is_not_found(registry: LocalRegistry, tmp_path: Path) -> None:
    """An SPDX referrer with no file (another tool's empty artifact: its one layer is the empty descriptor) is
    reported, not returned as the SBOM `{}`."""
    from ocipush.artifact import artifact_manifest, push_artifact
    from ocipush.blobsource import BlobSource
    from ocipush.errors import NotFoundError
    from ocipush.reference import parse_reference
    from ocipush.registry.session import RegistrySession

    source, image = make_image(tmp_path / "src")
    ref = f"{registry.host}/app:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
    blobs: dict[str, BlobSource] = {}
    with RegistrySession(options(tmp_path)) as session:
        push_artifact(session, parse_reference(ref), artifact_manifest(SBOM_TYPE, [], image, blobs=blobs), blobs)
    assert [r.descriptor.artifact_type for r in supply.list_referrers(ref, options=options(tmp_path))] == [SBOM_TYPE]
    with pytest.raises(NotFoundError, match="holds no document"):
        supply.sbom(ref, options=options(tmp_path))
