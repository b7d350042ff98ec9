"""Sync scenarios: `ocipush sync` against `skopeo sync` on the same source (SY1 cold, SY2 warm), and the Dask
executor on 1, 2 and 4 LocalCluster workers (SY3). The source is the test suite's: 20 repositories x 5 tags of small
images, half of them two-platform indexes (tests/synchelpers.py), pushed once into a registry kept for the scenario.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

import synchelpers  # noqa: E402

from ocipush import mediatypes as mt  # noqa: E402
from ocipush.localregistry import LocalRegistry  # noqa: E402

if TYPE_CHECKING:
    from bench import Bench
    from measure import Sample

IMAGES = 80  # 20 repositories x 4 distinct images (the fifth tag, latest, names the 2.0.0 image)


def _files(bench: Bench, source: synchelpers.Source) -> tuple[Path, Path]:
    """The same set as an ocipush sync file and a skopeo-sync file (every tag of every repository)."""
    repos = synchelpers.repositories()
    ours = bench.work / "sync.yaml"
    ours.write_text(json.dumps({"sources": [{"registry": source.host, "repositories": repos}],
                                "destinations": [{"registry": "DEST", "prefix": "mirror/"}]}))  # fmt: skip
    theirs = bench.work / "skopeo-sync.yaml"
    theirs.write_text(json.dumps({source.host: {"images": {r: [] for r in repos}, "tls-verify": False}}))
    return ours, theirs


def _ocipush(bench: Bench, spec: Path, host: str, *extra: str) -> list[str]:
    from bench import OCIPUSH

    text = spec.read_text().replace('"DEST"', json.dumps(host))
    target = bench.fresh("sync-file") / spec.name  # removed with the other trial directories
    target.write_text(text)
    return [str(OCIPUSH), "sync", "-f", str(target), "-q", *extra]


def _skopeo(spec: Path, host: str) -> list[str]:
    return ["skopeo", "sync", "--all", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", str(spec),
            f"{host}/mirror"]  # fmt: skip


ACCEPT = ", ".join(sorted(mt.MANIFESTS))


def _digest(url: str) -> str | None:
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError:
        return None


def _check(source: synchelpers.Source, host: str, prefix: str) -> None:
    """Every tag arrived with the source's digest (a manifest digest is the hash of its exact bytes)."""
    for (repository, tag), digest in source.digests.items():
        name = repository.rsplit("/", 1)[-1] if prefix == "skopeo" else repository
        found = _digest(f"http://{host}/v2/mirror/{name}/manifests/{tag}")
        if found != digest:
            raise RuntimeError(f"{host}/mirror/{name}:{tag} is {found}, not {digest}")


def s1_s2_s3(bench: Bench) -> None:
    from bench import access_lines, count_methods

    print("SY1-SY3: sync of 20 repositories x 5 tags", flush=True)
    work = bench.fresh("sync-source")
    with LocalRegistry(storage_dir=work / "storage", log_path=bench.logs / "sync-source.log") as src:
        started = time.perf_counter()
        source = synchelpers.populate(src.host, work)
        print(f"  source ready in {time.perf_counter() - started:.1f} s", flush=True)
        ours, theirs = _files(bench, source)

        def cold(tool: str, command: Callable[[str], list[str]], layout: str) -> Callable[[], Sample]:
            def trial() -> Sample:
                with bench.registry() as dst:
                    sample = bench.timed(tool, command(dst.host), bench.env(bench.fresh("cache")))
                    _check(source, dst.host, layout)
                    sample.extra["images/s"] = round(IMAGES / sample.seconds, 1)
                    return sample

            return trial

        def warm(tool: str, command: Callable[[str], list[str]], layout: str) -> Callable[[], Sample]:
            def trial() -> Sample:
                with bench.registry() as dst:
                    env = bench.env(bench.fresh("cache"))
                    bench.timed(tool, command(dst.host), env)  # the first run copies; untimed
                    mark = dst.log_path.stat().st_size
                    sample = bench.timed(tool, command(dst.host), env)
                    sample.extra["dest_requests"] = count_methods(access_lines(dst.log_path, mark))
                    _check(source, dst.host, layout)
                    return sample

            return trial

        tools = {
            "ocipush sync": cold("ocipush sync", lambda h: _ocipush(bench, ours, h), "ocipush"),
            "skopeo sync": cold("skopeo sync", lambda h: _skopeo(theirs, h), "skopeo"),
        }
        samples, errors = bench.alternate(bench.sizes.reps, tools)
        commands = {
            "ocipush sync": "ocipush sync -f sync.yaml -q (4 images at once, threads)",
            "skopeo sync": "skopeo sync --all --src yaml --dest docker skopeo-sync.yaml HOST/mirror",
        }
        bench.record("SY1", "Sync 20 repositories x 5 tags (80 images) into an empty registry", samples, errors,
                     commands)  # fmt: skip
        tools = {
            "ocipush sync": warm("ocipush sync", lambda h: _ocipush(bench, ours, h), "ocipush"),
            "skopeo sync": warm("skopeo sync", lambda h: _skopeo(theirs, h), "skopeo"),
        }
        samples, errors = bench.alternate(bench.sizes.reps, tools)
        bench.record("SY2", "The same sync again: nothing to copy", samples, errors, commands)
        s3(bench, source, ours)


def s3(bench: Bench, source: synchelpers.Source, ours: Path) -> None:
    tools: dict[str, Callable[[], Sample]] = {}
    for workers in (2,) if bench.quick else (1, 2, 4):  # quick: the harness works; the curve is the full run's
        name = f"ocipush dask, {workers} worker{'s' if workers > 1 else ''}"

        def trial(name: str = name, workers: int = workers) -> Sample:
            with bench.registry() as dst:
                command = _ocipush(bench, ours, dst.host, "--executor", "dask", "--workers", str(workers))
                command[command.index("-q")] = "--json"
                mark = bench.log.stat().st_size
                sample = bench.timed(name, command, bench.env(bench.fresh("cache")))
                _check(source, dst.host, "ocipush")
                output = bench.log.read_text(errors="replace")[mark:]
                # distributed may log to the same file: the report is the JSON object that starts a line
                phases = json.loads(output[output.rindex('{\n  "summary"'):])["phases"]
                sample.extra["images/s"] = round(IMAGES / sample.seconds, 1)
                sample.extra["cluster_start_s"] = round(phases["start"], 2)
                sample.extra["copy_s"] = round(phases["copy"], 2)
                sample.extra["copy images/s"] = round(IMAGES / phases["copy"], 1)
                return sample

        tools[name] = trial
    samples, errors = bench.alternate(bench.sizes.reps, tools)
    commands = {name: f"ocipush sync -f sync.yaml -q --executor dask --workers {name.split()[2]} (a LocalCluster "
                "of that many processes, 2 threads each, started by the command)" for name in tools}  # fmt: skip
    bench.record("SY3", "Sync of SY1 on the Dask executor (LocalCluster start-up included)", samples, errors, commands)

