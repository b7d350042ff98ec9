"""A source registry for sync tests: 20 repositories x 5 tags, single images and two-platform indexes, built into one
OCI layout (every image shares a base layer, so the whole set is a few hundred KB) and pushed in parallel."""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import imagehelpers as ih
from transferhelpers import options

from ocipush.layout import OCILayout
from ocipush.models import Descriptor
from ocipush.progress import ignore_progress
from ocipush.reference import parse_reference
from ocipush.registry.session import RegistrySession
from ocipush.transfer import LayoutSource, RegistryTarget, transfer

VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "2.0.0")  # `latest` names the same image as 2.0.0
TAGS = (*VERSIONS, "latest")
BASE = [ih.file("etc/os-release", "ID=synctest\n"), ih.file("bin/tool", b"\x7fELF" + bytes(2048))]


def repositories() -> list[str]:
    """16 under lib/ and 4 under tools/: 20 repositories; even-numbered ones hold two-platform indexes."""
    return [f"lib/r{i:02}" for i in range(16)] + [f"tools/t{i:02}" for i in range(4)]


def is_index_repo(repository: str) -> bool:
    return int(repository[-2:]) % 2 == 0


@dataclass
class Source:
    host: str
    digests: dict[tuple[str, str], str] = field(default_factory=dict)  # (repository, tag) -> digest

    def tags_of(self, repository: str) -> dict[str, str]:
        return {tag: d for (repo, tag), d in self.digests.items() if repo == repository}


def _image(layout: OCILayout, repository: str, version: str, number: int) -> Descriptor:
    """One image (or index) named `repository:version` in the layout; `created` grows with the version."""
    created = f"2024-0{number + 1}-01T00:00:00Z"
    archs = ["amd64", "arm64"] if is_index_repo(repository) else ["amd64"]
    children = [
        ih.build_image(
            layout,
            [(BASE, "gzip"), ([ih.file("app/version", f"{repository} {version} {arch}\n")], "gzip")],
            tag=None,
            arch=arch,
            env=f"APP={repository}:{version}",
            created=created,
        )
        for arch in archs
    ]
    name = f"{repository.replace('/', '-')}-{version}"
    if len(children) == 1:
        layout.add_manifest(layout.read_manifest(children[0]), [name])
        return children[0]
    return ih.build_index(layout, children, name)


def populate(host: str, work: Path) -> Source:
    """Build every image into a layout and push it to registry `host`; returns what was pushed."""
    layout = OCILayout(str(work / "layout"), create=True)
    jobs: list[tuple[str, str, list[str]]] = []
    for repository in repositories():
        for number, version in enumerate(VERSIONS):
            _image(layout, repository, version, number)
            extra = ["latest"] if version == "2.0.0" else []
            jobs.append((repository, version, extra))
    source = Source(host)

    def push(repository: str) -> None:
        # One image at a time into a repository: concurrent pushes of one blob into one repository race in the
        # registry's filesystem storage (DIGEST_INVALID on the manifest PUT).
        target = RegistryTarget(session, parse_reference(f"{host}/{repository}"), ignore_progress)
        for repo, version, extra in jobs:
            if repo == repository:
                image = LayoutSource(session, layout, f"{repository.replace('/', '-')}-{version}", None)
                result = transfer(image, target, [version, *extra], jobs=2)
                for tag in result.tags:
                    source.digests[repository, tag] = result.digest

    # One session for all (pushing 100 small images is mostly connection set-up otherwise), with a connection
    # for each of the 4 x 2 blobs in flight: `jobs` sizes the pool.
    with RegistrySession(options(work, jobs=8)) as session, ThreadPoolExecutor(4) as pool:
        list(pool.map(push, repositories()))
    return source


def requests(log: Path, since: int = 0) -> Counter[tuple[str, str]]:
    """Requests in a registry's access log after byte `since`, by (method, kind: manifest/blob/upload/tags/...)."""
    return request_counts(log.read_text(errors="replace")[since:])


def request_counts(text: str) -> Counter[tuple[str, str]]:
    """Requests in access log text by (method, kind); `transferhelpers.log_mark`'s marker requests left out."""
    counts: Counter[tuple[str, str]] = Counter()
    text = "\n".join(line for line in text.splitlines() if "/v2/log-mark-" not in line)
    for method, path in re.findall(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/\S*) HTTP', text):
        kind = "upload" if "/blobs/uploads/" in path else next(
            (k for k in ("manifests", "blobs", "tags", "_catalog") if f"/{k}/" in path or path.endswith(k)), "other"
        )
        counts[method, kind] += 1
    return counts


def manifest_puts(log: Path) -> Counter[str]:
    """PUT manifest paths in the log, with how often each was sent."""
    return Counter(re.findall(r'"PUT (/v2/\S+/manifests/\S+) HTTP', log.read_text(errors="replace")))
