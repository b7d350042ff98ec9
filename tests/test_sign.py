"""cosign-compatible signing and verification against the real registry, moto's KMS (through real boto3) and
openssl as the independent check of the cryptography.

moto (5.x) signs with ECC_NIST_P256 keys but ignores MessageType=DIGEST (it hashes the digest again); ocipush
sends payloads up to 4 KiB as RAW, which real KMS signs identically, so the KMS path runs against moto unchanged."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import boto3
import pytest
from support.referrers_api import ReferrersApiRegistry
from support.v2 import push_blob
from transferhelpers import make_image, options, run_cli

from ocipush import api, supply
from ocipush.errors import UsageError, VerificationError
from ocipush.localregistry import LocalRegistry
from ocipush.referrers import cosign_tag
from ocipush.sign.keys import ENCRYPTED_LABELS, load_private_key
from ocipush.sign.payload import SIGNATURE_ANNOTATION, SIMPLE_SIGNING, simple_signing_payload

PASSWORD = b"correct horse"


def _password() -> bytes:
    return PASSWORD


def _keys(tmp_path: Path, name: str = "keys") -> tuple[str, str]:
    directory = tmp_path / name
    directory.mkdir()
    return supply.generate_key_pair(str(directory), _password)


def _image(registry: LocalRegistry, tmp_path: Path, repo: str = "app", seed: int = 1) -> tuple[str, str]:
    source, image = make_image(tmp_path / f"src-{repo}", seed=seed)
    ref = f"{registry.host}/{repo}:v1"
    api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
    return ref, image.digest


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def test_key_pair_is_cosign_format_and_both_labels_load(tmp_path: Path) -> None:
    key_path, pub_path = _keys(tmp_path)
    text = Path(key_path).read_text()
    assert text.startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    body = json.loads(base64.b64decode("".join(text.splitlines()[1:-1])))
    assert body["kdf"]["name"] == "scrypt" and body["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert len(base64.b64decode(body["kdf"]["salt"])) == 32
    assert body["cipher"] == {"name": "nacl/secretbox", "nonce": body["cipher"]["nonce"]}
    assert len(base64.b64decode(body["cipher"]["nonce"])) == 24
    assert Path(key_path).stat().st_mode & 0o777 == 0o600
    # openssl reads cosign.pub: a P-256 SubjectPublicKeyInfo.
    assert "prime256v1" in _openssl("pkey", "-pubin", "-in", pub_path, "-noout", "-text").stdout
    # The older label cosign wrote loads too.
    old = tmp_path / "old.key"
    old.write_text(text.replace(ENCRYPTED_LABELS[0], ENCRYPTED_LABELS[1]))
    assert load_private_key(str(old), _password).public_key() == load_private_key(key_path, _password).public_key()
    with pytest.raises(UsageError, match="wrong password"):
        load_private_key(key_path, lambda: b"wrong")


def test_the_private_key_file_is_never_readable_by_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mode of each key file at the moment it appears under its name (os.replace), not only afterwards."""
    import os

    appeared: dict[str, int] = {}
    replace = os.replace

    def recording(src: str, dst: str) -> None:
        appeared[os.path.basename(dst)] = os.stat(src).st_mode & 0o777
        replace(src, dst)

    monkeypatch.setattr(os, "replace", recording)
    _keys(tmp_path)
    assert appeared == {"cosign.key": 0o600, "cosign.pub": 0o644}


