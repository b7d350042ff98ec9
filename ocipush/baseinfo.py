"""Where an image says which base it was built on, so that a push can mount the base's layers and a rebase can
find them: the image-spec's `org.opencontainers.image.base.*` keys. An OCI manifest carries them as annotations;
a Docker v2.2 manifest has no annotations field, so a Docker image carries the same keys as config labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the models load on first use: `transfer` needs only the key names
    from ocipush.models import ImageConfig, Manifest

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
BASE_KEYS = (BASE_NAME, BASE_DIGEST)


def base_of(manifest: Manifest, config: ImageConfig | None = None) -> dict[str, str]:
    """The base keys an image records: its manifest's annotations, else its config's labels."""
    annotations = {k: v for k, v in (manifest.annotations or {}).items() if k in BASE_KEYS}
    if annotations or config is None or config.config is None:
        return annotations
    return {k: v for k, v in (config.config.labels or {}).items() if k in BASE_KEYS}


def record_base(base: dict[str, str], docker: bool, annotations: dict[str, str], config: ImageConfig) -> None:
    """Write the base keys where the manifest family allows them (and drop stale ones from the other place)."""
    for key in BASE_KEYS:
        annotations.pop(key, None)
    from ocipush.models import ContainerConfig

    container = config.config or ContainerConfig()
    current = container.labels or {}
    labels = {k: v for k, v in current.items() if k not in BASE_KEYS}
    if docker:
        labels.update(base)
    else:
        annotations.update(base)
    if labels != current:  # untouched otherwise: the base's config keeps its exact shape
        container.labels = labels or None
        config.config = container
