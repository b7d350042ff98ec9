"""The S3-backed registry (307 to moto) and the ECR-like registry (moto's token as Basic password)."""

from __future__ import annotations

import base64
import os

import boto3
import httpx
from support.handles import RegistryHandle
from support.v2 import digest_of, push_blob


def test_s3_registry_redirects_blob_gets(s3_registry: RegistryHandle) -> None:
    data = os.urandom(300_000)
    digest = digest_of(data)
    with httpx.Client() as client:
        push_blob(client, s3_registry.url, "s3/app", data, digest)
        resp = client.get(f"{s3_registry.url}/v2/s3/app/blobs/{digest}")
        assert resp.status_code == 307
        target = resp.headers["Location"]
        assert s3_registry.s3_endpoint_url is not None and target.startswith(s3_registry.s3_endpoint_url)
        fetched = client.get(target)
    assert fetched.status_code == 200
    assert fetched.content == data
    listed = boto3.client("s3").list_objects_v2(Bucket=s3_registry.bucket)
    assert any(digest.split(":")[1] in obj["Key"] for obj in listed["Contents"])


def test_ecr_registry_takes_the_moto_token(ecr_registry: RegistryHandle) -> None:
    assert ecr_registry.aws_env["AWS_ENDPOINT_URL"] == os.environ["AWS_ENDPOINT_URL"]
    token = boto3.client("ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    assert (user, password) == ecr_registry.auth
    assert httpx.get(f"{ecr_registry.url}/v2/").status_code == 401
    assert httpx.get(f"{ecr_registry.url}/v2/", auth=(user, password)).status_code == 200
