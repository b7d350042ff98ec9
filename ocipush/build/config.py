"""The container-config edits a BuildSpec asks for (entrypoint, cmd, env, workdir, user, labels, ports), applied to
an image config: shared by `build` (on the base's config) and `mutate` (on an existing image's)."""

from __future__ import annotations

from ocipush.build.spec import BuildSpec
from ocipush.models import ContainerConfig, ImageConfig


def edit_container_config(config: ImageConfig, spec: BuildSpec, env: dict[str, str] | None = None) -> None:
    """Apply `spec`'s config settings to `config` in place; what the spec leaves unset is kept. `env` are
    variables a layer needs (a dependency layer's PYTHONPATH), under the spec's own."""
    container = config.config or ContainerConfig()
    wanted_env = {**(env or {}), **spec.env}
    if wanted_env:
        kept = [e for e in container.env or [] if e.split("=", 1)[0] not in wanted_env]
        container.env = kept + [f"{k}={v}" for k, v in wanted_env.items()]
    if spec.entrypoint is not None:
        container.entrypoint = spec.entrypoint
        # As in a Dockerfile: a new entrypoint drops the base's command unless one is given.
        container.cmd = spec.cmd
    elif spec.cmd is not None:
        container.cmd = spec.cmd
    if spec.workdir is not None:
        container.working_dir = spec.workdir
    if spec.user is not None:
        container.user = spec.user
    if spec.labels:
        container.labels = {**(container.labels or {}), **spec.labels}
    if spec.expose:
        container.exposed_ports = {**(container.exposed_ports or {}), **{p: {} for p in spec.expose}}
    config.config = container
