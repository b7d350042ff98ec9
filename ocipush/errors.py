"""One exception hierarchy. Every error carries a message a user can act on; the CLI maps classes to exit codes."""

from __future__ import annotations


class OcipushError(Exception):
    """Base of every error ocipush raises on purpose. The message never names command-line flags: `cli_hint`, when
    set, is what the command line adds (a flag or a command to run)."""

    exit_code = 1
    cli_hint: str | None = None

    def hinted(self, cli_hint: str) -> OcipushError:
        """This error, with the advice the CLI adds to its message."""
        self.cli_hint = cli_hint
        return self


class UsageError(OcipushError):
    """The input (a flag, a reference, a file) is not valid."""

    exit_code = 2


class InvalidReferenceError(UsageError):
    """A reference such as `host/repo:tag@digest` could not be parsed."""


class RegistryAnswerError(OcipushError):
    """An error a registry answered. `status` is the HTTP status, `code` the registry's error code (`NAME_UNKNOWN`,
    `MANIFEST_UNKNOWN`, `DENIED`, …) and `reference` what was asked for (`host/repo`, `host/repo:tag`,
    `host/repo@digest`); each is None when not known (or not from a registry)."""

    def __init__(
        self, message: str, status: int | None = None, code: str | None = None, reference: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.reference = reference


class NotFoundError(RegistryAnswerError):
    """A repository, manifest, tag or blob does not exist. From a registry, `code` tells which: `NAME_UNKNOWN` the
    repository, `MANIFEST_UNKNOWN` the tag or digest, `BLOB_UNKNOWN` a blob."""

    exit_code = 3


class AuthError(RegistryAnswerError):
    """Credentials are missing, wrong or not allowed to do this. `host` is the registry's; `missing_credentials` says
    that none were found (a login would help) rather than that they were refused."""

    exit_code = 4

    def __init__(self, message: str, *, host: str | None = None, missing_credentials: bool = False,
                 status: int | None = None, code: str | None = None, reference: str | None = None) -> None:  # fmt: skip
        super().__init__(message, status, code, reference)
        self.host = host
        self.missing_credentials = missing_credentials
        if missing_credentials and host:
            self.cli_hint = f"log in with `ocipush login {host}`, or pass --username with --password-stdin"


class RegistryError(RegistryAnswerError):
    """The registry answered with an error we cannot work around."""

    exit_code = 5


class InvalidManifestError(RegistryError):
    """A manifest or index is not valid JSON of its kind (a registry's answer or a layout's blob)."""


class TransportError(OcipushError):
    """The network failed and retries were exhausted."""

    exit_code = 6


class DigestMismatchError(OcipushError):
    """Content did not hash to the digest it was announced with."""

    exit_code = 7


class UnsafeArchiveError(OcipushError):
    """A layer tries to write outside the target directory or create something not allowed."""

    exit_code = 8


class LayoutError(OcipushError):
    """An OCI image layout or docker archive on disk is missing or malformed."""

    exit_code = 9


class BuildError(UsageError):
    """The build input (directory, tarball, build file) cannot be turned into layers."""


class AwsError(OcipushError):
    """An AWS API call failed; the message says what to do."""

    exit_code = 10


class CheckFailedError(OcipushError):
    """A check that gates a pipeline found problems (`lambda-check`, `verify`, a scan's `--fail-on`); the message
    says what. Exit code 11, the one code CI scripts test for "the gate said no"."""

    exit_code = 11


class VerificationError(CheckFailedError):
    """No signature of the image verified (none found, or none valid for the key and the claims asked for)."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report  # the Verification, for a caller that shows what was checked


class RateLimitReached(RegistryError):
    """A registry's quota fell below the floor the user set (Docker Hub's pull limit) and the sync was told to stop."""


class SyncIncomplete(OcipushError):
    """A sync finished with some images failed or not run (the report says which)."""

    exit_code = 12


class TransferStopped(OcipushError):
    """A blob transfer stopped because another one of the same operation failed (never the error reported)."""

    def __init__(self) -> None:
        super().__init__("stopped: another blob of this transfer failed")
