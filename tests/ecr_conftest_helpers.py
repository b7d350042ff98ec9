"""Helpers for the ECR management tests: run the CLI, fake an image push into moto, unique names."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from ocipush.cli import main


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    """Run `ocipush ecr ARGV…` in-process and capture what it printed."""
    code = main(["ecr", *argv])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def unique(prefix: str) -> str:
    """A repository name no other test on this (shared) moto server uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def push_fake_image(repository: str, tag: str | None, seed: str, region: str = "us-east-1") -> str:
    """Put a manifest straight into moto's ECR (it checks no layers); returns the digest moto assigned."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "size": len(seed),
                "digest": "sha256:" + hashlib.sha256(seed.encode()).hexdigest(),
            },
            # moto derives the image digest from the layer digests only, so the seed goes into a layer.
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "size": 1,
                    "digest": "sha256:" + hashlib.sha256(f"layer-{seed}".encode()).hexdigest(),
                }
            ],
        }
    )
    client = boto3.client("ecr", region_name=region)
    kwargs = {"imageTag": tag} if tag else {}
    response = client.put_image(repositoryName=repository, imageManifest=manifest, **kwargs)
    return response["image"]["imageId"]["imageDigest"]
