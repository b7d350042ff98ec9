"""A location opened as an `ImageSource`: a registry reference as it is, an OCI layout in place, an archive
unpacked into a scratch layout for as long as the source is open.

Apart from `ocipush.api` so that the short queries (`ocipush.query`) can open a local location without importing
the transfer engine on the path they take for a registry reference."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ocipush.locations import LayoutLocation, Location, OciArchiveLocation
from ocipush.reference import Reference

if TYPE_CHECKING:
    from ocipush.registry.session import RegistrySession
    from ocipush.transfer import ImageSource


@contextlib.contextmanager
def open_source(session: RegistrySession, location: Location) -> Iterator[ImageSource]:
    from ocipush.cachedir import scratch_dir
    from ocipush.layout import OCILayout
    from ocipush.transfer import LayoutSource, RegistrySource

    if isinstance(location, Reference):
        yield RegistrySource(session, location)
    elif isinstance(location, LayoutLocation):
        yield LayoutSource(session, OCILayout(location.path), location.tag, location.digest)
    elif isinstance(location, OciArchiveLocation):
        from ocipush.ociarchive import read_oci_archive

        with scratch_dir(session.options.cache_dir) as scratch:
            layout = OCILayout(scratch, create=True, durable=False)
            read_oci_archive(location.path, layout)
            yield LayoutSource(session, layout, location.tag, None)
    else:
        from ocipush.archive import read_docker_archive

        with scratch_dir(session.options.cache_dir) as scratch:
            layout = OCILayout(scratch, create=True, durable=False)
            reference = str(location.reference) if location.reference else None
            descriptor = read_docker_archive(location.path, reference, layout, None)
            yield LayoutSource(session, layout, None, descriptor.digest)