def _cosign_key_file(path: Path, params: dict[str, int], salt: bytes, nonce: bytes, sealed: bytes) -> str:
    """An encrypted key file in the documented format, written here, not by ocipush's writer."""
    document = {
        "kdf": {"name": "scrypt", "params": params, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    pem = base64.encodebytes(json.dumps(document).encode()).decode()
    path.write_text(f"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n{pem}-----END ENCRYPTED COSIGN PRIVATE KEY-----\n")
    return str(path)


def test_key_encrypted_independently_by_the_format_loads(tmp_path: Path) -> None:
    """A key made by the documented format with other scrypt parameters (N=65536, as older cosign wrote), using
    `cryptography`'s scrypt and PyNaCl directly, not ocipush's writer."""
    import nacl.secret
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    salt, nonce = b"s" * 32, b"n" * 24
    secret = Scrypt(salt=salt, length=32, n=65536, r=8, p=1).derive(b"")
    sealed = nacl.secret.SecretBox(secret).encrypt(der, nonce).ciphertext
    path = _cosign_key_file(tmp_path / "cosign.key", {"N": 65536, "r": 8, "p": 1}, salt, nonce, sealed)
    assert load_private_key(path, lambda: b"").public_key() == key.public_key()  # empty password is valid


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"N": 1 << 30, "r": 8, "p": 1}, r"N=1073741824, r=8, p=1\) ask for more than 256 MiB or 16 passes"),
        ({"N": 32768, "r": 1 << 20, "p": 1}, r"more than 256 MiB"),
        ({"N": 32768, "r": 8, "p": 1 << 20}, r"or 16 passes"),
        ({"N": 1000, "r": 8, "p": 1}, "not a cosign encrypted key document"),  # N must be a power of two
        ({"N": 32768, "r": 0, "p": 1}, "not a cosign encrypted key document"),
    ],
)
def test_a_key_file_cannot_ask_scrypt_for_gigabytes(tmp_path: Path, params: dict[str, int], message: str) -> None:
    """Refused before scrypt runs (which would take 128 GiB for the first case): a one-line error naming the file."""
    path = _cosign_key_file(tmp_path / "hostile.key", params, b"s" * 32, b"n" * 24, b"x" * 64)
    with pytest.raises(UsageError, match=message) as caught:
        load_private_key(path, lambda: b"")
    assert "\n" not in str(caught.value) and str(caught.value).startswith(path)


def test_openssl_verifies_ocipush_signature(registry: LocalRegistry, tmp_path: Path) -> None:
    key_path, pub_path = _keys(tmp_path)
    ref, digest = _image(registry, tmp_path)
    signed = supply.sign_image(
        ref, key_path, annotations={"build": "42"}, password=_password, options=options(tmp_path)
    )
    assert signed.digest == digest and signed.tag == cosign_tag(digest)
    listed = supply.list_referrers(ref, options=options(tmp_path))
    assert [(r.descriptor.digest, r.via, r.tag) for r in listed] == [
        (signed.signature_manifest, "cosign-tag", signed.tag)
    ]
    manifest = json.loads(api.fetch_manifest(f"{registry.host}/app:{cosign_tag(digest)}").raw)
    layer = manifest["layers"][0]
    assert layer["mediaType"] == SIMPLE_SIGNING
    payload = api.fetch_blob_bytes(ref, layer["digest"], options=options(tmp_path))
    claims = json.loads(payload)
    assert claims["critical"]["image"]["docker-manifest-digest"] == digest
    assert claims["critical"]["identity"]["docker-reference"] == f"{registry.host}/app"
    assert claims["optional"] == {"build": "42"}
    (tmp_path / "payload").write_bytes(payload)
    (tmp_path / "sig.der").write_bytes(base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION]))
    checked = _openssl("dgst", "-sha256", "-verify", pub_path, "-signature", str(tmp_path / "sig.der"),
                       str(tmp_path / "payload"))  # fmt: skip
    assert checked.returncode == 0 and "Verified OK" in checked.stdout, checked.stderr
    # A claim asked for must be in the payload: one it lacks is not passed as the text "None".
    assert supply.verify_image(ref, pub_path, annotations={"build": "42"}, options=options(tmp_path)).valid
    with pytest.raises(VerificationError, match=r"annotation.*absent"):
        supply.verify_image(ref, pub_path, annotations={"absent": "None"}, options=options(tmp_path))


def _store_openssl_signature(registry: LocalRegistry, tmp_path: Path, ref: str, payload: bytes, key_pem: Path) -> None:
    """Sign `payload` with openssl and store it as cosign's tag scheme, with plain HTTP calls (not ocipush)."""
    import hashlib

    import httpx

    (tmp_path / "p.json").write_bytes(payload)
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key_pem), str(tmp_path / "p.json")],
                               capture_output=True, check=True).stdout  # fmt: skip
    digest = api.resolve_digest(ref, options=options(tmp_path))
    config = b"{}"
    blobs = {"sha256:" + hashlib.sha256(b).hexdigest(): b for b in (payload, config)}
    with httpx.Client(base_url=registry.url) as http:
        for blob_digest, data in blobs.items():
            push_blob(http, registry.url, "app", data, blob_digest)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": 2},
            "layers": [{"mediaType": SIMPLE_SIGNING, "digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
                        "size": len(payload),
                        "annotations": {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode(),
                                        "dev.sigstore.cosign/bundle": '{"SignedEntryTimestamp":"x"}'}}],
        }  # fmt: skip
        put = http.put(f"/v2/app/manifests/{cosign_tag(digest)}", content=json.dumps(manifest),
                       headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})  # fmt: skip
        assert put.status_code == 201, put.text


