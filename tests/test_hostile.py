"""The hostile-server matrix: registries that lie, loop, flood or stall in ways no real registry can be made to
(tests/support/hostile.py plays them). Each row sets up the server, runs one library call, names the one ocipush
error it must end in, and checks that the hostile behaviour was really met (the fault fired).

Add a row to CASES for a new hostile behaviour; cases that a real registry can show live next to the code they
test instead."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.hostile import HostileRegistry, Reply, endless, trickle
from transferhelpers import assert_one_line_error, run_cli

from ocipush import api
from ocipush import mediatypes as mt
from ocipush.errors import DigestMismatchError, NotFoundError, OcipushError, RegistryError, TransportError
from ocipush.registry.options import RegistryOptions


def _sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _index(children: list[tuple[str, int]]) -> bytes:
    manifests = [{"mediaType": mt.OCI_INDEX, "digest": d, "size": n} for d, n in children]
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}).encode()


OCI_JSON = {"Content-Type": "application/json"}
GENUINE = _index([])
FORGED = _index([("sha256:" + "0" * 64, 1)])


@dataclass
class Case:
    name: str
    setup: Callable[[HostileRegistry], str]  # returns the reference (without host) the action uses
    act: Callable[[str, Path, RegistryOptions], object]  # (host/reference, tmp_path, options)
    raises: type[OcipushError] | None  # None: the call must succeed despite the hostile answers
    match: str
    fired: Callable[[HostileRegistry], bool]  # the hostile answer was really given (and, for None, coped with)
    options: dict[str, object] = field(default_factory=dict)  # RegistryOptions fields for this row


def _sha512_pinned(server: HostileRegistry) -> str:
    digest = _sha512(GENUINE)
    server.serve_manifest("app", digest, FORGED, mt.OCI_INDEX)
    return f"app@{digest}"


def _sha512_child(server: HostileRegistry) -> str:
    child = _sha512(GENUINE)
    server.serve_manifest("app", child, FORGED, mt.OCI_INDEX)
    root = _index([(child, len(GENUINE))])
    server.serve_manifest("app", _sha256(root), root, mt.OCI_INDEX)
    return f"app@{_sha256(root)}"


MiB = 1 << 20


def _serve_chain(server: HostileRegistry, levels: int, fan_out: int) -> str:
    """Indexes `levels` deep, each listing the next one `fan_out` times; the last one is empty."""
    document = _index([])
    for _ in range(levels):
        server.serve_manifest("app", _sha256(document), document, mt.OCI_INDEX)
        document = _index([(_sha256(document), len(document))] * fan_out)
    server.serve_manifest("app", "v1", document, mt.OCI_INDEX)
    return "app:v1"


def _looping_pages(server: HostileRegistry) -> str:
    link = '</v2/app/tags/list?n=1000&last=a>; rel="next"'
    server.on("GET", "/v2/app/tags/list", Reply(body=b'{"tags":["a"]}', headers={**OCI_JSON, "Link": link}))
    return "app"


TRICKLED = b'{"schemaVersion":2,"mediaType":"' + mt.OCI_INDEX.encode() + b'","manifests":[]}'
LAYER = b"z" * 4096
CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()


def _trickled_manifest(server: HostileRegistry) -> str:
    server.serve_manifest("app", "v1", TRICKLED, mt.OCI_INDEX)
    server.on("GET", "/v2/app/manifests/v1", Reply(body=trickle(TRICKLED), length=len(TRICKLED), delay=0.5))
    return "app:v1"


def _trickled_headers(server: HostileRegistry) -> str:
    server.on("GET", "/v2/app/tags/list", Reply(body=b'{"tags":[]}', header_delay=0.2))
    return "app"


def _image(server: HostileRegistry, layer: Reply, data: bytes = LAYER) -> str:
    """An image whose one layer (`data`) is answered by `layer`."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": _sha256(CONFIG), "size": len(CONFIG)},
            "layers": [{"mediaType": mt.OCI_LAYER, "digest": _sha256(data), "size": len(data)}],
        }
    ).encode()
    server.serve_manifest("app", "v1", manifest, mt.OCI_MANIFEST)
    server.on("GET", f"/v2/app/blobs/{_sha256(CONFIG)}", Reply(body=CONFIG))
    server.on("GET", f"/v2/app/blobs/{_sha256(data)}", layer)
    return "app:v1"


