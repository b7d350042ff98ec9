"""Key files as cosign reads and writes them.

`cosign.key` is a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign: `ENCRYPTED COSIGN PRIVATE KEY`) whose
bytes are JSON: scrypt parameters and salt, a NaCl secretbox nonce, and the secretbox of the PKCS#8 DER key under
scrypt(password). `cosign.pub` is a PEM `PUBLIC KEY`. Plain PEM private keys (`PRIVATE KEY`, `EC PRIVATE KEY`)
load too. PyNaCl is imported only here, when an encrypted key is read or written."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from ocipush.errors import UsageError
from ocipush.fsutil import atomic_write_bytes, atomic_writer

ENCRYPTED_LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
# What a key file may ask of scrypt when it is read. cosign writes N=32768 r=8 p=1 (32 MiB), older releases N=65536:
# a key file from elsewhere must not make loading it take gigabytes of memory or minutes of CPU.
SCRYPT_MAX_MEMORY = 256 << 20
SCRYPT_MAX_P = 16
_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----\s*(.*?)\s*-----END \1-----", re.S)

PasswordSource = Callable[[], bytes]


def env_password() -> bytes:
    """The key password from COSIGN_PASSWORD (empty is a valid password), as cosign takes it."""
    value = os.environ.get("COSIGN_PASSWORD")
    if value is None:
        raise UsageError("the key is encrypted: set COSIGN_PASSWORD (or run interactively to be asked)")
    return value.encode()


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=32)


def encrypt_private_key(key: ec.EllipticCurvePrivateKey, password: bytes) -> bytes:
    """`cosign.key` bytes for `key`."""
    import nacl.secret

    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    salt, nonce = secrets.token_bytes(32), secrets.token_bytes(24)
    box = nacl.secret.SecretBox(_scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))
    sealed = box.encrypt(der, nonce).ciphertext

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    document = {
        "kdf": {"name": "scrypt", "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}, "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(sealed),
    }
    return _pem(ENCRYPTED_LABELS[0], json.dumps(document).encode())


def _pem(label: str, data: bytes) -> bytes:
    body = base64.encodebytes(data).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([f"-----BEGIN {label}-----".encode(), *lines, f"-----END {label}-----".encode(), b""])


def decrypt_private_key(body: bytes, password: bytes, where: str) -> PrivateKeyTypes:
    import nacl.exceptions
    import nacl.secret

    try:
        document: dict[str, Any] = json.loads(body)
        kdf, cipher = document["kdf"], document["cipher"]
        if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
            raise UsageError(f"{where}: unsupported key encryption {kdf['name']} / {cipher['name']}")
        n, r, p = _scrypt_params(kdf["params"], where)
        key = _scrypt(password, base64.b64decode(kdf["salt"]), n, r, p)
        nonce, sealed = base64.b64decode(cipher["nonce"]), base64.b64decode(document["ciphertext"])
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{where}: not a cosign encrypted key document") from None
    try:
        der = nacl.secret.SecretBox(key).decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError:
        raise UsageError(f"{where}: wrong password for this key (COSIGN_PASSWORD)") from None
    return serialization.load_der_private_key(der, password=None)


def _scrypt_params(params: dict[str, Any], where: str) -> tuple[int, int, int]:
    """N, r and p of a key document; ValueError when they are not scrypt's, UsageError past what we accept."""
    n, r, p = (int(params[name]) for name in ("N", "r", "p"))
    if n < 2 or n & (n - 1) or r < 1 or p < 1:
        raise ValueError("not scrypt parameters")
    if 128 * n * r > SCRYPT_MAX_MEMORY or p > SCRYPT_MAX_P:
        limits = f"{SCRYPT_MAX_MEMORY >> 20} MiB or {SCRYPT_MAX_P} passes"
        raise UsageError(f"{where}: its scrypt parameters (N={n}, r={r}, p={p}) ask for more than {limits} "
                         "(cosign writes N=32768, r=8, p=1)")  # fmt: skip
    return n, r, p


def generate_key_pair(directory: str, password: bytes, prefix: str = "cosign") -> tuple[str, str]:
    """Write `<prefix>.key` (encrypted, mode 0600) and `<prefix>.pub` in `directory`; never overwrites."""
    os.makedirs(directory, exist_ok=True)
    key_path, pub_path = (os.path.join(directory, f"{prefix}.{ext}") for ext in ("key", "pub"))
    for path in (key_path, pub_path):
        if os.path.exists(path):
            raise UsageError(f"{path} exists: not overwriting a key (move it away first)")
    key = ec.generate_private_key(ec.SECP256R1())
    with atomic_writer(key_path, mode=0o600) as out:  # 0600 before it appears under its name, never after
        out.write(encrypt_private_key(key, password))
    atomic_write_bytes(pub_path, public_pem(key.public_key()))
    return key_path, pub_path


def public_pem(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _blocks(path: str) -> list[tuple[str, bytes]]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the key ({exc.strerror})") from None
    blocks = [(m.group(1).decode(), m.group(0)) for m in _PEM.finditer(data)]
    if not blocks:
        raise UsageError(f"{path}: no PEM key in this file")
    return blocks


def load_private_key(path: str, password: PasswordSource = env_password) -> PrivateKeyTypes:
    """A signing key from a cosign key file or a plain PEM private key."""
    label, block = _blocks(path)[0]
    if label in ENCRYPTED_LABELS:
        body = base64.b64decode(b"".join(block.splitlines()[1:-1]))
        return decrypt_private_key(body, password(), path)
    try:
        return serialization.load_pem_private_key(block, password=None)
    except (ValueError, TypeError):
        raise UsageError(f"{path}: a {label} block is not a usable private key") from None


def load_public_key(path: str, password: PasswordSource = env_password) -> PublicKeyTypes:
    """A verification key: a PEM public key (cosign.pub), or the public half of a private key file."""
    label, block = _blocks(path)[0]
    if label == "PUBLIC KEY":
        try:
            return serialization.load_pem_public_key(block)
        except ValueError:
            raise UsageError(f"{path}: not a usable public key") from None
    return load_private_key(path, password).public_key()


def sign_bytes(key: PrivateKeyTypes, payload: bytes) -> bytes:
    """A signature over `payload` as cosign makes it: ECDSA/SHA-256 (ASN.1 DER), RSA PKCS#1 v1.5, or Ed25519."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(payload, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(payload)
    raise UsageError(f"unsupported key type {type(key).__name__}: use ECDSA P-256, RSA or Ed25519")


def signature_valid(key: PublicKeyTypes, signature: bytes, payload: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        else:
            raise UsageError(f"unsupported public key type {type(key).__name__}")
    except InvalidSignature:
        return False
    return True
