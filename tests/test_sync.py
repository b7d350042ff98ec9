"""`ocipush sync` against real registries: a source of 20 repositories x 5 tags (single images and two-platform
indexes) and two destinations, each a distribution registry of its own. Requests are counted from the
registries' own access logs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import synchelpers as sh
from transferhelpers import assert_one_line_error, options, run_cli

from ocipush import api
from ocipush.localregistry import LocalRegistry
from ocipush.sync.spec import parse_spec


@pytest.fixture(scope="module")
def source_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    work = tmp_path_factory.mktemp("sync-source")
    with LocalRegistry(storage_dir=work / "storage", log_path=work / "registry.log") as running:
        yield running


@pytest.fixture(scope="module")
def source(source_registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> sh.Source:
    """Read-only for the tests of this module: built and pushed once."""
    return sh.populate(source_registry.host, tmp_path_factory.mktemp("sync-layout"))


@pytest.fixture
def second(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A second destination registry."""
    with LocalRegistry(storage_dir=tmp_path / "storage2", log_path=tmp_path / "registry2.log") as running:
        yield running


def _digest(reference: str, tmp_path: Path) -> str | None:
    try:
        return api.resolve_digest(reference, options=options(tmp_path))
    except Exception:
        return None


def test_source_has_twenty_repositories_of_five_tags(source: sh.Source) -> None:
    assert len({repo for repo, _ in source.digests}) == 20 and len(source.digests) == 100
    assert source.digests["lib/r00", "latest"] == source.digests["lib/r00", "2.0.0"]


def test_sync_file_two_destinations_templates_filters_then_second_run_is_free(
    source: sh.Source, registry: LocalRegistry, second: LocalRegistry, tmp_path: Path
) -> None:
    spec = parse_spec(
        {
            "sources": [
                {
                    "registry": source.host,
                    "catalog": {"include": ["^lib/"], "exclude": ["r1[2-5]$"]},
                    "tags": {"semver": ">=1.1", "exclude": ["^1\\.2"]},
                }
            ],
            "destinations": [
                {"registry": registry.host, "prefix": "mirror/", "strip": "lib/"},
                {"registry": second.host, "template": "copies/{name}-x"},
            ],
        }
    )
    report = api_sync(spec, tmp_path)
    repos = [f"lib/r{i:02}" for i in range(12)]  # r12..r15 excluded, tools/ not included
    assert report.ok and not report.skipped
    assert len(report.copied) == len(repos) * 2 * 2  # two images (1.1.0, 2.0.0) x two destinations
    for repo in repos:
        for tag in ("1.1.0", "2.0.0"):
            want = source.digests[repo, tag]
            assert _digest(f"{registry.host}/mirror/{repo[4:]}:{tag}", tmp_path) == want
            assert _digest(f"{second.host}/copies/{repo[4:]}-x:{tag}", tmp_path) == want
        for tag in ("1.0.0", "1.2.0", "latest"):
            assert _digest(f"{registry.host}/mirror/{repo[4:]}:{tag}", tmp_path) is None
    assert api.catalog(registry.host, options=options(tmp_path)) == sorted(f"mirror/r{i:02}" for i in range(12))
    # The base layer all images share went up once per image copied at once (4 start together); the other
    # repositories mounted it from one that had it.
    base = api.fetch_manifest(f"{source.host}/lib/r01:1.1.0", options=options(tmp_path)).manifest.layers[0].digest
    log, pattern = registry.log_path.read_text(), base.replace(":", "(?::|%3A)")
    uploads = len(re.findall(rf'"PUT /v2/\S+/blobs/uploads/\S*digest={pattern}', log))
    mounts = len(re.findall(rf'"POST /v2/\S+/blobs/uploads/\?\S*mount={pattern}\S* HTTP/1.1" 201', log))
    assert 1 <= uploads <= 4 and uploads + mounts == len(repos), (uploads, mounts)

    # The second run: one HEAD per tag at each destination, nothing else there; nothing read but HEADs and lists.
    marks = {r.host: r.log_path.stat().st_size for r in (registry, second)}
    again = api_sync(spec, tmp_path)
    assert again.ok and not again.copied and len(again.skipped) == len(repos) * 2 * 2
    for destination in (registry, second):
        counts = sh.requests(destination.log_path, marks[destination.host])
        # (and the client's `GET /v2/` asking whether the loopback registry speaks plain HTTP)
        assert counts == {("HEAD", "manifests"): len(repos) * 2, ("GET", "other"): 1}, counts


