"""Who signs: a key file, or an AWS KMS key (`awskms:///alias/NAME`, `awskms:///<key id or ARN>`,
`awskms://ENDPOINT/<key>`). KMS keys never leave KMS: `Sign` makes the signature, `GetPublicKey` gives the key
to verify with. boto3 is imported only when a KMS key is used."""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from ocipush.errors import UsageError
from ocipush.sign.keys import PasswordSource, env_password, load_private_key, load_public_key, sign_bytes

KMS_PREFIX = "awskms://"
# KMS takes a message of up to 4096 bytes as RAW and hashes it with SHA-256 itself, which is the same signature
# as a DIGEST call with that hash (cosign's way). RAW is used up to that size because moto's KMS, the test
# stand-in, ignores MessageType=DIGEST and would hash the digest again.
KMS_RAW_LIMIT = 4096


class Signer(Protocol):
    name: str

    def sign(self, payload: bytes) -> bytes:
        """A signature over `payload` (ECDSA: ASN.1 DER over SHA-256), as cosign stores it (before base64)."""
        ...

    def public_key(self) -> PublicKeyTypes: ...


class KeySigner:
    def __init__(self, key: PrivateKeyTypes, name: str) -> None:
        self.key, self.name = key, name

    def sign(self, payload: bytes) -> bytes:
        return sign_bytes(self.key, payload)

    def public_key(self) -> PublicKeyTypes:
        return self.key.public_key()


def parse_kms_uri(uri: str) -> tuple[str | None, str]:
    """(endpoint or None, key id) of `awskms://[ENDPOINT]/KEY`."""
    rest = uri[len(KMS_PREFIX) :]
    endpoint, sep, key_id = rest.partition("/")
    if not sep or not key_id:
        raise UsageError(f"{uri}: expected awskms:///alias/NAME, awskms:///KEY-ID or awskms:///arn:aws:kms:…")
    return endpoint or None, key_id


class KmsSigner:
    def __init__(self, uri: str, profile: str | None = None) -> None:
        self.name = uri
        endpoint, self.key_id = parse_kms_uri(uri)
        # An ARN names its Region; an alias or key id is in the configured one.
        parts = self.key_id.split(":")
        region = parts[3] if self.key_id.startswith("arn:") and len(parts) > 4 else None
        self.client = _kms(region, profile, endpoint)
        self._public: PublicKeyTypes | None = None

    def sign(self, payload: bytes) -> bytes:
        from ocipush.aws import aws_call

        if len(payload) <= KMS_RAW_LIMIT:
            message, kind = payload, "RAW"
        else:
            message, kind = hashlib.sha256(payload).digest(), "DIGEST"
        with aws_call(f"sign with KMS key {self.key_id}"):
            answer = self.client.sign(
                KeyId=self.key_id, Message=message, MessageType=kind, SigningAlgorithm="ECDSA_SHA_256"
            )
        signature: bytes = answer["Signature"]
        return signature

    def public_key(self) -> PublicKeyTypes:
        from ocipush.aws import aws_call

        if self._public is None:
            with aws_call(f"get the public key of KMS key {self.key_id}"):
                der = self.client.get_public_key(KeyId=self.key_id)["PublicKey"]
            self._public = serialization.load_der_public_key(der)
        return self._public


def _kms(region: str | None, profile: str | None, endpoint: str | None) -> Any:
    from ocipush.aws import kms_client

    if endpoint is None:
        return kms_client(region, profile)
    import boto3

    return boto3.session.Session(profile_name=profile, region_name=region).client(
        "kms", endpoint_url=f"https://{endpoint}"
    )


def open_signer(key: str, password: PasswordSource = env_password, profile: str | None = None) -> Signer:
    """The signer for `--key`: an `awskms://` URI or a private key file."""
    if key.startswith(KMS_PREFIX):
        return KmsSigner(key, profile)
    return KeySigner(load_private_key(key, password), key)


def open_public_key(key: str, password: PasswordSource = env_password, profile: str | None = None) -> PublicKeyTypes:
    """The verification key for `--key`: an `awskms://` URI, a public key file, or a private key file."""
    if key.startswith(KMS_PREFIX):
        return KmsSigner(key, profile).public_key()
    return load_public_key(key, password)
