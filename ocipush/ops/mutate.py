"""Edit an image's config (as `build` would: entrypoint, cmd, env, workdir, user, labels, ports), its platform
and its manifest annotations; only the config and the manifest are new, no layer is downloaded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocipush.arguments import checked
from ocipush.models import History, Platform, parse_platform
from ocipush.ops.source import open_image, output_reference, publish, rewrite_image
from ocipush.progress import ProgressCallback, ignore_progress
from ocipush.reference import parse_reference
from ocipush.registry.options import RegistryOptions
from ocipush.registry.session import RegistrySession
from ocipush.transfer import TransferResult

if TYPE_CHECKING:
    from ocipush.build.spec import BuildSpec


@checked
def mutate(
    reference: str,
    target: str,
    spec: BuildSpec,
    *,
    set_platform: Platform | str | None = None,
    platform: Platform | str | None = None,
    options: RegistryOptions | None = None,
    progress: ProgressCallback = ignore_progress,
) -> TransferResult:
    """Push to `target` (a tag of the same repository, or a reference) the image `reference` names with `spec`'s
    config settings and annotations applied. From an index, `platform` picks the image to edit."""
    from ocipush.build.config import edit_container_config

    source_ref = parse_reference(reference)
    destination = output_reference(source_ref, target)
    wanted = parse_platform(platform) if isinstance(platform, str) else platform
    new_platform = parse_platform(set_platform) if isinstance(set_platform, str) else set_platform
    with RegistrySession(options) as session:
        image = open_image(session, source_ref, wanted)
        config = image.config.model_copy(deep=True)
        edit_container_config(config, spec)
        if new_platform is not None:
            config.os, config.architecture = new_platform.os, new_platform.architecture
            config.variant = new_platform.variant
        entry = History(created=config.created, created_by="ocipush mutate", empty_layer=True)
        config.history = [*(config.history or []), entry]
        source = rewrite_image(image, config, spec.annotations, f"mutated {source_ref}")
        return publish(session, source, destination, progress)