# Run the CLI in a fresh interpreter and print, after its own output, every module it loaded.
LOADED_PROBE = "\n".join(
    ["import sys", "from ocipush.cli import main", "code = main(sys.argv[1:])", "print(*sorted(sys.modules))",
     "sys.exit(code)"]
)  # fmt: skip
# What a sync that finds nothing to copy has no use for: pydantic (the spec is dataclasses; the models are for
# filtering platforms and copying), PyYAML (the file below is JSON), the copy machinery, Dask, the AWS SDK and
# httpx (the registry client speaks HTTP itself; the tests use httpx as an independent client).
NOT_FOR_A_WARM_SYNC = {"pydantic", "yaml", "ocipush.models", "ocipush.transfer", "ocipush.sync.copier",
                       "ocipush.sync.executors", "dask", "distributed", "boto3", "botocore", "httpx"}  # fmt: skip


def test_warm_sync_loads_nothing_it_does_not_use_and_sends_one_head_per_tag(
    source: sh.Source, source_registry: LocalRegistry, registry: LocalRegistry, tmp_path: Path
) -> None:
    """A warm sync's start-up is much of its cost (benchmark SY2): the process must not load what only copying,
    pydantic or YAML needs. At the source: one tag list per repository and one HEAD per tag; at the destination:
    one HEAD per tag; nothing else but the loopback scheme probe (`GET /v2/`) at each."""
    import subprocess
    import sys

    from transferhelpers import log_between, log_mark

    repos = ["tools/t00", "tools/t01"]
    config = tmp_path / "sync.json"
    config.write_text(json.dumps({"sources": [{"registry": source.host, "repositories": repos}],
                                  "destinations": [{"registry": registry.host, "prefix": "m/"}]}))  # fmt: skip
    argv = ["sync", "-f", str(config), "--cache-dir", str(tmp_path / "cache")]
    first = run_cli(*argv)
    assert first.returncode == 0 and first.stdout.startswith("sync: 8 copied, 0 skipped, 0 failed"), first.stderr
    marks = {r.host: log_mark(r) for r in (source_registry, registry)}
    done = subprocess.run([sys.executable, "-c", LOADED_PROBE, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary, loaded = done.stdout.splitlines()
    assert summary.startswith("sync: 0 copied, 8 skipped, 0 failed")
    assert "ocipush.sync.planner" in loaded.split()  # the probe saw the sync's own modules
    assert NOT_FOR_A_WARM_SYNC.isdisjoint(loaded.split()), NOT_FOR_A_WARM_SYNC.intersection(loaded.split())
    seen = {r.host: sh.request_counts("\n".join(log_between(r, marks[r.host], log_mark(r))))
            for r in (source_registry, registry)}  # fmt: skip
    tags = len(repos) * len(sh.TAGS)
    assert seen[source.host] == {("GET", "tags"): len(repos), ("HEAD", "manifests"): tags, ("GET", "other"): 1}
    assert seen[registry.host] == {("HEAD", "manifests"): tags, ("GET", "other"): 1}


def api_sync(spec: object, tmp_path: Path, **kwargs: object) -> object:
    import ocipush

    return ocipush.sync(spec, options=options(tmp_path), **kwargs)  # type: ignore[arg-type]


def test_dry_run_prints_the_plan_and_copies_nothing(source: sh.Source, registry: LocalRegistry, tmp_path: Path) -> None:
    done = run_cli(
        "sync", f"{source.host}/tools/t01", f"{registry.host}/t01", "--all-tags", "--dry-run", "--json",
        "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # 5 tags, 4 images: `latest` rides along with 2.0.0
    assert report["summary"] == {"copied": 0, "skipped": 0, "failed": 0, "planned": 4}
    tags = sorted(tag for item in report["planned"] for tag in item["tags"])
    assert tags == sorted(sh.TAGS)
    assert sh.requests(registry.log_path)[("PUT", "manifests")] == 0
    assert api.catalog(registry.host, options=options(tmp_path)) == []


def test_one_off_newest_by_semver_with_a_platform_filter(
    source: sh.Source, registry: LocalRegistry, tmp_path: Path
) -> None:
    done = run_cli(
        "sync", f"{source.host}/lib/r04", f"{registry.host}/arm/r04", "--all-tags", "--newest", "2",
        "--platform", "linux/arm64", "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(api.list_tags(f"{registry.host}/arm/r04", options=options(tmp_path))) == ["1.2.0", "2.0.0"]
    for tag in ("1.2.0", "2.0.0"):
        copied = api.fetch_manifest(f"{registry.host}/arm/r04:{tag}", options=options(tmp_path))
        original = api.fetch_manifest(f"{source.host}/lib/r04:{tag}", options=options(tmp_path))
        # a new index with only the arm64 child, which is the source's own arm64 manifest
        assert [str(c.platform) for c in copied.index.manifests] == ["linux/arm64"]
        assert copied.index.manifests[0] in original.index.manifests and copied.digest != original.digest
    # a second run compares against the filtered index and copies nothing
    again = run_cli(
        "sync", f"{source.host}/lib/r04", f"{registry.host}/arm/r04", "--all-tags", "--newest", "2",
        "--platform", "linux/arm64", "--json", "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert json.loads(again.stdout)["summary"] == {"copied": 0, "skipped": 2, "failed": 0}


def test_newest_by_push_time_reads_the_config_created(
    source: sh.Source, registry: LocalRegistry, tmp_path: Path
) -> None:
    spec = {
        "sources": [{"registry": source.host, "repositories": ["lib/r03"],
                     "tags": {"newest": 2, "newest-by": "pushed", "exclude": ["^2"]}}],
        "destinations": [{"registry": registry.host}],
    }  # fmt: skip
    report = api_sync(parse_spec(spec), tmp_path)
    # 2.0.0 is excluded; `latest` shares its created time and is the newest left, with 1.2.0 next
    assert sorted(t for r in report.copied for t in r.tags) == ["1.2.0", "latest"]  # type: ignore[attr-defined]


def test_digest_pins(source: sh.Source, registry: LocalRegistry, tmp_path: Path) -> None:
    old = source.digests["lib/r01", "1.0.0"]
    pinned = source.digests["lib/r01", "1.1.0"]
    spec = {
        "sources": [{"registry": source.host, "images": {"lib/r01": [old, f"stable@{pinned}"]}}],
        "destinations": [{"registry": registry.host}],
    }
    report = api_sync(parse_spec(spec), tmp_path)
    assert report.ok and len(report.copied) == 2  # type: ignore[attr-defined]
    assert _digest(f"{registry.host}/lib/r01@{old}", tmp_path) == old
    assert _digest(f"{registry.host}/lib/r01:stable", tmp_path) == pinned
    assert api.list_tags(f"{registry.host}/lib/r01", options=options(tmp_path)) == ["stable"]


def test_skopeo_sync_file_with_a_destination_flag(source: sh.Source, registry: LocalRegistry, tmp_path: Path) -> None:
    config = tmp_path / "skopeo.yaml"
    config.write_text(
        f"{source.host}:\n"
        "  images:\n"
        "    tools/t02: ['1.0.0']\n"
        "  images-by-tag-regex:\n"
        "    tools/t03: ^1\\.[01]\\.\n"
        "  images-by-semver:\n"
        "    lib/r05: '>= 2.0.0'\n"
    )
    done = run_cli("sync", "-f", str(config), "--dest", f"{registry.host}/hub", "--json",
                   "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    copied = {(r["target"], tuple(r["tags"])) for r in json.loads(done.stdout)["copied"]}
    assert copied == {
        (f"{registry.host}/hub/tools/t02", ("1.0.0",)),
        (f"{registry.host}/hub/tools/t03", ("1.0.0",)),
        (f"{registry.host}/hub/tools/t03", ("1.1.0",)),
        (f"{registry.host}/hub/lib/r05", ("2.0.0",)),
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sources: []\ndestinations: [{registry: x}]\n", "sources"),
        ("sources: [{registry: a, catalog: true, tags: {semver: '>>1'}}]\ndestinations: [{registry: b}]\n", "semver"),
        ("sources: [{registry: a, catalog: true, tags: {include: ['(']}}]\ndestinations: [{registry: b}]\n", "regular"),
        ("sources: [{registry: a, catalog: true}]\ndestinations: [{registry: b, template: '{nope}'}]\n", "template"),
        ("sources: [{registry: a, catalog: true}]\ndestinations: [{registry: b, create-repo: true}]\n", "only for"),
        ("sources: [{registry: a}]\ndestinations: [{registry: b}]\n", "names no repositories"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_sync_files_are_one_line_errors(text: str, fragment: str, tmp_path: Path) -> None:
    from transferhelpers import assert_one_line_error

    config = tmp_path / "bad.yaml"
    config.write_text(text)
    done = run_cli("sync", "-f", str(config), "--cache-dir", str(tmp_path / "cache"))
    assert_one_line_error(done, fragment)
    assert done.returncode == 2


def _catalog_spec(path: Path, source: sh.Source, destination: str) -> Path:
    path.write_text(
        f"sources:\n  - registry: {source.host}\n    catalog: true\ndestinations:\n  - registry: {destination}\n"
    )
    return path


def _assert_mirrored(source: sh.Source, host: str, tmp_path: Path) -> None:
    for (repository, tag), digest in source.digests.items():
        assert _digest(f"{host}/{repository}:{tag}", tmp_path) == digest, (repository, tag)


def test_killed_sync_resumes_and_copies_no_finished_image_twice(
    source: sh.Source, registry: LocalRegistry, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    config = _catalog_spec(tmp_path / "sync.yaml", source, registry.host)
    argv = [sys.executable, "-m", "ocipush.cli", "sync", "-f", str(config), "--workers", "2",
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert process.stderr is not None
    copied_before = 0
    for line in process.stderr:
        copied_before += line.startswith("copied")
        if copied_before == 15:
            process.send_signal(signal.SIGKILL)
            break
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert copied_before == 15  # the kill came in the middle: 80 images were to be copied

    done = run_cli("sync", "-f", str(config), "--workers", "2", "--json", "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["summary"]["skipped"] >= 15 and report["summary"]["failed"] == 0
    assert report["summary"]["copied"] + report["summary"]["skipped"] == 80  # 4 images in each of 20 repositories
    _assert_mirrored(source, registry.host, tmp_path)

    # Every manifest and blob went up once, except in the (at most 2) repositories whose image was in flight.
    twice = [path for path, n in sh.manifest_puts(registry.log_path).items() if n > 1]
    log = registry.log_path.read_text()
    blob_puts = re.findall(r'"PUT /v2/(\S+)/blobs/uploads/\S*digest=(sha256(?:%3A|:)[0-9a-f]{64})', log)
    blobs_twice = [repo for repo, n in {(r, d): blob_puts.count((r, d)) for r, d in blob_puts}.items() if n > 1]
    in_flight = {path.split("/manifests/")[0] for path in twice} | {f"/v2/{repo}" for repo, _ in blobs_twice}
    assert len(in_flight) <= 2, (twice, blobs_twice)


def _quota_proxy(fault_proxy: object, source: sh.Source, window: int, path: str, times: int | None) -> tuple:
    """A proxy before the source whose manifest HEADs (matching `path`) answer, for tools/t01:1.0.0, with Docker
    Hub's quota headers (3 pulls left of 100 per `window` seconds): no local registry sends them."""
    from support.proxy import Respond

    proxy = fault_proxy(f"http://{source.host}")  # type: ignore[operator]
    headers = (
        ("Docker-Content-Digest", source.digests["tools/t01", "1.0.0"]),
        ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
        ("ratelimit-limit", f"100;w={window}"),
        ("ratelimit-remaining", f"3;w={window}"),
    )
    return proxy, proxy.add_fault("HEAD", path, Respond(200, b"", headers), times=times)


def test_rate_limit_floor_stops_the_sync(
    source: sh.Source, registry: LocalRegistry, fault_proxy: object, tmp_path: Path
) -> None:
    proxy, fault = _quota_proxy(fault_proxy, source, 21600, r"/manifests/", None)
    done = run_cli(
        "sync", f"{proxy.host}/tools/t01", f"{registry.host}/t01", "--all-tags", "--rate-limit-floor", "5",
        "--on-rate-limit", "stop", "--keep-going", "--json", "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    # The first answer tells the quota; HEADs sent alongside it are free on Docker Hub. No pull (GET) is spent:
    # every tag fails, at planning or before its copy, with the quota in the message (the proxy's answers give
    # every tag one digest, so the tags resolved before the quota was known make one image).
    assert fault.applied >= 1
    assert proxy.stats.requests[("GET", "manifest")] == 0 and proxy.stats.requests[("GET", "blob")] == 0
    assert done.returncode == 12, done.stderr
    report = json.loads(done.stdout)
    assert report["summary"]["copied"] == 0 and report["failed"]
    assert all("3 pulls left (floor 5)" in f["error"] for f in report["failed"])
    assert sorted(t for f in report["failed"] for t in f["tags"] or [f["source"].rpartition(":")[2]]) == sorted(sh.TAGS)
    assert api.catalog(registry.host, options=options(tmp_path)) == []


def test_create_repo_on_ecr_with_repository_settings(
    source: sh.Source, ecr_registry: object, fault_proxy: object, tmp_path: Path
) -> None:
    """The ECR flow of tests/test_ecr_flow.py: moto's token opens a real registry; the proxy says NAME_UNKNOWN the
    way ECR does for a repository that does not exist (a distribution registry creates repositories on push)."""
    import boto3
    from support.proxy import Respond

    ecr_host = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    proxy = fault_proxy(ecr_registry.url, ecr=True)  # type: ignore[attr-defined,operator]
    body = b'{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name \'mirror/t02\' does not exist"}]}'
    fault = proxy.add_fault("POST", r"/blobs/uploads/", Respond(404, body, (("Content-Type", "application/json"),)))
    done = run_cli(
        "sync", f"{source.host}/tools/t02", f"{ecr_host}/mirror/t02", "--all-tags", "--create-repo",
        "--scan-on-push", "--image-tag-mutability", "IMMUTABLE", "--endpoint", f"{ecr_host}={proxy.url}",
        "--workers", "2", "--json", "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert fault.applied == 1
    assert json.loads(done.stdout)["summary"] == {"copied": 4, "skipped": 0, "failed": 0}
    described = boto3.client("ecr", region_name="us-east-1").describe_repositories(repositoryNames=["mirror/t02"])
    repository = described["repositories"][0]
    assert repository["imageScanningConfiguration"]["scanOnPush"] is True
    assert repository["imageTagMutability"] == "IMMUTABLE"
    opts = options(tmp_path, endpoints={ecr_host: proxy.url})
    for tag, digest in source.tags_of("tools/t02").items():
        assert api.resolve_digest(f"{ecr_host}/mirror/t02:{tag}", options=opts) == digest


def test_dask_local_cluster_survives_a_killed_worker(
    source: sh.Source, registry: LocalRegistry, tmp_path: Path
) -> None:
    import os
    import signal

    from distributed import Client, LocalCluster

    import ocipush
    from ocipush.sync.report import SyncEvent

    spec = parse_spec(
        {"sources": [{"registry": source.host, "catalog": True}], "destinations": [{"registry": registry.host}]}
    )
    killed: list[int] = []
    copied_after_kill = 0
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None) as cluster, Client(
        cluster
    ) as client:
        pids = client.run(os.getpid)

        def on_event(event: SyncEvent) -> None:
            nonlocal copied_after_kill
            if event.kind != "copied":
                return
            copied_after_kill += bool(killed)
            if not killed and event.kind == "copied":
                victim = sorted(pids.values())[0]
                os.kill(victim, signal.SIGKILL)  # a worker process dies in the middle of the run
                killed.append(victim)

        report = ocipush.sync(
            spec, options=options(tmp_path), executor="dask", scheduler=cluster.scheduler_address, on_event=on_event
        )
        survivors = client.run(os.getpid)
    # the kill came with at least a quarter of the images still to copy (how many finished before the client saw the
    # first one depends on the machine's load: a fixed 60 of 80 made the test flaky once the copies got faster)
    assert killed and killed[0] not in survivors.values() and copied_after_kill >= 20
    assert report.ok and len(report.copied) == 80, report.failed
    # every tag names the source's digest, and a manifest digest is the hash of its exact bytes: byte-identical
    _assert_mirrored(source, registry.host, tmp_path)


def test_cli_dask_executor_starts_its_own_local_cluster(
    source: sh.Source, registry: LocalRegistry, tmp_path: Path
) -> None:
    done = run_cli(
        "sync", f"{source.host}/tools/t03", f"{registry.host}/t03", "--all-tags", "--executor", "dask",
        "--workers", "1", "--json", "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"] == {"copied": 4, "skipped": 0, "failed": 0}
    for tag, digest in source.tags_of("tools/t03").items():
        assert _digest(f"{registry.host}/t03:{tag}", tmp_path) == digest


def test_dask_executor_without_dask_installed_is_a_one_line_error_before_any_request(tmp_path: Path) -> None:
    """Dask is an optional extra. The development venv has it, so the child process hides it (a None entry in
    sys.modules is how Python marks a module as unavailable); the registries are a closed port, which a request
    would have turned into a transport error."""
    spec = {"sources": [{"registry": "127.0.0.1:9", "images": {"a": ["1"]}}],
            "destinations": [{"registry": "127.0.0.1:9"}]}  # fmt: skip
    config = tmp_path / "sync.yaml"
    config.write_text(json.dumps(spec))
    hide = "import sys; sys.modules['distributed'] = None; from ocipush.cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", hide, "sync", "-f", str(config), "--executor", "dask"],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert_one_line_error(done, "pip install 'ocipush[dask]'")


@pytest.mark.parametrize(("refusals", "copied"), [(1, True), (None, False)])
def test_a_manifest_refused_as_digest_invalid_is_put_again(
    source: sh.Source, registry: LocalRegistry, fault_proxy: object, tmp_path: Path, refusals: int | None,
    copied: bool,
) -> None:
    """The distribution registry answers DIGEST_INVALID to a manifest PUT that reads a blob link another process is
    rewriting; the race is rare and timing-bound, so the proxy answers it instead: once (the next PUT goes through)
    or every time (the image fails after LINK_RACE_TRIES)."""
    from support.proxy import Respond

    from ocipush.sync.copier import LINK_RACE_TRIES

    proxy = fault_proxy(f"http://{registry.host}")  # type: ignore[operator]
    body = b'{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}'
    refusal = Respond(400, body, (("Content-Type", "application/json"),))
    fault = proxy.add_fault("PUT", r"/manifests/", refusal, times=refusals)
    spec = {"sources": [{"registry": source.host, "images": {"tools/t00": ["1.0.0"]}}],
            "destinations": [{"registry": proxy.host}]}  # fmt: skip
    report = api_sync(parse_spec(spec), tmp_path, keep_going=True)
    assert fault.applied == (1 if copied else LINK_RACE_TRIES)
    assert report.ok is copied  # type: ignore[attr-defined]
    expected = source.digests["tools/t00", "1.0.0"] if copied else None
    assert _digest(f"{registry.host}/tools/t00:1.0.0", tmp_path) == expected
    if not copied:
        assert "DIGEST_INVALID" in report.failed[0].error  # type: ignore[attr-defined]


def test_keep_going_copies_the_rest_and_says_what_failed(
    source: sh.Source, registry: LocalRegistry, tmp_path: Path
) -> None:
    spec = {
        "sources": [{"registry": source.host, "images": {"no/such": ["1.0.0"], "tools/t00": ["1.0.0", "2.0.0"]}}],
        "destinations": [{"registry": registry.host}],
    }
    config = tmp_path / "sync.yaml"
    config.write_text(json.dumps(spec))  # JSON is YAML too
    stopped = run_cli("sync", "-f", str(config), "--json", "--cache-dir", str(tmp_path / "cache"))
    assert stopped.returncode == 12
    assert json.loads(stopped.stdout)["summary"] == {"copied": 0, "skipped": 0, "failed": 1, "not_run": 2}
    kept = run_cli("sync", "-f", str(config), "--keep-going", "--cache-dir", str(tmp_path / "cache"))
    assert kept.returncode == 12
    assert "failed   " in kept.stderr and "no/such" in kept.stderr
    assert kept.stdout.startswith("sync: 2 copied, 0 skipped, 1 failed")
    assert _digest(f"{registry.host}/tools/t00:2.0.0", tmp_path) == source.digests["tools/t00", "2.0.0"]


def test_rate_limit_floor_pauses_then_goes_on(
    source: sh.Source, registry: LocalRegistry, fault_proxy: object, tmp_path: Path
) -> None:
    import ocipush
    from ocipush.sync.report import SyncEvent

    # a 1-second window refills fast: the pause is short
    proxy, fault = _quota_proxy(fault_proxy, source, 1, r"/manifests/1\.0\.0$", 1)
    digest = source.digests["tools/t01", "1.0.0"]
    spec = parse_spec({
        "sources": [{"registry": proxy.host, "images": {"tools/t01": ["1.0.0", "1.1.0"]}}],
        "destinations": [{"registry": registry.host}],
        "rate-limits": {"floor": 5, "action": "pause"},
    })  # fmt: skip
    events: list[SyncEvent] = []
    report = ocipush.sync(spec, options=options(tmp_path), on_event=events.append, workers=1)
    assert fault.applied == 1
    pauses = [e.message for e in events if e.kind == "info" and "pausing" in e.message]
    assert pauses and "3 pulls left (floor 5)" in pauses[0]
    assert report.ok and len(report.copied) == 2
    assert _digest(f"{registry.host}/tools/t01:1.0.0", tmp_path) == digest


def test_newest_by_push_time_on_ecr_reads_image_pushed_at(aws_env: dict[str, str]) -> None:
    """On an ECR source the push time is ECR's own imagePushedAt (real boto3 against moto's DescribeImages)."""
    import boto3
    from ecr_conftest_helpers import push_fake_image, unique

    from ocipush.sync.spec import TagFilter
    from ocipush.sync.tags import ecr_pushed_times, select_tags

    repository = unique("sync-pushed")
    boto3.client("ecr", region_name="us-east-1").create_repository(repositoryName=repository)
    for tag in ("a", "b", "c"):
        push_fake_image(repository, tag, seed=f"{repository}-{tag}")
    times = ecr_pushed_times(repository, "us-east-1", None)
    assert sorted(times) == ["a", "b", "c"] and all(t > 0 for t in times.values())
    newest = select_tags(["a", "b", "c"], TagFilter(newest=1, newest_by="pushed"), lambda _: times)
    assert newest == [max(times, key=lambda t: (times[t], t))]


def test_put_image_pacer_spreads_calls_evenly(monkeypatch: pytest.MonkeyPatch) -> None:
    """ECR's PutImage quota (10/s by default): five manifest pushes at one instant wait 0, 0.1, … 0.4 s. The clock
    is frozen so the test measures what the pacer asks for, not how fast this machine is."""
    from ocipush.sync import ratelimit

    slept: list[float] = []
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: 100.0)
    monkeypatch.setattr(ratelimit.time, "sleep", slept.append)
    pacer = ratelimit.Pacer(10.0)
    for _ in range(5):
        pacer.wait()
    assert slept == pytest.approx([0.1, 0.2, 0.3, 0.4])  # the first call goes at once


def test_attached_sbom_comes_along(second: LocalRegistry, registry: LocalRegistry, tmp_path: Path) -> None:
    """Referrers travel with the image (the graph copy's carry-along); `--no-referrers` leaves them behind."""
    from transferhelpers import make_image

    from ocipush.supply import attach, list_referrers

    layout, descriptor = make_image(tmp_path / "img")
    opts = options(tmp_path)
    api.push(f"oci:{layout.path}:v1", f"{second.host}/app:v1", options=opts)
    sbom = tmp_path / "sbom.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3"}')
    attached = attach(f"{second.host}/app:v1", "application/spdx+json", [str(sbom)], options=opts)
    # --all-tags: the referrers tag schema's index (tag sha256-<hex>, this registry has no referrers API) is not
    # mirrored as a tag of its own; it comes along with its subject
    assert len(api.list_tags(f"{second.host}/app", options=opts)) == 2
    done = run_cli("sync", f"{second.host}/app", f"{registry.host}/with", "--all-tags", "--json",
                   "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    copied = json.loads(done.stdout)["copied"]
    assert [(c["tags"], c["referrers"]) for c in copied] == [(["v1"], 1)]
    found = list_referrers(f"{registry.host}/with:v1", options=opts)
    assert [r.descriptor.digest for r in found] == [attached.digest]
    bare = run_cli("sync", f"{second.host}/app:v1", f"{registry.host}/without", "--no-referrers",
                   "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert bare.returncode == 0, bare.stderr
    assert _digest(f"{registry.host}/without:v1", tmp_path) == descriptor.digest
    assert list_referrers(f"{registry.host}/without:v1", options=opts) == []


def _placements(source: sh.Source, tmp_path: Path) -> tuple[int, int, dict[str, int]]:
    """From the source registry: child manifests under the source's images, blobs per repository (each distinct
    blob of a repository is put there once: an upload or a mount), and the most blobs one image of it holds."""
    from ocipush.reference import parse_reference
    from ocipush.registry.session import RegistrySession
    from ocipush.transfer import RegistrySource, _collect

    children, per_repository, most = 0, 0, {}
    with RegistrySession(options(tmp_path)) as session:
        for repository in {repo for repo, _ in source.digests}:
            blobs: set[str] = set()
            for digest in set(source.tags_of(repository).values()):
                image = RegistrySource(session, parse_reference(f"{source.host}/{repository}@{digest}"))
                documents, found = _collect(image, image.root())
                children += len(documents) - 1
                blobs |= set(found)
                most[repository] = max(most.get(repository, 0), len(found))
            per_repository += len(blobs)
    return children, per_repository, most


def test_cold_sync_asks_the_destination_nothing_it_knows(
    source: sh.Source, source_registry: LocalRegistry, registry: LocalRegistry, tmp_path: Path
) -> None:
    """Benchmark SY1: a cold sync into an empty registry is bound by the registry's CPU per request. One HEAD per
    tag (the planner's comparison) and no second one before the PUT; a blob this sync put into the repository
    costs nothing; any other is asked for once before it is mounted or uploaded (see SyncTarget for why)."""
    from transferhelpers import log_between, log_mark

    start = log_mark(source_registry)
    report = api_sync(_whole_catalog(source, registry.host), tmp_path)
    assert report.ok and len(report.copied) == 80
    seen = sh.request_counts("\n".join(log_between(registry, 0, log_mark(registry))))
    # At the source, whether the registry serves the referrers API is asked by the images copied at once (4),
    # not once per repository (it serves it in all or none).
    read = "\n".join(log_between(source_registry, start, log_mark(source_registry)))
    assert 1 <= len(re.findall(r'"GET /v2/\S+/referrers/', read)) <= 4 < len(sh.repositories())
    children, placements, most = _placements(source, tmp_path)
    tags = len(source.digests)
    mounts = seen["POST", "upload"] - seen["PUT", "upload"]
    assert seen["HEAD", "manifests"] == tags and seen["PUT", "manifests"] == tags + children, seen
    assert seen["POST", "upload"] == placements and mounts >= len(most) - 4, seen  # the shared base: mounted
    # one HEAD for each blob that was then mounted or uploaded, none for a blob this sync had put there already
    assert seen["HEAD", "blobs"] == seen["POST", "upload"], seen
    assert set(seen) == {("HEAD", "manifests"), ("PUT", "manifests"), ("HEAD", "blobs"), ("POST", "upload"),
                         ("PUT", "upload"), ("GET", "other")} and seen["GET", "other"] <= 2, seen  # fmt: skip
    _assert_mirrored(source, registry.host, tmp_path)


def test_partly_filled_destination_ends_identical_with_no_blob_sent_twice(
    source: sh.Source, registry: LocalRegistry, tmp_path: Path
) -> None:
    """A destination that already holds some tags of every repository (a narrower sync before): the repositories
    are not fresh, so their blobs are asked for, and none that is there is uploaded again."""
    first = parse_spec({"sources": [{"registry": source.host, "catalog": True, "tags": {"include": ["^1\\.0\\.0$"]}}],
                        "destinations": [{"registry": registry.host}]})  # fmt: skip
    assert api_sync(first, tmp_path).ok
    report = api_sync(_whole_catalog(source, registry.host), tmp_path)
    assert report.ok and len(report.skipped) == 20 and len(report.copied) == 60
    _assert_mirrored(source, registry.host, tmp_path)
    blob_puts = re.findall(r'"PUT /v2/(\S+)/blobs/uploads/\S*digest=(sha256(?:%3A|:)[0-9a-f]{64})',
                           registry.log_path.read_text())  # fmt: skip
    assert blob_puts and len(blob_puts) == len(set(blob_puts))


def _whole_catalog(source: sh.Source, destination: str) -> object:
    return parse_spec({"sources": [{"registry": source.host, "catalog": True}],
                       "destinations": [{"registry": destination}]})  # fmt: skip
