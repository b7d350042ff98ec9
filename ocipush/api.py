"""The library API: synchronous, typed calls over the transfer engine. Locations are strings as on the command
line (`REF`, `docker://REF`, `oci:PATH[:tag]`, `docker-archive:FILE[:ref]`) or parsed `Location` values."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ocipush import arguments as check
from ocipush import mediatypes as mt
from ocipush.document import ManifestDocument
from ocipush.errors import LayoutError, NotFoundError, RegistryError, UsageError
from ocipush.layout import OCILayout
from ocipush.locations import ArchiveLocation, LayoutLocation, Location, OciArchiveLocation
from ocipush.log import get_logger
from ocipush.progress import ProgressCallback, ignore_progress

# The queries live in ocipush.query (light to import); re-exported so that ocipush.api offers every call.
from ocipush.query import Inspection as Inspection
from ocipush.query import catalog as catalog
from ocipush.query import fetch_manifest as fetch_manifest
from ocipush.query import inspect as inspect
from ocipush.query import list_tags as list_tags
from ocipush.query import resolve_digest as resolve_digest
from ocipush.reference import Reference
from ocipush.registry.options import DEFAULT_CHUNK_SIZE, RegistryOptions
from ocipush.registry.session import RegistrySession
from ocipush.sources import open_source
from ocipush.transfer import (
    ImageSource,
    ImageTarget,
    LayoutSource,
    LayoutTarget,
    RegistrySource,
    RegistryTarget,
    TransferResult,
    select_platform,
    transfer,
)

if TYPE_CHECKING:
    from ocipush.build import BuildResult, BuildSpec
    from ocipush.lambda_rules import LambdaProblem
    from ocipush.models import Descriptor, Platform
    from ocipush.ops.convert import Conversion
    from ocipush.spool import GrowingBlob

log = get_logger("ocipush.api")
LocationLike = str | Location


def _scratch_dir(options: RegistryOptions) -> contextlib.AbstractContextManager[str]:
    from ocipush.cachedir import scratch_dir

    return scratch_dir(options.cache_dir)


@contextlib.contextmanager
def _converted(
    session: RegistrySession, image: ImageSource, conversion: Conversion | None, platform: Platform | None
) -> Iterator[ImageSource]:
    if conversion is None or conversion.changes_nothing:
        yield image
        return
    from ocipush.ops.convert import convert

    with _scratch_dir(session.options) as scratch:
        yield convert(image, conversion, scratch, platform=platform, jobs=session.options.jobs)


def copy(
    source: LocationLike,
    target: LocationLike,
    *,
    tags: Iterable[str] = (),
    platform: Platform | str | None = None,
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
    create_repository: Callable[[], bool] | None = None,
    conversion: Conversion | None = None,
    referrers: bool = True,
) -> TransferResult:
    """Copy an image between any two locations. With `platform`, only that image of an index is copied. With
    `referrers` (the default, except to a docker archive, which cannot hold them) its signatures, SBOMs and
    other referrers come along, recursively, digests unchanged. With `conversion`, layers are recompressed and/or
    manifests rewritten in the other format: the digests change, so referrers (which name the old digests) stay
    behind. Without a conversion, a docker archive's plain layers are gzip-compressed on the way (a registry would
    otherwise store and serve them uncompressed); `Conversion(compression="keep")` pushes them as they are."""
    src, dst = check.location(source, "source"), check.location(target, "target")
    wanted = check.platform(platform)
    extra_tags = check.tags(tags)
    options = check.options(options)
    check.callback(progress, "progress")
    check.callback(create_repository, "create_repository")
    conversion = check.conversion(conversion)
    check.flag(referrers, "referrers")
    if isinstance(dst, ArchiveLocation | OciArchiveLocation) and os.path.isdir(dst.path):
        kind = "a docker archive" if isinstance(dst, ArchiveLocation) else "an oci-archive"
        raise LayoutError(f"{dst.path} is a directory, not {kind}")
    if conversion is None and isinstance(src, ArchiveLocation) and not isinstance(dst, ArchiveLocation):
        from ocipush.ops.convert import Conversion

        conversion = Conversion(compression="gzip")  # gzip layers keep their digests; plain ones are compressed
    converting = conversion is not None and not conversion.changes_nothing
    if converting and referrers and not isinstance(src, ArchiveLocation):
        log.info("converting: referrers name the source's digests and are not copied")
    with RegistrySession(options) as session:
        seen: dict[str, str | None] = {}  # what the target's tags name, when the shortcut below asked
        if isinstance(src, LayoutLocation) and isinstance(dst, Reference) and dst.tag and not dst.digest \
                and conversion is None and wanted is None and not referrers:  # fmt: skip
            from ocipush.unchanged import unchanged_push

            if (done := unchanged_push(session, src, dst, [dst.tag, *extra_tags], seen)) is not None:
                return done
        with open_source(session, src) as opened:
            result = _copy_from(session, opened, source, target, dst, wanted, extra_tags, progress,
                                create_repository, conversion, referrers and not converting, seen)  # fmt: skip
            if conversion is not None and not conversion.changes_nothing:
                root = opened.root()
                original = select_platform(opened, root, wanted) if wanted and root.is_index else root
                if original.digest != result.digest:
                    result.converted_from = original.digest
            return result


def _copy_from(
    session: RegistrySession,
    opened: ImageSource,
    source: LocationLike,
    target: LocationLike,
    dst: Location,
    wanted: Platform | None,
    extra_tags: list[str],
    progress: ProgressCallback,
    create_repository: Callable[[], bool] | None,
    conversion: Conversion | None,
    referrers: bool,
    seen: dict[str, str | None] | None = None,
) -> TransferResult:
    with _converted(session, opened, conversion, wanted) as image:
        jobs = session.options.jobs
        if isinstance(dst, Reference | LayoutLocation) and dst.digest:
            _check_target_digest(image, wanted, dst.digest, f"{source} -> {target}")
        if isinstance(dst, Reference):
            all_tags = ([dst.tag] if dst.tag and not dst.digest else []) + extra_tags
            registry_target: ImageTarget = RegistryTarget(session, dst, progress, seen)
            return transfer(
                image,
                registry_target,
                all_tags,
                platform=wanted,
                jobs=jobs,
                progress=progress,
                on_missing_repository=create_repository,
                referrers=referrers,
            )
        if isinstance(dst, LayoutLocation):
            layout_tags = ([dst.tag] if dst.tag else []) + extra_tags
            with _layout_at(dst.path) as layout:
                return transfer(
                    image, LayoutTarget(layout, progress), layout_tags, platform=wanted, jobs=jobs, progress=progress,
                    referrers=referrers,
                )  # fmt: skip
        if isinstance(dst, OciArchiveLocation):
            return _to_oci_archive(image, dst, extra_tags, wanted, session, progress, referrers)
        return _to_archive(image, dst, wanted or _host_platform(), session, progress)


@contextlib.contextmanager
def _layout_at(path: str) -> Iterator[OCILayout]:
    """The layout to write: a new one is filled beside `path` and renamed into place when complete (a failed
    attempt is continued by the next; not durable, as that rename is not); an existing layout is added to in
    place, blobs first, index.json last."""
    from ocipush.fsutil import staged_directory

    if os.path.isdir(path) and os.listdir(path):
        yield OCILayout(path, create=True)
    else:
        with staged_directory(path, resumable=True) as staging:
            yield OCILayout(staging, create=True, durable=False)


def _to_scratch(
    image: ImageSource, platform: Platform, session: RegistrySession, progress: ProgressCallback, scratch: str
) -> tuple[OCILayout, TransferResult]:
    """One platform's image copied into a scratch layout."""
    layout = OCILayout(scratch, create=True, durable=False)
    result = transfer(
        image, LayoutTarget(layout, progress), [], platform=platform, jobs=session.options.jobs, progress=progress
    )
    return layout, result


