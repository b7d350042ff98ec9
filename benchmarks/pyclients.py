"""The Python peers, driven as their users drive them; run with the peers virtualenv's Python.

    python pyclients.py dxf HOST REPO FILE...
    python pyclients.py oras HOST REPO FILE=DIGEST...

python-dxf: `DXF(host, repo, insecure=True).push_blob(path)` (it hashes the file, HEADs, then POST + one
streamed PUT). oras-py: `Registry.upload_blob(..., do_chunked=True)` (POST, 16 MiB PATCHes, PUT): its chunked
mode, because the default monolithic one reads the whole blob into memory.
"""

from __future__ import annotations

import os
import sys


def dxf_push(host: str, repo: str, files: list[str]) -> None:
    from dxf import DXF

    client = DXF(host, repo, insecure=True)
    for path in files:
        client.push_blob(path)


def oras_push(host: str, repo: str, items: list[str]) -> None:
    import oras.provider

    registry = oras.provider.Registry(hostname=host, insecure=True)
    container = registry.get_container(f"{host}/{repo}:bench")
    for item in items:
        path, digest = item.rsplit("=", 1)
        layer = {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest,
            "size": os.path.getsize(path),
        }
        response = registry.upload_blob(path, container, layer, do_chunked=True)
        if response.status_code not in (200, 201, 202):
            raise SystemExit(f"oras-py upload failed: {response.status_code} {response.text[:200]}")


def main(argv: list[str]) -> None:
    tool, host, repo, *rest = argv
    if tool == "dxf":
        dxf_push(host, repo, rest)
    elif tool == "oras":
        oras_push(host, repo, rest)
    else:
        raise SystemExit(f"unknown tool {tool}")


if __name__ == "__main__":
    main(sys.argv[1:])
