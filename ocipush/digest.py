"""Digest strings (`algorithm:hex`), validation, and readers/writers that hash what passes through them."""

from __future__ import annotations

from ocipush.errors import DigestMismatchError, UsageError
from ocipush.lazy import Pattern

TYPE_CHECKING = False  # as typing's, which the short commands do not import (docs/benchmarks.md, S5)
if TYPE_CHECKING:
    import hashlib
    from typing import BinaryIO

# hashlib (OpenSSL's libcrypto) is imported where a hash is first made: `ocipush tags` and a `digest` answered by
# a HEAD never hash anything, and they start faster without it.

_DIGEST_RE = Pattern(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
READ_SIZE = 1 << 20

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def validate_digest(value: str) -> str:
    """Return `value` when it is a sha256/sha512 digest in canonical form, else raise UsageError."""
    if not _DIGEST_RE.match(value):
        raise UsageError(f"invalid digest {value!r}: expected sha256:<64 hex> or sha512:<128 hex>")
    return value


def is_digest(value: str) -> bool:
    return bool(_DIGEST_RE.match(value))


def new_hasher(digest: str = "sha256:") -> hashlib._Hash:
    """A hashlib object for the digest's algorithm (sha256 when only the prefix is given)."""
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha512"):
        raise UsageError(f"unsupported digest algorithm {algorithm!r}")
    import hashlib

    return hashlib.new(algorithm)


def sha256_of(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def hash_as(digest: str, data: bytes) -> str:
    """The digest of `data` with the algorithm of `digest` (sha256 or sha512), for comparing with it."""
    hasher = new_hasher(digest)
    hasher.update(data)
    return f"{hasher.name}:{hasher.hexdigest()}"


def hex_part(digest: str) -> str:
    return digest.split(":", 1)[1]


def digest_file(path: str, algorithm: str = "sha256") -> tuple[str, int]:
    """Hash a file in streaming fashion; returns (digest, size)."""
    import hashlib

    with open(path, "rb") as f:
        h = hashlib.file_digest(f, algorithm)
        size = f.tell()
    return f"{algorithm}:{h.hexdigest()}", size


def check_digest(expected: str, actual: str, what: str) -> None:
    if expected != actual:
        raise DigestMismatchError(f"{what}: content hashes to {actual}, expected {expected}")


class _RunningDigest:
    """The hash and byte count of everything that passed."""

    def __init__(self, algorithm: str) -> None:
        import hashlib

        self._hash = hashlib.new(algorithm)
        self._algorithm = algorithm
        self.size = 0

    def _update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    @property
    def digest(self) -> str:
        return f"{self._algorithm}:{self._hash.hexdigest()}"


class HashingReader(_RunningDigest):
    """Wraps a binary stream; hashes and counts every byte read."""

    def __init__(self, raw: BinaryIO, algorithm: str = "sha256") -> None:
        super().__init__(algorithm)
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._update(data)
        return data


class HashingWriter(_RunningDigest):
    """Wraps a binary file; hashes and counts every byte written."""

    def __init__(self, raw: BinaryIO, algorithm: str = "sha256") -> None:
        super().__init__(algorithm)
        self._raw = raw

    def write(self, data: bytes) -> int:
        self._update(data)
        return self._raw.write(data)