def _check_target_digest(image: ImageSource, wanted: Platform | None, digest: str, what: str) -> None:
    """A target that names a digest gets that image or nothing: refused when the source holds another."""
    root = image.root()
    chosen = select_platform(image, root, wanted) if wanted is not None and root.is_index else root
    if chosen.digest != digest:
        raise UsageError(f"{what}: the target names digest {digest}, but the image copied is {chosen.digest}")


def _to_oci_archive(
    image: ImageSource,
    dst: OciArchiveLocation,
    tags: list[str],
    platform: Platform | None,
    session: RegistrySession,
    progress: ProgressCallback,
    referrers: bool,
) -> TransferResult:
    from ocipush.ociarchive import write_oci_archive

    with _scratch_dir(session.options) as scratch:
        layout = OCILayout(scratch, create=True, durable=False)
        all_tags = ([dst.tag] if dst.tag else []) + tags
        jobs = session.options.jobs
        target = LayoutTarget(layout, progress)
        result = transfer(
            image, target, all_tags, platform=platform, jobs=jobs, progress=progress, referrers=referrers
        )
        write_oci_archive(layout, dst.path)
    return result


def _to_archive(
    image: ImageSource, dst: ArchiveLocation, platform: Platform, session: RegistrySession, progress: ProgressCallback
) -> TransferResult:
    from ocipush.archive import write_docker_archive

    with _scratch_dir(session.options) as scratch:
        layout, result = _to_scratch(image, platform, session, progress, scratch)
        descriptor = layout.resolve(digest=result.digest)
        write_docker_archive(layout, descriptor, dst.path, str(dst.reference) if dst.reference else None)
    return result


