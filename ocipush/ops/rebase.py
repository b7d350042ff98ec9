"""Swap an image's base: the old base's layers must be the image's bottom layers; they are replaced by the new
base's (mounted or streamed), and the config's diff_ids, history and the base annotations are rewritten. The
app's layers are not downloaded. The old base comes from the `org.opencontainers.image.base.*` annotations that
`ocipush build` writes, or is named explicitly."""

from __future__ import annotations

from ocipush import mediatypes as mt
from ocipush.arguments import checked
from ocipush.baseinfo import BASE_DIGEST, BASE_NAME, base_of, record_base
from ocipush.errors import UsageError
from ocipush.log import get_logger
from ocipush.models import Platform, parse_platform
from ocipush.ops.convert import retype_layer
from ocipush.ops.source import Image, open_image, output_reference, publish, rewrite_image
from ocipush.progress import ProgressCallback, ignore_progress
from ocipush.reference import Reference, parse_reference
from ocipush.registry.options import RegistryOptions
from ocipush.registry.session import RegistrySession
from ocipush.transfer import TransferResult

log = get_logger("ocipush.ops.rebase")


@checked
def rebase(
    reference: str,
    new_base: str,
    target: str,
    *,
    old_base: str | None = None,
    platform: Platform | str | None = None,
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
) -> TransferResult:
    """Push to `target` the image `reference` names with its old base's layers replaced by `new_base`'s."""
    source_ref = parse_reference(reference)
    destination = output_reference(source_ref, target)
    new_ref = parse_reference(new_base)
    wanted = parse_platform(platform) if isinstance(platform, str) else platform
    with RegistrySession(options) as session:
        image = open_image(session, source_ref, wanted)
        own = image.config.platform
        old = open_image(session, _old_base(image, source_ref, old_base), own)
        count = _check_prefix(image, old, source_ref)
        new = open_image(session, new_ref, own)
        if (new.config.os, new.config.architecture) != (own.os, own.architecture):
            raise UsageError(f"new base {new_ref} is {new.config.platform}, but {source_ref} is {own}")
        config = image.config.model_copy(deep=True)
        config.rootfs.diff_ids = new.config.rootfs.diff_ids + image.config.rootfs.diff_ids[count:]
        old_history = len(old.config.history or [])
        config.history = list(new.config.history or []) + list(image.config.history or [])[old_history:]
        # The base's layers take the media types of the image's manifest family (same blobs).
        docker = image.document.media_type == mt.DOCKER_MANIFEST
        advice = "give the image OCI manifests first (copy --format oci)"
        layers = [retype_layer(layer, docker, str(new_ref), advice) for layer in new.manifest.layers]
        layers += image.manifest.layers[count:]
        annotations: dict[str, str] = {}
        record_base({BASE_NAME: str(new_ref), BASE_DIGEST: new.document.digest}, docker, annotations, config)
        source = rewrite_image(image, config, annotations, f"{source_ref} rebased", layers)
        source.add_origin(new.source, (layer.digest for layer in new.manifest.layers))
        log.info("rebasing %s: %d base layers replaced by %d", source_ref, count, len(new.manifest.layers))
        return publish(session, source, destination, progress)


def _old_base(image: Image, reference: Reference, given: str | None) -> Reference:
    if given:
        return parse_reference(given)
    recorded = base_of(image.manifest, image.config)
    name = recorded.get(BASE_NAME)
    if not name:
        raise UsageError(f"{reference} does not say what its base is (no {BASE_NAME} annotation or label): "
                         "use --old-base")  # fmt: skip
    base = parse_reference(name)
    digest = recorded.get(BASE_DIGEST)
    return base.with_digest(digest) if digest else base


def _check_prefix(image: Image, old: Image, reference: Reference) -> int:
    """The number of old-base layers, once they are known to be the image's bottom layers (by diff_id)."""
    base_ids = old.config.rootfs.diff_ids
    own_ids = image.config.rootfs.diff_ids
    if len(base_ids) > len(own_ids) or own_ids[: len(base_ids)] != base_ids:
        position = next((i for i, (a, b) in enumerate(zip(base_ids, own_ids, strict=False)) if a != b), len(own_ids))
        raise UsageError(
            f"the old base's {len(base_ids)} layers are not the bottom layers of {reference} "
            f"(they differ from layer {position + 1}): name the base it was built on with --old-base"
        )
    return len(base_ids)
