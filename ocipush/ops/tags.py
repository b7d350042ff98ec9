"""Tag an existing manifest (one GET, one PUT per tag, no blob traffic) and remove a tag without deleting the
manifest, which only ECR offers (BatchDeleteImage by tag); the v2 API can only delete a manifest with all its tags."""

from __future__ import annotations

from collections.abc import Sequence

from ocipush.arguments import checked
from ocipush.errors import NotFoundError, RegistryError, UsageError
from ocipush.ops.source import output_reference
from ocipush.reference import parse_reference
from ocipush.registry.options import RegistryOptions
from ocipush.registry.session import RegistrySession


@checked
def tag(reference: str, tags: Sequence[str], *, options: RegistryOptions | None = None) -> str:
    """Point each of `tags` (in the same repository) at the manifest `reference` names. Returns its digest."""
    source = parse_reference(reference)
    new_tags = list(tags)
    if not new_tags:
        raise UsageError("tag needs at least one new tag")
    with RegistrySession(options) as session:
        client = session.client(source)
        document = client.get_manifest(source.identifier)
        for new in new_tags:
            client.put_manifest(output_reference(source, new).identifier, document)
        return document.digest


@checked
def untag(reference: str, *, options: RegistryOptions | None = None) -> None:
    """Remove the tag `reference` names, keeping the manifest (and its other tags). ECR only."""
    target = parse_reference(reference, default_tag=None)
    if target.digest or not target.tag:
        raise UsageError(f"{reference}: untag takes REPOSITORY:TAG (to delete a manifest by digest, use delete)")
    with RegistrySession(options) as session:
        ecr_host = session.client(target).transport.auth.ecr_host
        if ecr_host is None:
            raise UsageError(
                f"{target.registry} cannot remove a tag without deleting the manifest (the registry API has no "
                f"untag); `ocipush delete {target}` deletes the manifest and every tag on it"
            )
        from ocipush.ecr_admin.images import batch_delete_image, describe_images
        from ocipush.ecr_admin.models import ImageId

        region, profile = ecr_host.region, session.options.aws_profile
        try:
            [image] = describe_images(target.repository, image_ids=[ImageId(tag=target.tag)], region=region,
                                      profile=profile)  # fmt: skip
        except NotFoundError:
            image = None  # BatchDeleteImage says so below, as ImageNotFound
        # ECR deletes an image with its last tag: untag promises to keep the manifest, so it refuses. (Another
        # client removing the other tags between these two calls is not seen.)
        if image is not None and set(image.tags) <= {target.tag}:
            raise UsageError(
                f"{target.tag} is the last tag of {image.digest} in {target.repository}: ECR would delete the image "
                f"with it; `ocipush delete {target}` does that if it is what you want"
            )
        answer = batch_delete_image(target.repository, [ImageId(tag=target.tag)], region=region, profile=profile)
    if answer.failures:
        failure = answer.failures[0]
        error = NotFoundError if failure.code == "ImageNotFound" else RegistryError
        raise error(f"untag {target}: {failure.code}: {failure.reason}")