def _host_platform() -> Platform:
    from ocipush.models import host_platform  # the models load on first use, not at `import ocipush.api`

    return host_platform()


def push(
    source: LocationLike,
    target: LocationLike,
    *,
    tags: Iterable[str] = (),
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
    create_repository: Callable[[], bool] | None = None,
    conversion: Conversion | None = None,
    referrers: bool = False,
) -> TransferResult:
    """Push an image from a layout or archive to a registry (every platform of an index); `conversion` as in
    `copy` (a docker archive's plain layers are gzip-compressed unless it says otherwise); with `referrers`, the
    referrers the layout holds for it too."""
    return copy(
        source, target, tags=tags, options=options, progress=progress, create_repository=create_repository,
        conversion=conversion, referrers=referrers,
    )  # fmt: skip


def pull(
    source: LocationLike,
    target: LocationLike,
    *,
    platform: Platform | str | None = None,
    all_platforms: bool = False,
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
    referrers: bool = False,
) -> TransferResult:
    """Pull an image to `oci:DIR[:tag]` or `docker-archive:FILE[:ref]`; from an index, the image for `platform`
    (default: this machine's) unless `all_platforms`. With `referrers`, an `oci:` layout keeps the image's
    referrers and cosign objects too (as skopeo and oras do)."""
    archive = isinstance(check.location(target, "target"), ArchiveLocation)
    if check.flag(all_platforms, "all_platforms") and archive:
        raise UsageError("a docker archive holds one platform's image: pull --all-platforms to an oci: layout")
    if check.flag(referrers, "referrers") and archive:
        raise UsageError("a docker archive cannot hold referrers: pull --referrers to an oci: layout")
    wanted = None if all_platforms else (check.platform(platform) or _host_platform())
    return copy(source, target, platform=wanted, options=options, progress=progress, referrers=referrers)


def pull_rootfs(
    source: LocationLike,
    directory: str,
    *,
    platform: Platform | str | None = None,
    allow_devices: bool | None = None,
    max_size: int | None = None,
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
) -> TransferResult:
    """Pull an image and unpack its layers (whiteouts applied, unsafe entries refused) into `directory`, which
    must be missing or empty. It appears only once complete: the layers are applied in a directory beside it,
    renamed into place at the end, and removed on an error.

    Device nodes and fifos are created when running as root; `allow_devices=False` refuses them, and without root
    device nodes are refused (mknod needs root) with an error that says so. Each layer is checked against the
    config's diff_ids; `max_size` caps the bytes the files may hold in all (UnsafeArchiveError past it), and runs
    of zeros and sparse entries are written as holes."""
    from ocipush.extract import extract_layers
    from ocipush.fsutil import staged_directory

    check.text(directory, "directory")
    wanted = check.platform(platform) or _host_platform()
    if allow_devices is not None:
        check.flag(allow_devices, "allow_devices")
    check.callback(progress, "progress")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise UsageError(f"{directory} exists and is not a directory")
    if os.path.isdir(directory) and os.listdir(directory):
        raise UsageError(f"{directory} is not empty: unpack into a new or empty directory")
    options = check.options(options)
    with (
        RegistrySession(options) as session,
        open_source(session, check.location(source, "source")) as image,
        _scratch_dir(options) as scratch,
    ):
        layout, result = _to_scratch(image, wanted, session, progress, scratch)
        manifest = layout.read_manifest(layout.resolve(digest=result.digest)).manifest
        with staged_directory(directory) as staging:
            extract_layers(layout, manifest, staging, allow_devices=allow_devices, max_size=max_size)
    return result