def _sent_part_of(size: int) -> Callable[[HostileRegistry], bool]:
    return lambda s: 0 < s.body_bytes_sent < size


def _flood(
    method: str, path: str, status: int = 200, headers: dict[str, str] | None = None
) -> Callable[[HostileRegistry], str]:
    """An answer that never ends (no Content-Length): the client must stop reading at its limit."""

    def setup(server: HostileRegistry) -> str:
        server.on(method, path, Reply(status, endless(), headers or {}))
        return "app"

    return setup


def _flooded_token(server: HostileRegistry) -> str:
    challenge = f'Bearer realm="{server.url}/token",service="x"'
    server.on("GET", "/v2/app/tags/list", Reply(401, b"{}", {"WWW-Authenticate": challenge}))
    server.on("GET", "/token", Reply(200, endless()))
    return "app"


def _read_about(limit: int) -> Callable[[HostileRegistry], bool]:
    """The server sent more than `limit`, and the client stopped soon after (socket buffers aside)."""
    return lambda s: limit < s.body_bytes_sent < limit + 48 * MiB


CASES = [
    Case(
        "sha512-pinned-manifest-forged",
        _sha512_pinned,
        lambda ref, tmp, opts: api.fetch_manifest(ref, options=opts),
        DigestMismatchError,
        "hashes to sha512:",
        lambda s: s.count("GET", "/v2/app/manifests/sha512:") == 1,
    ),
    Case(
        "sha512-index-child-forged",
        _sha512_child,
        lambda ref, tmp, opts: api.copy(ref, f"oci:{tmp / 'out'}", options=opts),
        DigestMismatchError,
        "hashes to sha512:",
        lambda s: s.count("GET", "/v2/app/manifests/sha512:") == 1,
    ),
    Case(
        "endless-manifest",
        _flood("GET", "/v2/app/manifests/v1", headers={"Content-Type": mt.OCI_INDEX}),
        lambda ref, tmp, opts: api.fetch_manifest(f"{ref}:v1", options=opts),
        RegistryError,
        "larger than 4 MiB",
        _read_about(4 * MiB),
    ),
    Case(
        "endless-tag-page",
        _flood("GET", "/v2/app/tags/list"),
        lambda ref, tmp, opts: api.list_tags(ref, options=opts),
        RegistryError,
        "larger than 16 MiB",
        _read_about(16 * MiB),
    ),
    Case(
        "endless-catalog-page",
        _flood("GET", "/v2/_catalog"),
        lambda ref, tmp, opts: api.catalog(ref.split("/")[0], options=opts),
        RegistryError,
        "larger than 16 MiB",
        _read_about(16 * MiB),
    ),
    Case(
        "endless-error-body",
        _flood("GET", "/v2/app/tags/list", status=400),
        lambda ref, tmp, opts: api.list_tags(ref, options=opts),
        RegistryError,
        "HTTP 400",
        _read_about(0),
    ),
    Case(
        "endless-token",
        _flooded_token,
        lambda ref, tmp, opts: api.list_tags(ref, options=opts),
        RegistryError,
        "larger than 1 MiB",
        _read_about(1 * MiB),
    ),
    Case(
        "nested-indexes-1500-deep",
        lambda server: _serve_chain(server, 1500, 1),
        lambda ref, tmp, opts: api.copy(ref, f"oci:{tmp / 'out'}", options=opts),
        RegistryError,
        "nested more than 16 deep",
        lambda s: s.count("GET", "/v2/app/manifests/") == 17,
    ),
    Case(
        "nested-indexes-1500-deep-platform",
        lambda server: _serve_chain(server, 1500, 1),
        lambda ref, tmp, opts: api.inspect(ref, platform="linux/amd64", options=opts),
        RegistryError,
        "nested more than 16 deep",
        lambda s: s.count("GET", "/v2/app/manifests/") == 17,
    ),
    Case(
        "fan-out-2x10-fetched-once-each",
        lambda server: _serve_chain(server, 10, 2),
        lambda ref, tmp, opts: api.copy(ref, f"oci:{tmp / 'out'}", options=opts),
        None,
        "",
        lambda s: s.count("GET", "/v2/app/manifests/") == 11,
    ),
    Case(
        "fan-out-2x10-platform-search",
        lambda server: _serve_chain(server, 10, 2),
        lambda ref, tmp, opts: api.inspect(ref, platform="linux/amd64", options=opts),
        NotFoundError,
        "no image for platform",
        lambda s: s.count("GET", "/v2/app/manifests/") == 11,
    ),
    Case(
        "tag-pages-loop",
        _looping_pages,
        lambda ref, tmp, opts: api.list_tags(ref, options=opts),
        RegistryError,
        "pages do not end",
        lambda s: s.count("GET", "/v2/app/tags/list") == 2,
    ),
    Case(
        "trickled-manifest",
        _trickled_manifest,
        lambda ref, tmp, opts: api.fetch_manifest(ref, options=opts),
        TransportError,
        "no complete answer within the deadline",
        _sent_part_of(len(TRICKLED)),
        {"deadline": 2.0},
    ),
    Case(
        "trickled-headers",
        _trickled_headers,
        lambda ref, tmp, opts: api.list_tags(ref, options=opts),
        TransportError,
        "no complete answer within the deadline",
        lambda s: 0 < s.trickled_header_bytes < 60,
        {"deadline": 2.0},
    ),
    Case(
        "trickled-blob",
        lambda server: _image(server, Reply(body=trickle(LAYER), length=len(LAYER), delay=0.5)),
        lambda ref, tmp, opts: api.copy(ref, f"oci:{tmp / 'out'}", options=opts),
        TransportError,
        "no complete answer within the deadline",
        _sent_part_of(2 * len(LAYER)),
        {"deadline": 2.0},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_registry(case: Case, tmp_path: Path) -> None:
    with HostileRegistry() as server:
        assert isinstance(server, HostileRegistry)
        reference = case.setup(server)
        settings: dict[str, object] = {"max_attempts": 2, "max_retry_seconds": 5, **case.options}
        options = RegistryOptions(cache_dir=str(tmp_path / "cache"), **settings)  # type: ignore[arg-type]
        if case.raises is None:
            case.act(f"{server.host}/{reference}", tmp_path, options)
        else:
            with pytest.raises(case.raises, match=case.match) as caught:
                case.act(f"{server.host}/{reference}", tmp_path, options)
            assert "\n" not in str(caught.value)
        assert case.fired(server), f"the hostile answer of {case.name} was never given"


EVIL = "ok\x1b[2J\x1b]0;owned\x07\nocipush: error: fake line\u202e"
TERMINAL_CASES = {
    "tags": (("GET", "/v2/app/tags/list"), Reply(body=json.dumps({"tags": ["v1", EVIL]}).encode(), headers=OCI_JSON)),
    "catalog": (("GET", "/v2/_catalog"), Reply(body=json.dumps({"repositories": [EVIL]}).encode(), headers=OCI_JSON)),
    "error": (
        ("GET", "/v2/app/tags/list"),
        Reply(400, json.dumps({"errors": [{"code": "DENIED", "message": EVIL}]}).encode(), OCI_JSON),
    ),
}


@pytest.mark.parametrize("kind", TERMINAL_CASES)
def test_cli_escapes_control_characters_from_a_server(kind: str) -> None:
    (method, path), reply = TERMINAL_CASES[kind]
    with HostileRegistry() as server:
        assert isinstance(server, HostileRegistry)
        server.on(method, path, reply)
        done = run_cli(
            "catalog" if kind == "catalog" else "tags", server.host if kind == "catalog" else f"{server.host}/app"
        )
        assert server.count(method, path) >= 1
    output = done.stdout + done.stderr
    assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output
    assert "\\x1b[2J" in output  # shown, escaped
    assert "\nocipush: error: fake line" not in output
    if kind == "error":
        assert_one_line_error(done, "\\x0aocipush: error: fake line")


def test_a_slow_but_moving_blob_outlives_the_deadline(tmp_path: Path) -> None:
    # 3 MiB in 256 KiB pieces every 0.5 s: 6 s in all, but each MiB within 2 s of the 4 s deadline.
    data = bytes(range(256)) * (3 * MiB // 256)
    pieces = Reply(body=lambda: (data[i : i + MiB // 4] for i in range(0, len(data), MiB // 4)), delay=0.5)
    pieces.length = len(data)
    with HostileRegistry() as server:
        assert isinstance(server, HostileRegistry)
        reference = _image(server, pieces, data)
        done = run_cli("pull", f"{server.host}/{reference}", f"oci:{tmp_path / 'out'}", "--deadline", "4")
        assert done.returncode == 0, done.stderr
        assert server.body_bytes_sent >= len(data)
    assert (tmp_path / "out" / "blobs" / "sha256" / _sha256(data).split(":")[1]).read_bytes() == data


def test_the_deadline_comes_from_the_environment_too(tmp_path: Path) -> None:
    with HostileRegistry() as server:
        assert isinstance(server, HostileRegistry)
        reference = _trickled_manifest(server)
        done = run_cli("inspect", "--raw", f"{server.host}/{reference}", env={"OCIPUSH_DEADLINE": "1.5"})
        assert done.returncode == 6
        assert_one_line_error(done, "no complete answer within the deadline")
        assert _sent_part_of(len(TRICKLED))(server)
    bad = run_cli("tags", "127.0.0.1:9/app", env={"OCIPUSH_DEADLINE": "soon"})
    assert bad.returncode == 2
    assert_one_line_error(bad, "OCIPUSH_DEADLINE 'soon'")


def test_a_trickled_base_layer_ends_at_the_deadline() -> None:
    # A build reads its base's layers from the registry through `layer_opener`: those reads are paced too.
    from ocipush.build.base import BaseImage
    from ocipush.build.base_index import layer_opener
    from ocipush.models import Descriptor, Platform
    from ocipush.registry.session import RegistrySession
    from ocipush.registry.wire import Timeout

    data = b"z" * 40  # 8 s at one byte per 0.2 s: far past the 1 s deadline, far below the per-read timeout
    with HostileRegistry() as server:
        assert isinstance(server, HostileRegistry)
        reference = _image(server, Reply(body=trickle(data), length=len(data), delay=0.2), data)
        base = BaseImage(Platform(architecture="amd64", os="linux"), name=f"{server.host}/{reference}")
        session = RegistrySession(RegistryOptions(deadline=1.0))
        layer = Descriptor(media_type=mt.OCI_LAYER, digest=_sha256(data), size=len(data))
        opened = layer_opener(base, lambda: session)(layer)
        with pytest.raises(Timeout, match="no complete answer within the deadline"), opened as reader:
            while reader.read(1 << 20):
                pass
        assert _sent_part_of(len(data))(server)


def test_a_base_layer_read_in_part_leaves_no_deadline_behind() -> None:
    # tar readers stop at the archive's end and leave the padding unread: the paced read must end with the layer
    from ocipush.build.base import BaseImage
    from ocipush.build.base_index import layer_opener
    from ocipush.models import Descriptor, Platform
    from ocipush.registry import deadline
    from ocipush.registry.session import RegistrySession

    with HostileRegistry() as server:
        assert isinstance(server, HostileRegistry)
        reference = _image(server, Reply(body=LAYER))
        base = BaseImage(Platform(architecture="amd64", os="linux"), name=f"{server.host}/{reference}")
        session = RegistrySession(RegistryOptions(deadline=30.0))
        layer = Descriptor(media_type=mt.OCI_LAYER, digest=_sha256(LAYER), size=len(LAYER))
        with layer_opener(base, lambda: session)(layer) as reader:
            assert reader.read(10) == LAYER[:10]
            assert deadline.read_timeout(60.0) <= 30.0  # the paced read's deadline holds while reading
        assert deadline.read_timeout(60.0) == 60.0  # and is gone with the layer, though `reader` lives on
        assert server.count("GET", f"/v2/app/blobs/{_sha256(LAYER)}") == 1
