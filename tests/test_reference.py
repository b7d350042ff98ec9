import pytest

from ocipush.errors import InvalidReferenceError
from ocipush.locations import ArchiveLocation, LayoutLocation
from ocipush.reference import Reference, parse_location, parse_reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ubuntu", Reference("docker.io", "library/ubuntu", "latest")),
        ("ubuntu:22.04", Reference("docker.io", "library/ubuntu", "22.04")),
        ("docker.io/ubuntu", Reference("docker.io", "library/ubuntu", "latest")),
        ("index.docker.io/library/ubuntu", Reference("docker.io", "library/ubuntu", "latest")),
        ("user/app:1", Reference("docker.io", "user/app", "1")),
        ("localhost:5000/x", Reference("localhost:5000", "x", "latest")),
        ("localhost/x:t", Reference("localhost", "x", "t")),
        ("127.0.0.1:5000/a/b/c:t", Reference("127.0.0.1:5000", "a/b/c", "t")),
        (f"ghcr.io/o/r@{DIGEST}", Reference("ghcr.io", "o/r", None, DIGEST)),
        (f"ghcr.io/o/r:t@{DIGEST}", Reference("ghcr.io", "o/r", "t", DIGEST)),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v1",
            Reference("123456789012.dkr.ecr.us-east-1.amazonaws.com", "team/app", "v1"),
        ),
        ("public.ecr.aws/lambda/python:3.12", Reference("public.ecr.aws", "lambda/python", "3.12")),
    ],
)
def test_parse_reference(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", " x", "UPPER/case", "a//b", "x:", "x:-bad", "x@sha256:short", "host:99999999999/x/../y", "a/b:" + "t" * 129],
)
def test_invalid_references(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse_reference(text)


def test_docker_hub_api_host_and_identifier() -> None:
    ref = parse_reference("busybox")
    assert ref.api_host == "registry-1.docker.io"
    assert ref.identifier == "latest"
    assert parse_reference(f"x/y@{DIGEST}").identifier == DIGEST
    assert str(parse_reference("localhost:5000/x:1")) == "localhost:5000/x:1"


def test_locations() -> None:
    assert parse_location("oci:/tmp/lay") == LayoutLocation("/tmp/lay")
    assert parse_location("oci:/tmp/lay:v2") == LayoutLocation("/tmp/lay", "v2")
    assert parse_location(f"oci:rel/lay@{DIGEST}") == LayoutLocation("rel/lay", None, DIGEST)
    assert parse_location("docker-archive:/tmp/a.tar") == ArchiveLocation("/tmp/a.tar")
    assert parse_location("docker-archive:a.tar:localhost:5000/x:1") == ArchiveLocation(
        "a.tar", Reference("localhost:5000", "x", "1")
    )
    assert parse_location("docker://alpine") == Reference("docker.io", "library/alpine", "latest")
    with pytest.raises(InvalidReferenceError):
        parse_location("oci:")
    with pytest.raises(InvalidReferenceError):
        parse_location("oci:/x:bad tag")