def build_to(
    spec: BuildSpec,
    output: LocationLike,
    *,
    base_layers: bool = True,
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
) -> BuildResult:
    """Build `spec` into `oci:DIR[:tag]` or `docker-archive:FILE[:ref]`, complete: a registry base's layers are
    downloaded (digest-verified) so that any tool can read the result. A layout always gets OCI manifests (a
    Docker base's layers under their OCI names), the only kind skopeo and umoci read from a layout.
    `base_layers=False` leaves the base's layers out of an oci: layout; pushing that layout then mounts or streams
    them from the base's registry, as build-push does.
    A new layout is removed again when the build fails, an archive appears only once complete; the previous image
    of an existing layout tag is reused."""
    from ocipush.build import BuildSpec, build_image, previous_manifests
    from ocipush.transfer import complete_layout

    spec = check.instance(spec, BuildSpec, "spec")
    target = check.location(output, "output")
    check.flag(base_layers, "base_layers")
    options = check.options(options)
    check.callback(progress, "progress")
    spec = _with_cache_dir(spec, options)
    if isinstance(target, LayoutLocation):
        if target.digest:
            raise UsageError(f"{output}: name a tag, not a digest")
        from ocipush.fsutil import removed_on_error

        with removed_on_error(target.path) as path:
            store = OCILayout(path, create=True)
            previous = previous_manifests(store, target.tag)
            built = build_image(spec, store, target.tag, progress, previous, options, oci=True,
                                check=_lambda_gate(spec, store, options))  # fmt: skip
            if base_layers:
                with RegistrySession(options) as session:
                    complete_layout(session, store, built.descriptor.digest, progress=progress)
        return built
    if isinstance(target, ArchiveLocation):
        from ocipush.archive import write_docker_archive

        if not base_layers:
            raise UsageError("a docker archive always holds the base's layers: leave them out only of an oci: layout")
        platform = _host_platform() if len(spec.platforms) != 1 else spec.platforms[0]
        with _scratch_dir(options) as scratch, RegistrySession(options) as session:
            store = OCILayout(scratch, create=True, durable=False)
            built = build_image(spec, store, None, progress, fetch_options=options,
                                check=_lambda_gate(spec, store, options))  # fmt: skip
            complete_layout(session, store, built.descriptor.digest, platform, progress)
            reference = str(target.reference) if target.reference else None
            write_docker_archive(store, built.descriptor, target.path, reference, platform)
        return built
    raise UsageError(f"{output}: build writes oci:DIR[:tag] or docker-archive:FILE; use build_push for a registry")


def _with_cache_dir(spec: BuildSpec, options: RegistryOptions) -> BuildSpec:
    if spec.cache_dir is None and options.cache_dir:
        return spec.model_copy(update={"cache_dir": options.cache_dir})  # one cache dir for everything
    return spec


