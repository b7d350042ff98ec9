"""Local image locations: an OCI image layout directory, a `docker save` archive, a tar of an OCI layout; with
`Reference`, what `parse_location` returns. Apart from `ocipush.reference` so that commands naming a registry never
build these classes."""

from __future__ import annotations

from dataclasses import dataclass

from ocipush.reference import Reference


@dataclass(frozen=True)
class LayoutLocation:
    """`oci:PATH[:tag|@digest]`: an OCI image layout directory."""

    path: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        suffix = f":{self.tag}" if self.tag else f"@{self.digest}" if self.digest else ""
        return f"oci:{self.path}{suffix}"


@dataclass(frozen=True)
class ArchiveLocation:
    """`docker-archive:FILE[:ref]`: a `docker save` / `docker load` tarball."""

    path: str
    reference: Reference | None = None

    def __str__(self) -> str:
        return f"docker-archive:{self.path}" + (f":{self.reference}" if self.reference else "")


@dataclass(frozen=True)
class OciArchiveLocation:
    """`oci-archive:FILE[:tag]`: a tar of an OCI image layout, as skopeo reads and writes it."""

    path: str
    tag: str | None = None

    def __str__(self) -> str:
        return f"oci-archive:{self.path}" + (f":{self.tag}" if self.tag else "")


Location = Reference | LayoutLocation | ArchiveLocation | OciArchiveLocation
