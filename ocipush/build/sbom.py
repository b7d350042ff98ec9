"""An SPDX 2.3 JSON document for the layers a build made: every regular file (path, SHA-256 and the SHA-1 SPDX 2.3
requires) and every Python distribution found by its `*.dist-info/METADATA` (name, version, license, purl
`pkg:pypi/…`). Layers are read as streams, decompressed and hashed as they pass: nothing is unpacked."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import IO, Any

from ocipush.extract import decompress_stream

SPDX_JSON = "application/spdx+json"
METADATA_LIMIT = 1 << 20
READ_SIZE = 1 << 20
_METADATA = re.compile(r"(^|/)[^/]+\.dist-info/METADATA$")
# A License field that already is an SPDX expression (`MIT`, `Apache-2.0 OR MIT`); free text is not.
_SPDX_EXPRESSION = re.compile(r"^[A-Za-z0-9.+-]+( (AND|OR|WITH) [A-Za-z0-9.+-]+)*$")


@dataclass(frozen=True)
class FileRecord:
    """A regular file of the image, for the SBOM: its path, checksums and the layer it is in."""

    path: str
    sha256: str
    sha1: str
    layer: str


@dataclass(frozen=True)
class PythonDistribution:
    """A Python distribution found in the image's site-packages, for the SBOM."""

    name: str
    version: str
    license: str | None
    metadata_path: str

    @property
    def purl(self) -> str:
        return f"pkg:pypi/{re.sub(r'[-_.]+', '-', self.name).lower()}@{self.version}"


@dataclass
class Inventory:
    """What the SBOM lists: the image's files and its Python distributions."""

    files: list[FileRecord] = field(default_factory=list)
    distributions: list[PythonDistribution] = field(default_factory=list)


def scan_layer(stream: Any, compression: str, layer_digest: str, inventory: Inventory) -> None:
    """Add the files and Python distributions of one layer (a compressed stream) to `inventory`."""
    seen: dict[str, FileRecord] = {}
    with tarfile.open(fileobj=decompress_stream(stream, compression), mode="r|") as tar:
        for member in tar:
            path = member.name.removeprefix("./").lstrip("/")
            if path.rsplit("/", 1)[-1].startswith(".wh."):
                continue  # a whiteout says a file is gone: nothing to describe
            if member.islnk():
                target = seen.get(member.linkname.removeprefix("./").lstrip("/"))
                if target is not None:
                    seen[path] = FileRecord(path, target.sha256, target.sha1, layer_digest)
                    inventory.files.append(seen[path])
                continue
            if not member.isreg():
                continue
            reader = tar.extractfile(member)
            if reader is None:
                continue
            record, head = _hash(reader, path, layer_digest, keep=bool(_METADATA.search(path)))
            seen[path] = record
            inventory.files.append(record)
            if head is not None:
                found = _distribution(head, path)
                if found is not None:
                    inventory.distributions.append(found)


def _hash(reader: IO[bytes], path: str, layer: str, keep: bool) -> tuple[FileRecord, bytes | None]:
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(usedforsecurity=False)
    kept = bytearray() if keep else None
    while data := reader.read(READ_SIZE):
        sha256.update(data)
        sha1.update(data)
        if kept is not None and len(kept) < METADATA_LIMIT:
            kept += data
    return FileRecord(path, sha256.hexdigest(), sha1.hexdigest(), layer), bytes(kept) if kept is not None else None


def _distribution(metadata: bytes, path: str) -> PythonDistribution | None:
    headers = BytesParser().parsebytes(metadata, headersonly=True)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return None
    license_text = headers.get("License-Expression") or headers.get("License")
    return PythonDistribution(str(name).strip(), str(version).strip(),
                              str(license_text).strip() if license_text else None, path)  # fmt: skip


def _ref(kind: str, index: int) -> str:
    return f"SPDXRef-{kind}-{index}"


def spdx_document(subject: str, inventory: Inventory, created: int | None = None) -> bytes:
    """The SPDX 2.3 JSON document (bytes) describing `inventory` as the content of image `subject` (a name or
    digest). `created` (seconds since the epoch, e.g. SOURCE_DATE_EPOCH) makes it reproducible."""
    from ocipush import __version__

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if created is None else created))
    packages: list[dict[str, Any]] = [{
        "SPDXID": "SPDXRef-Image", "name": subject, "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
    }]  # fmt: skip
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Image"}
    ]
    for index, dist in enumerate(inventory.distributions, 1):
        declared = dist.license if dist.license and _SPDX_EXPRESSION.match(dist.license) else "NOASSERTION"
        package: dict[str, Any] = {
            "SPDXID": _ref("Package-pypi", index), "name": dist.name, "versionInfo": dist.version,
            "downloadLocation": "NOASSERTION", "filesAnalyzed": False, "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared, "sourceInfo": f"from {dist.metadata_path}",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": dist.purl}],
        }  # fmt: skip
        if dist.license and declared == "NOASSERTION":
            package["licenseComments"] = dist.license[:1000]
        packages.append(package)
        relationships.append({"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS",
                              "relatedSpdxElement": package["SPDXID"]})  # fmt: skip
    files: list[dict[str, Any]] = [
        {"fileName": f"./{f.path}", "SPDXID": _ref("File", index),
         "checksums": [{"algorithm": "SHA256", "checksumValue": f.sha256},
                       {"algorithm": "SHA1", "checksumValue": f.sha1}],
         "licenseConcluded": "NOASSERTION", "copyrightText": "NOASSERTION", "comment": f"layer {f.layer}"}
        for index, f in enumerate(inventory.files, 1)
    ]  # fmt: skip
    relationships += [{"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS",
                       "relatedSpdxElement": entry["SPDXID"]} for entry in files]  # fmt: skip
    document = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": subject,
        # One document per image: the image's digest names it.
        "documentNamespace": f"urn:ocipush:spdx:{subject.replace(':', '-')}",
        "creationInfo": {"created": stamp, "creators": [f"Tool: ocipush-{__version__}"]},
        "packages": packages, "files": files, "relationships": relationships,
    }  # fmt: skip
    return json.dumps(document, separators=(",", ":")).encode()


def inventory_of(layers: Iterable[tuple[str, str, Any]]) -> Inventory:
    """Scan (digest, compression, stream) layers in order."""
    inventory = Inventory()
    for digest, compression, stream in layers:
        scan_layer(stream, compression, digest, inventory)
    return inventory