def test_openssl_signature_verifies_and_failures_exit_12(registry: LocalRegistry, tmp_path: Path) -> None:
    key_pem = tmp_path / "key.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(tmp_path / "ec.pem")],
                   check=True)  # fmt: skip
    subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", str(tmp_path / "ec.pem"), "-out", str(key_pem)],
                   check=True)  # fmt: skip
    pub = tmp_path / "key.pub"
    subprocess.run(["openssl", "ec", "-in", str(key_pem), "-pubout", "-out", str(pub)], check=True)
    ref, digest = _image(registry, tmp_path)
    cache = ["--cache-dir", str(tmp_path / "cache")]

    missing = run_cli("verify", ref, "--key", str(pub), *cache)
    assert missing.returncode == 11 and "no signatures found" in missing.stderr

    payload = simple_signing_payload(f"{registry.host}/app", digest, {"team": "a"})
    _store_openssl_signature(registry, tmp_path, ref, payload, key_pem)
    ok = run_cli("verify", ref, "--key", str(pub), "-a", "team=a", "--json", *cache)
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["verified"] and report["signatures"][0]["reason"] == "ok"
    wrong_claim = run_cli("verify", ref, "--key", str(pub), "-a", "team=b", *cache)
    assert wrong_claim.returncode == 11 and "team" in wrong_claim.stderr

    # A wrong key.
    other_key, other_pub = _keys(tmp_path, "other")
    wrong = run_cli("verify", ref, "--key", other_pub, *cache)
    assert wrong.returncode == 11 and "does not match" in wrong.stderr

    # ocipush appends its own signature; the openssl one and its bundle annotation stay untouched.
    supply.sign_image(ref, other_key, password=_password, options=options(tmp_path))
    layers = json.loads(api.fetch_manifest(f"{registry.host}/app:{cosign_tag(digest)}").raw)["layers"]
    assert len(layers) == 2 and layers[0]["annotations"]["dev.sigstore.cosign/bundle"] == '{"SignedEntryTimestamp":"x"}'
    assert run_cli("verify", ref, "--key", other_pub, *cache).returncode == 0


def test_tampered_payload_and_other_digest_fail(registry: LocalRegistry, tmp_path: Path) -> None:
    key_pem = tmp_path / "key.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                    str(key_pem)], check=True)  # fmt: skip
    pub = tmp_path / "key.pub"
    subprocess.run(["openssl", "pkey", "-in", str(key_pem), "-pubout", "-out", str(pub)], check=True)
    ref, digest = _image(registry, tmp_path)
    _, other_digest = _image(registry, tmp_path, "other", seed=2)
    assert other_digest != digest
    cache = ["--cache-dir", str(tmp_path / "cache")]

    # A payload for another digest, validly signed, stored under this image's tag.
    _store_openssl_signature(registry, tmp_path, ref, simple_signing_payload(f"{registry.host}/app", other_digest),
                             key_pem)  # fmt: skip
    another = run_cli("verify", ref, "--key", str(pub), *cache)
    assert another.returncode == 11 and f"signs {other_digest}" in another.stderr

    # A tampered payload: signed, then one byte changed before storing (the signature stays the original's).
    good = simple_signing_payload(f"{registry.host}/app", digest)
    (tmp_path / "good.json").write_bytes(good)
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key_pem), str(tmp_path / "good.json")],
                               capture_output=True, check=True).stdout  # fmt: skip
    tampered = good.replace(b'"type"', b'"typ\\u0065"')
    assert tampered != good and json.loads(tampered) == json.loads(good)
    from ocipush.blobsource import BlobSource
    from ocipush.reference import parse_reference
    from ocipush.registry.session import RegistrySession
    from ocipush.sign.store import signature_layer, store_in_tag

    blobs: dict[str, BlobSource] = {}
    with RegistrySession(options(tmp_path)) as session:
        store_in_tag(session, parse_reference(ref), digest, signature_layer(blobs, tampered, signature), blobs)
    result = run_cli("verify", ref, "--key", str(pub), "--json", *cache)
    assert result.returncode == 11
    reasons = sorted(s["reason"] for s in json.loads(result.stdout)["signatures"])
    assert reasons == [f"the payload signs {other_digest}, not this image",
                       "the signature does not match the payload with this key"]  # fmt: skip
    # Sanity: the untampered payload with the same signature does verify.
    blobs = {}
    with RegistrySession(options(tmp_path)) as session:
        store_in_tag(session, parse_reference(ref), digest, signature_layer(blobs, good, signature), blobs)
    assert run_cli("verify", ref, "--key", str(pub), *cache).returncode == 0


