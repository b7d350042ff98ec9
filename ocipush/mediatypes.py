"""Media types of OCI image-spec and Docker manifest v2.2."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
OCI_NONDISTRIBUTABLE_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

# Layers that registries need not hold: the manifest names where they live (Windows base layers).
FOREIGN_LAYERS = frozenset(
    {
        DOCKER_FOREIGN_LAYER,
        OCI_NONDISTRIBUTABLE_GZIP,
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)

IMAGE_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFESTS = IMAGE_MANIFESTS | INDEXES

# Every manifest type we can read, so that a registry (ECR especially) never converts on a pull by tag.
ACCEPT_MANIFESTS = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST])

GZIP_LAYERS = frozenset({OCI_LAYER_GZIP, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER})
ZSTD_LAYERS = frozenset({OCI_LAYER_ZSTD})
PLAIN_LAYERS = frozenset({OCI_LAYER, DOCKER_LAYER})

# The OCI name of each Docker v2.2 type (same bytes), for a Docker base under an OCI manifest.
DOCKER_TO_OCI = {
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER: OCI_LAYER,
    DOCKER_FOREIGN_LAYER: OCI_NONDISTRIBUTABLE_GZIP,
}


def layer_compression(media_type: str) -> str:
    """'gzip', 'zstd' or 'none' for a layer media type (unknown `+gzip`/`+zstd` suffixes included)."""
    if media_type in GZIP_LAYERS or media_type.endswith("+gzip") or media_type.endswith(".gzip"):
        return "gzip"
    if media_type in ZSTD_LAYERS or media_type.endswith("+zstd"):
        return "zstd"
    return "none"