def build_push(
    spec: BuildSpec,
    target: LocationLike,
    *,
    tags: Iterable[str] = (),
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
    create_repository: Callable[[], bool] | None = None,
    sbom: bool = False,
) -> tuple[BuildResult, TransferResult]:
    """Build `spec` into the local store (the cache dir's build layout, so a failed push can be retried or resumed
    and unchanged layers are reused) and push it to `target`. Base layers are mounted or streamed, never stored
    (their tar headers are read once per cache dir when a layer goes below /: see `ocipush.build.base_index`).
    With `sbom`, an SPDX document of the built layers is attached to each pushed image manifest (as a referrer,
    its digest in the result's `referrers`)."""
    from concurrent.futures import ThreadPoolExecutor

    from ocipush.build import BuildSpec, build_image
    from ocipush.registry.stream import upload_growing
    from ocipush.transfer import default_cache_layout

    spec = check.instance(spec, BuildSpec, "spec")
    reference = check.reference(target, "target")
    tags = check.tags(tags)
    options = check.options(options)
    check.callback(progress, "progress")
    check.callback(create_repository, "create_repository")
    spec = _with_cache_dir(spec, options)
    store = default_cache_layout("build", options.cache_dir)
    previous = _current_manifests(reference, options, store)
    with RegistrySession(options) as session, ThreadPoolExecutor(options.jobs, "ocipush-stream") as streams:
        # New layers are uploaded while they are compressed; the push below finds them there (HEAD) and does
        # the rest, or uploads a layer from the store if streaming it gave up.
        client = session.client(reference)
        part = options.chunk_size or DEFAULT_CHUNK_SIZE

        def stream(blob: GrowingBlob) -> None:
            streams.submit(upload_growing, client, blob, part)

        built = build_image(spec, store, None, progress=progress, previous=previous, fetch_options=options,
                            watch=stream, check=_lambda_gate(spec, store, options))  # fmt: skip
    if spec.lambda_check and len(built.manifests) > 1:
        pushed = _push_per_architecture(store, built, reference, tags, options, progress, create_repository)
    else:
        source = LayoutLocation(store.path, None, built.descriptor.digest)
        pushed = copy(
            source, reference, tags=tags, options=options, progress=progress, create_repository=create_repository,
            referrers=False,
        )  # fmt: skip
    if sbom:
        from ocipush.supply import push_sboms

        with RegistrySession(options) as session:
            pushed.referrers = push_sboms(session, reference, store, built, spec.source_date_epoch)
    return built, pushed


def _push_per_architecture(
    store: OCILayout,
    built: BuildResult,
    reference: Reference,
    tags: Iterable[str],
    options: RegistryOptions,
    progress: ProgressCallback,
    create_repository: Callable[[], bool] | None,
) -> TransferResult:
    """Lambda takes no index: each architecture's image gets its own tags, TAG-amd64 and TAG-arm64."""
    results = []
    for manifest in built.manifests:
        arch = manifest.platform.architecture if manifest.platform else "unknown"
        wanted = [f"{t}-{arch}" for t in [reference.tag or "latest", *tags]]
        results.append(copy(LayoutLocation(store.path, None, manifest.digest), reference.with_tag(wanted[0]),
                            tags=wanted[1:], options=options, progress=progress,
                            create_repository=create_repository))  # fmt: skip
    first = results[0]
    blobs = {digest: outcome for result in results for digest, outcome in result.blobs.items()}
    return TransferResult(first.digest, first.media_type, first.size, [t for r in results for t in r.tags], blobs)


def _lambda_gate(
    spec: BuildSpec, store: OCILayout, options: RegistryOptions
) -> Callable[[list[Descriptor]], None] | None:
    """With `--lambda`, the check a build runs on its manifests before it tags or pushes them."""
    if not spec.lambda_check:
        return None
    return lambda manifests: check_built_for_lambda(store, manifests, options)


def check_built_for_lambda(store: OCILayout, manifests: list[Descriptor], options: RegistryOptions) -> None:
    """Refuse to tag or push what AWS Lambda would refuse: every platform's problems in one error."""
    from ocipush.errors import CheckFailedError
    from ocipush.lambda_rules import check_image

    problems = []
    with RegistrySession(options) as session:
        for manifest in manifests:
            source = LayoutSource(session, store, None, manifest.digest)
            problems += [f"{manifest.platform}: {p}" for p in check_image(source, manifest.platform, options.cache_dir)]
    if problems:
        raise CheckFailedError("the image is not ready for AWS Lambda: " + "; ".join(problems))