def test_kms_signature_with_moto(registry: LocalRegistry, tmp_path: Path, aws_env: dict[str, str]) -> None:
    kms = boto3.client("kms")
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    alias = f"alias/ocipush-{tmp_path.name}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    ref, digest = _image(registry, tmp_path)
    signed = supply.sign_image(ref, f"awskms:///{alias}", options=options(tmp_path))
    assert signed.digest == digest
    report = supply.verify_image(ref, f"awskms:///{alias}", options=options(tmp_path))
    assert [c.reason for c in report.checks] == ["ok"]
    # The KMS public key, written out, verifies with openssl too.
    der = kms.get_public_key(KeyId=alias)["PublicKey"]
    pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(der) + b"-----END PUBLIC KEY-----\n"
    (tmp_path / "kms.pub").write_bytes(pem)
    assert supply.verify_image(ref, str(tmp_path / "kms.pub"), options=options(tmp_path)).valid


def test_referrer_signatures_and_mirrored_repository(registry: LocalRegistry, tmp_path: Path) -> None:
    key_path, pub_path = _keys(tmp_path)
    with ReferrersApiRegistry(registry.url) as front:
        source, image = make_image(tmp_path / "src")
        ref = f"{front.host}/app:v1"
        api.push(f"oci:{source.path}:v1", ref, options=options(tmp_path))
        signed = supply.sign_image(ref, key_path, referrer=True, password=_password, options=options(tmp_path))
        assert signed.tag is None
        assert cosign_tag(image.digest) not in api.list_tags(f"{front.host}/app", options=options(tmp_path))
        report = supply.verify_image(ref, pub_path, options=options(tmp_path))
        assert [c.where for c in report.valid] == [f"referrer {signed.signature_manifest}"]
        # Copied elsewhere, the payload still names the first repository.
        api.copy(ref, f"{front.host}/mirror:v1", options=options(tmp_path))
        with pytest.raises(VerificationError, match="allow-other-repository"):
            supply.verify_image(f"{front.host}/mirror:v1", pub_path, options=options(tmp_path))
        assert supply.verify_image(f"{front.host}/mirror:v1", pub_path, allow_other_repository=True,
                             options=options(tmp_path)).valid  # fmt: skip


def test_copy_brings_signatures_sbom_and_its_signature(registry: LocalRegistry, tmp_path: Path) -> None:
    first_key, first_pub = _keys(tmp_path, "first")
    second_key, second_pub = _keys(tmp_path, "second")
    ref, digest = _image(registry, tmp_path)
    opts = options(tmp_path)
    tag_signature = supply.sign_image(ref, first_key, password=_password, options=opts)
    referrer_signature = supply.sign_image(ref, second_key, referrer=True, password=_password, options=opts)
    sbom_file = tmp_path / "sbom.json"
    sbom_file.write_text('{"spdxVersion":"SPDX-2.3"}')
    sbom = supply.attach(ref, "application/spdx+json", [str(sbom_file)], options=opts)
    sbom_ref = f"{registry.host}/app@{sbom.digest}"
    sbom_signature = supply.sign_image(sbom_ref, first_key, password=_password, options=opts)
    expected = {tag_signature.signature_manifest, referrer_signature.signature_manifest, sbom.digest,
                sbom_signature.signature_manifest}  # fmt: skip

    with LocalRegistry() as other:
        copied = api.copy(ref, f"{other.host}/app:v1", options=opts)
        assert copied.digest == digest
        assert set(copied.referrers) == expected
        for manifest_digest in expected:
            assert api.resolve_digest(f"{other.host}/app@{manifest_digest}", options=opts) == manifest_digest
        assert api.resolve_digest(f"{other.host}/app:{cosign_tag(digest)}", options=opts) == (
            tag_signature.signature_manifest
        )
        moved = f"{other.host}/app:v1"
        for pub in (first_pub, second_pub):
            assert supply.verify_image(moved, pub, allow_other_repository=True, options=opts).valid
        assert supply.verify_image(f"{other.host}/app@{sbom.digest}", first_pub, allow_other_repository=True,
                             options=opts).valid  # fmt: skip
        cli = run_cli("verify", moved, "--key", first_pub, "--allow-other-repository", "--cache-dir",
                      str(tmp_path / "cache"))  # fmt: skip
        assert cli.returncode == 0, cli.stderr


def test_push_and_copy_sign_what_they_pushed(registry: LocalRegistry, tmp_path: Path) -> None:
    key_path, pub_path = _keys(tmp_path)
    source, image = make_image(tmp_path / "src")
    env = {"COSIGN_PASSWORD": PASSWORD.decode()}
    cache = ["--cache-dir", str(tmp_path / "cache")]
    ref = f"{registry.host}/app:v1"
    pushed = run_cli("push", f"oci:{source.path}:v1", ref, "--sign-key", key_path, "-q", *cache, env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert supply.verify_image(ref, pub_path, options=options(tmp_path)).digest == image.digest
    copied = run_cli("copy", ref, f"{registry.host}/prod:v1", "--sign-key", key_path, "--sign-referrer", "--json",
                     *cache, env=env)  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    report = supply.verify_image(f"{registry.host}/prod:v1", pub_path, options=options(tmp_path))
    # The copied tag signature names app (allowed only with the flag); the new referrer one names prod.
    assert [c.where.split()[0] for c in report.valid] == ["referrer"]
    to_layout = run_cli("copy", ref, f"oci:{tmp_path / 'out'}", "--sign-key", key_path, *cache, env=env)
    assert to_layout.returncode == 2 and "registry reference" in to_layout.stderr
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_copy_merges_signatures_the_destination_already_has(registry: LocalRegistry, tmp_path: Path) -> None:
    source_key, source_pub = _keys(tmp_path, "source")
    dest_key, dest_pub = _keys(tmp_path, "dest")
    ref, digest = _image(registry, tmp_path)
    opts = options(tmp_path)
    supply.sign_image(ref, source_key, password=_password, options=opts)
    with LocalRegistry() as other:
        moved = f"{other.host}/app:v1"
        api.copy(ref, moved, options=opts, referrers=False)
        supply.sign_image(moved, dest_key, password=_password, options=opts)
        copied = api.copy(ref, moved, options=opts)
        assert len(copied.referrers) == 1
        layers = json.loads(api.fetch_manifest(f"{other.host}/app:{cosign_tag(digest)}").raw)["layers"]
        assert len(layers) == 2  # the destination's signature, then the source's: none replaced
        assert supply.verify_image(moved, dest_pub, options=opts).valid
        assert supply.verify_image(moved, source_pub, allow_other_repository=True, options=opts).valid
        again = api.copy(ref, moved, options=opts)  # merging again adds nothing
        assert json.loads(api.fetch_manifest(f"{other.host}/app:{cosign_tag(digest)}").raw)["layers"] == layers
        assert again.digest == digest


def test_kms_key_with_an_endpoint_and_no_region_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`awskms://ENDPOINT/KEY` goes through the same client set-up as the other KMS keys: without a Region that
    is the usage error (exit 2) the others give, not botocore's traceback."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    env = {"AWS_CONFIG_FILE": str(tmp_path / "none")}
    for command in ("verify", "sign"):
        done = run_cli(command, "127.0.0.1:1/app:v1", "--key", "awskms://localhost:4566/alias/x", env=env)
        assert done.returncode == 2 and "no AWS Region configured" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_kms_region_from_aws_region_alone(
    registry: LocalRegistry, tmp_path: Path, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error without a Region says "set AWS_REGION": with only that variable set (botocore itself reads
    AWS_DEFAULT_REGION), signing with a KMS key works."""
    kms = boto3.client("kms")
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", aws_env["AWS_DEFAULT_REGION"])
    ref, digest = _image(registry, tmp_path)
    assert supply.sign_image(ref, f"awskms:///{key_id}", options=options(tmp_path)).digest == digest
    assert supply.verify_image(ref, f"awskms:///{key_id}", options=options(tmp_path)).valid