def _current_manifests(reference: Reference, options: RegistryOptions, store: OCILayout) -> list[ManifestDocument]:
    """The image manifests the target tag names now, their configs copied into `store` (a few KB), so that the
    build can reuse their layers by diff_id without compressing or uploading them again; none if it is new."""
    if not reference.tag:
        return []
    with RegistrySession(options) as session:
        source = RegistrySource(session, reference)
        try:
            root = source.root()
        except NotFoundError:
            return []
        children = [c for c in root.index.manifests if c.media_type in mt.IMAGE_MANIFESTS] if root.is_index else []
        documents = [source.manifest(child) for child in children] if root.is_index else [root]
        for document in documents:
            config = document.manifest.config
            if not store.has_blob(config.digest):
                store.write_blob(source.client.fetch_blob_bytes(config.digest), config.digest)
        return documents


def fetch_blob_bytes(location: LocationLike, digest: str, options: RegistryOptions | None = None) -> bytes:
    """A small blob (a config) of the repository at `location`, verified."""
    loc = check.location(location, "location")
    check.digest(digest, "digest")
    options = check.options(options)
    if isinstance(loc, LayoutLocation):
        return OCILayout(loc.path).read_blob(digest)
    if not isinstance(loc, Reference):
        raise UsageError(f"cannot read blobs from {loc}")
    with RegistrySession(options) as session:
        return session.client(loc).fetch_blob_bytes(digest)


def delete(location: str | Reference, options: RegistryOptions | None = None) -> str:
    """Delete the manifest a tag or digest names (all its tags go with it). Returns the deleted digest.

    On ECR, where the v2 DELETE may be refused, the image is deleted through the ECR API instead."""
    reference = check.reference(location, "location")
    with RegistrySession(check.options(options)) as session:
        client = session.client(reference)
        digest = reference.digest
        if digest is None:
            found = client.manifest_digest(reference.identifier)
            if found is None:
                raise NotFoundError(f"{reference} not found")
            digest = found[0]
        try:
            client.delete_manifest(digest)
        except RegistryError as exc:
            ecr_host = client.transport.auth.ecr_host
            if ecr_host is None or exc.status not in (400, 405):
                raise
            from ocipush.ecr_admin.images import batch_delete_image
            from ocipush.ecr_admin.models import ImageId

            answer = batch_delete_image(
                reference.repository,
                [ImageId(digest=digest)],
                region=ecr_host.region,
                profile=session.options.aws_profile,
            )
            if answer.failures:
                failure = answer.failures[0]
                raise RegistryError(f"delete {reference}: {failure.code}: {failure.reason}") from None
        return digest


def lambda_check(
    location: LocationLike, platform: Platform | str | None = None, options: RegistryOptions | None = None
) -> list[LambdaProblem]:
    """Every reason AWS Lambda would refuse the image at `location` (an empty list when it would take it)."""
    from ocipush.lambda_rules import check_image

    loc, wanted = check.location(location, "location"), check.platform(platform)
    options = check.options(options)
    with RegistrySession(options) as session, open_source(session, loc) as image:
        return check_image(image, wanted, options.cache_dir)


def login(host: str, username: str, password: str, options: RegistryOptions | None = None) -> str:
    """Check the credentials against registry `host` (as `docker login` does), then store them in the docker config
    or its credential helper (see `ocipush.registry.login`). Returns where they went."""
    from ocipush.registry.errors import registry_error
    from ocipush.registry.login import store_credentials

    check.text(host, "host")
    check.text(username, "username")
    if not isinstance(password, str):
        raise UsageError(f"password: expected a string, got {type(password).__name__}")
    options = check.options(options)
    checking = dataclasses.replace(options, username=username, password=password)
    with RegistrySession(checking) as session:
        response = session.transport(_api_host(host)).request("GET", "/v2/", scopes=())
        if response.status_code != 200:
            raise registry_error(response, f"log in to {host}", host)
    return store_credentials(host, username, password, options.docker_config)


def logout(host: str, options: RegistryOptions | None = None) -> bool:
    """Remove the stored credentials of registry `host`; False when there were none."""
    from ocipush.registry.login import erase_credentials

    return erase_credentials(check.text(host, "host"), check.options(options).docker_config)


def _api_host(host: str) -> str:
    from ocipush.reference import DOCKER_HUB, DOCKER_HUB_API

    return DOCKER_HUB_API if host in (DOCKER_HUB, "index.docker.io") else host
