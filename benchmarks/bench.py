"""ocipush against the tools users would pick instead, on this machine, in one run.

    .venv/bin/python benchmarks/bench.py [--quick] [--reps N] [--out DIR] [--only P2,P3,...]

Every scenario runs its tools alternately (A B A B …), each push against a fresh `docker-registry` on
127.0.0.1 (so no tool finds blobs from an earlier trial), and reports median/min/max. Request counts come
from the registry's access log, byte counts from a counting proxy (P8 only). Results: raw.json, report.md
and chart.png in --out (default benchmarks/results, or benchmarks/results-quick with --quick).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import data  # noqa: E402
import python_deps  # noqa: E402
import report  # noqa: E402
import scaling  # noqa: E402
import sync_bench  # noqa: E402
from measure import CommandFailed, Sample, run_timed, summary  # noqa: E402

from ocipush.localregistry import LocalRegistry  # noqa: E402

PYTHON = ROOT / ".venv" / "bin" / "python"
OCIPUSH = ROOT / ".venv" / "bin" / "ocipush"
PEERS_PY = BENCH / ".venv-peers" / "bin" / "python"
MiB = data.MiB
ACCESS = re.compile(r'^\S+ - \S+ \[[^\]]+\] "([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3}) ')


@dataclass(frozen=True)
class Sizes:
    reps: int
    p2_layer: int
    p3_layers: int
    p3_layer: int
    p8_blob: int
    tree: Path
    p9_reps: int
    lambda_cap_mb: int


def stdlib_tree() -> Path:
    """P1's tree: the standard library folder of the first python3 on PATH, as in every report so far, whichever
    interpreter runs ocipush (scripts/make-venv.sh picks Debian's). On this machine kind that is pyenv's 3.11, whose
    lib folder holds its site-packages too (~50,000 files, ~820 MB); on a plain Debian, /usr/lib/python3.11."""
    found = shutil.which("python3")
    if found is None:
        return Path(sysconfig.get_paths()["stdlib"])
    code = "import sysconfig; print(sysconfig.get_paths()['stdlib'])"
    return Path(subprocess.run([found, "-c", code], capture_output=True, text=True, check=True).stdout.strip())


def full_sizes(reps: int) -> Sizes:
    return Sizes(reps, 500 * MiB, 8, 128 * MiB, 1024 * MiB, stdlib_tree(), 20, 1024)


def quick_sizes() -> Sizes:
    tree = stdlib_tree() / "email"
    return Sizes(1, 20 * MiB, 8, 4 * MiB, 64 * MiB, tree, 3, 1024)


class Bench:
    def __init__(self, work: Path, sizes: Sizes, quick: bool) -> None:
        self.work = work
        self.sizes = sizes
        self.quick = quick
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.log = self.logs / "commands.log"
        self.counter = 0
        self.scenarios: dict[str, dict[str, Any]] = {}

    # ---- plumbing ------------------------------------------------------------------------------------------

    def fresh(self, prefix: str) -> Path:
        self.counter += 1
        path = self.work / "tmp" / f"{prefix}-{self.counter}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    @contextlib.contextmanager
    def registry(self) -> Iterator[LocalRegistry]:
        storage = self.fresh("registry")
        log = self.logs / f"registry-{self.counter}.log"
        try:
            with LocalRegistry(storage_dir=storage, log_path=log) as reg:
                yield reg
        finally:
            shutil.rmtree(storage, ignore_errors=True)

    def env(self, cache: Path | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OCIPUSH_", "REGISTRY_"))}
        if cache is not None:
            env["OCIPUSH_CACHE_DIR"] = str(cache)
        return env

    def timed(self, tool: str, cmd: list[str], env: dict[str, str] | None = None, **extra: object) -> Sample:
        seconds, rss, rc = run_timed(cmd, log=self.log, env=env)
        return Sample(tool, seconds, rss, rc, dict(extra))

    def alternate(
        self, reps: int, tools: dict[str, Callable[[], Sample]], caps: dict[str, int] | None = None
    ) -> tuple[dict[str, list[Sample]], dict]:
        """`reps` rounds of every tool in turn; a tool named in `caps` stops after that many runs."""
        samples: dict[str, list[Sample]] = {name: [] for name in tools}
        errors: dict[str, str] = {}
        for rep in range(reps):
            for name, trial in tools.items():
                if name in errors or rep >= (caps or {}).get(name, reps):
                    continue
                # Dirty pages of the last trial (a push's registry storage, a build's blobs) are written back
                # before the next starts, so that no trial pays for another tool's writeback.
                os.sync()
                try:
                    sample = trial()
                except (CommandFailed, OSError, RuntimeError, ValueError) as err:
                    errors[name] = str(err)
                    print(f"  {name}: FAILED {err}", flush=True)
                    continue
                samples[name].append(sample)
                print(f"  rep {rep + 1} {name}: {sample.seconds:.3f} s, {sample.maxrss_mb:.0f} MB {sample.extra}",
                      flush=True)  # fmt: skip
        return samples, errors

    def record(self, key: str, title: str, samples: dict[str, list[Sample]], errors: dict[str, str],
               commands: dict[str, str], **fields: Any) -> dict[str, Any]:  # fmt: skip
        tools = {}
        for name, runs in samples.items():
            tools[name] = {
                "samples": [s.to_dict() for s in runs],
                "seconds": summary([s.seconds for s in runs]),
                "maxrss_mb": summary([s.maxrss_mb for s in runs]),
                "command": commands.get(name, ""),
            }
            if name in errors:
                tools[name]["error"] = errors[name]
        for name, err in errors.items():
            tools.setdefault(name, {"samples": [], "seconds": {}, "maxrss_mb": {}, "command": commands.get(name, "")})
            tools[name]["error"] = err
        entry = {"title": title, "tools": tools, **fields}
        self.scenarios[key] = entry
        return entry

    # ---- data ------------------------------------------------------------------------------------------------

    def images(self) -> None:
        s = self.sizes
        started = time.perf_counter()
        self.img2 = data.random_image(self.work / "data" / "p2", [s.p2_layer], seed=2)
        self.img3 = data.random_image(self.work / "data" / "p3", [s.p3_layer] * s.p3_layers, seed=3)
        self.img8 = data.random_image(self.work / "data" / "p8", [s.p8_blob], seed=8)
        print(f"data ready in {time.perf_counter() - started:.1f} s", flush=True)

    # ---- drivers -------------------------------------------------------------------------------------------

    @staticmethod
    def ocipush_push(img: data.Image, ref: str) -> list[str]:
        return [str(OCIPUSH), "push", "--quiet", img.oci, ref]

    @staticmethod
    def skopeo_push(img: data.Image, ref: str) -> list[str]:
        return ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", img.oci, f"docker://{ref}"]

    @staticmethod
    def curl_push(img: data.Image, host: str, repo: str) -> list[str]:
        args = [str(BENCH / "curl_push.sh"), host, repo]
        for layer in img.layers:
            args += [str(layer.path), layer.digest]
        return args

    def push_tools(self, img: data.Image, repo: str, tools: list[str]) -> dict[str, Callable[[], Sample]]:
        mb = img.layer_bytes / 1e6

        def with_registry(name: str, build: Callable[[str], list[str]], ocipush_cache: bool = False):
            def trial() -> Sample:
                with self.registry() as reg:
                    cache = self.fresh("cache")
                    cmd = build(reg.host)
                    sample = self.timed(name, cmd, self.env(cache))
                    self.assert_pushed(reg, repo, img, blobs_only=name not in ("ocipush", "skopeo"))
                sample.extra["MB/s"] = round(mb / sample.seconds, 1)
                return sample

            return trial

        drivers: dict[str, Callable[[str], list[str]]] = {
            "ocipush": lambda host: self.ocipush_push(img, f"{host}/{repo}:bench"),
            "curl": lambda host: self.curl_push(img, host, repo),
            "skopeo": lambda host: self.skopeo_push(img, f"{host}/{repo}:bench"),
            "python-dxf": lambda host: [str(PEERS_PY), str(BENCH / "pyclients.py"), "dxf", host, repo,
                                        *[str(layer.path) for layer in img.layers]],
            "oras-py": lambda host: [str(PEERS_PY), str(BENCH / "pyclients.py"), "oras", host, repo,
                                     *[f"{layer.path}={layer.digest}" for layer in img.layers]],
        }
        return {name: with_registry(name, drivers[name]) for name in tools}

    def assert_pushed(self, reg: LocalRegistry, repo: str, img: data.Image, blobs_only: bool) -> None:
        """The registry really holds the pushed blobs (and the manifest, for image pushes)."""
        for layer in img.layers:
            head(f"{reg.url}/v2/{repo}/blobs/{layer.digest}")
        if not blobs_only:
            head(f"{reg.url}/v2/{repo}/manifests/bench", accept=data.MANIFEST_TYPE)

    def commands(self, img: data.Image, repo: str, tools: list[str]) -> dict[str, str]:
        host = "127.0.0.1:PORT"
        ref = f"{host}/{repo}:bench"
        out = {
            "ocipush": shlex.join(self.ocipush_push(img, ref)),
            "skopeo": shlex.join(self.skopeo_push(img, ref)),
            "curl": shlex.join(self.curl_push(img, host, repo)[:5]) + (" …" if len(img.layers) > 1 else ""),
            "python-dxf": f"DXF('{host}', '{repo}', insecure=True).push_blob(path) per layer",
            "oras-py": f"Registry(hostname='{host}', insecure=True).upload_blob(path, container, layer, "
            "do_chunked=True)",
        }
        return {k: v.replace(str(ROOT) + "/", "") for k, v in out.items() if k in tools}

    # ---- scenarios -----------------------------------------------------------------------------------------

    def p2(self) -> None:
        print("P2: push of one prebuilt layer", flush=True)
        img, tools = self.img2, ["ocipush", "curl", "skopeo", "python-dxf", "oras-py"]
        samples, errors = self.alternate(self.sizes.reps, self.push_tools(img, "p2", tools))
        self.record("P2", f"Push of one prebuilt {img.layer_bytes / MiB:.0f} MiB layer", samples, errors,
                    self.commands(img, "p2", tools), bytes=img.layer_bytes)  # fmt: skip

    def p3(self) -> None:
        print("P3: push of 8 layers", flush=True)
        img, tools = self.img3, ["ocipush", "curl", "skopeo"]
        samples, errors = self.alternate(self.sizes.reps, self.push_tools(img, "p3", tools))
        cmds = self.commands(img, "p3", tools)
        cmds["curl"] = f"benchmarks/curl_push.sh 127.0.0.1:PORT p3 FILE1 DIGEST1 … FILE{len(img.layers)} …"
        cmds["curl"] += f" ({len(img.layers)} POST+PUT pairs in parallel)"
        self.record("P3", f"Push of {img.layer_bytes / MiB:.0f} MiB in {len(img.layers)} layers", samples, errors,
                    cmds, bytes=img.layer_bytes)  # fmt: skip

    def p5(self) -> None:
        print("P5: pull of the P3 image", flush=True)
        img = self.img3
        digests = [layer.digest for layer in img.layers]
        with self.registry() as reg:
            subprocess.run(self.ocipush_push(img, f"{reg.host}/p5:bench"), check=True,
                           env=self.env(self.fresh("cache")), stdout=subprocess.DEVNULL)  # fmt: skip
            tools = scaling.pull_tools(self, reg.host, "p5", img, verified_curl=True)
            samples, errors = self.alternate(self.sizes.reps, tools)
        verified = [s.extra["verification"] for s in samples["ocipush"]]
        commands = {
            "ocipush": "ocipush pull --quiet 127.0.0.1:PORT/p5:bench oci:OUT:bench",
            "skopeo": "skopeo copy --quiet --src-tls-verify=false docker://127.0.0.1:PORT/p5:bench oci:OUT:bench",
            "curl": f"benchmarks/curl_pull.sh 127.0.0.1:PORT p5 OUT DIGEST… ({len(digests)} GETs in parallel, "
            "not verified)",
            scaling.VERIFIED_CURL: "benchmarks/curl_pull.sh --verify 127.0.0.1:PORT p5 OUT DIGEST… (the same GETs, "
            "each blob then hashed with openssl dgst -sha256 and compared)",
        }
        self.record("P5", f"Pull of the P3 image ({img.layer_bytes / MiB:.0f} MiB, {len(digests)} layers) to an "
                    "OCI layout", samples, errors, commands, verification=verified)  # fmt: skip

    def p6(self) -> None:
        print("P6: re-push of an unchanged image", flush=True)
        img = self.img3

        with self.registry() as reg:
            ref = f"{reg.host}/p6:bench"
            subprocess.run(self.ocipush_push(img, ref), check=True, env=self.env(self.fresh("cache")),
                           stdout=subprocess.DEVNULL)  # fmt: skip

            def counted(name: str, cmd: list[str], env: dict[str, str] | None = None) -> Sample:
                offset = reg.log_path.stat().st_size
                sample = self.timed(name, cmd, env)
                time.sleep(0.05)  # the access log line is written after the response
                lines = access_lines(reg.log_path, offset)
                sample.extra["requests"] = len(lines)
                sample.extra["by_method"] = count_methods(lines)
                return sample

            tools = {
                "ocipush": lambda: counted("ocipush", self.ocipush_push(img, ref),
                                           self.env(self.fresh("cache"))),
                "skopeo": lambda: counted("skopeo", self.skopeo_push(img, ref)),
            }
            samples, errors = self.alternate(self.sizes.reps, tools)
        commands = self.commands(img, "p6", ["ocipush", "skopeo"])
        self.record("P6", f"Re-push of the unchanged P3 image ({img.blob_count} blobs)", samples, errors, commands,
                    blobs=img.blob_count, note="each re-push uses a fresh ocipush cache dir (no journal to lean on); "
                    "requests counted from the registry access log")  # fmt: skip

    # -- P1 / P7 --

    def ocipush_build_push(self, tree: Path, ref: str, layout: Path) -> tuple[list[str], str]:
        """The ocipush command for building `tree` as a layer at / and pushing it, and how it was run."""
        top = run_text([str(OCIPUSH), "--help"])
        if re.search(r"^\s+build-push\s", top, re.M):
            usage = run_text([str(OCIPUSH), "build-push", "--help"])
            head_usage = usage.split("\n\n", 1)[0]
            layer = ["--layer", str(tree)] if "--layer" in usage and "DIR" not in head_usage.split("]")[-1] else [
                str(tree)]  # fmt: skip
            cmd = [str(OCIPUSH), "build-push", "--from", "scratch", *layer, "--tag", ref]
            return cmd, "build-push"
        if re.search(r"^\s+build\s", top, re.M):
            script = (f"{shlex.quote(str(OCIPUSH))} build --quiet --from scratch --layer {shlex.quote(str(tree))} "
                      f"--output oci:{layout}:bench && {shlex.quote(str(OCIPUSH))} push --quiet oci:{layout}:bench "
                      f"{ref}")  # fmt: skip
            return ["bash", "-c", script], "build + push (build-push not available yet)"
        raise CommandFailed("ocipush has neither build-push nor build")

    def p1_p7(self) -> None:
        tree = self.sizes.tree
        files, size = data.tree_stats(tree)
        print(f"P1/P7: build-push of {tree} ({files} files, {size / 1e6:.0f} MB)", flush=True)
        p7: list[Sample] = []
        try:
            _, how = self.ocipush_build_push(tree, "R", self.work)
        except CommandFailed as err:
            how = f"not measured: {err}"

        def ocipush_trial() -> Sample:
            with self.registry() as reg:
                cache, layout = self.fresh("cache"), self.fresh("layout") / "oci"
                cmd, _ = self.ocipush_build_push(tree, f"{reg.host}/p1:bench", layout)
                first = self.timed("ocipush", cmd, self.env(cache))
                head(f"{reg.url}/v2/p1/manifests/bench", accept=data.MANIFEST_TYPE)
                again = self.timed("ocipush (rebuild)", cmd, self.env(cache))
                p7.append(again)
                shutil.rmtree(layout.parent)
            return first

        def umoci_trial() -> Sample:
            with self.registry() as reg:
                layout = self.fresh("umoci") / "oci"
                script = (f"umoci init --layout {layout} && umoci new --image {layout}:bench && "
                          f"umoci insert --image {layout}:bench {shlex.quote(str(tree))} / && "
                          f"skopeo copy --quiet --dest-tls-verify=false oci:{layout}:bench "
                          f"docker://{reg.host}/p1:bench")  # fmt: skip
                sample = self.timed("umoci + skopeo", ["bash", "-c", script])
                shutil.rmtree(layout.parent)
            return sample

        def pigz_trial() -> Sample:
            with self.registry() as reg:
                out = self.fresh("pigz")
                blob = out / "layer.tar.gz"
                script = (f"tar -C {shlex.quote(str(tree))} -cf - . | pigz -1 | tee {blob} | sha256sum | "
                          f"cut -d' ' -f1 > {blob}.sha && {BENCH / 'curl_push.sh'} {reg.host} p1 {blob} "
                          f'"sha256:$(cat {blob}.sha)"')  # fmt: skip
                sample = self.timed("tar | pigz -1 + curl", ["bash", "-c", script])
                sample.extra["layer_MB"] = round(blob.stat().st_size / 1e6, 1)
                shutil.rmtree(out)
            return sample

        tools: dict[str, Callable[[], Sample]] = {"umoci + skopeo": umoci_trial, "tar | pigz -1 + curl": pigz_trial}
        buildah_tools, buildah_rebuilds = scaling.buildah_p1(self, tree)
        tools.update(buildah_tools)
        if not how.startswith("not measured"):
            tools = {"ocipush": ocipush_trial, **tools}
        # buildah takes minutes a run and 20-30 times ocipush's time: three runs settle that ratio
        samples, errors = self.alternate(self.sizes.reps, tools, caps={name: 3 for name in buildah_tools})
        if how.startswith("not measured"):
            errors["ocipush"] = how
        commands = {
            "ocipush": (how if how.startswith("not measured") else
                        shlex.join(self.ocipush_build_push(tree, "127.0.0.1:PORT/p1:bench", Path("LAYOUT"))[0])),
            "umoci + skopeo": "umoci init --layout L && umoci new --image L:bench && umoci insert --image L:bench "
            "TREE / && skopeo copy --dest-tls-verify=false oci:L:bench docker://127.0.0.1:PORT/p1:bench",
            "tar | pigz -1 + curl": "tar -C TREE -cf - . | pigz -1 | tee F | sha256sum …; curl POST + PUT -T F",
            **scaling.BUILDAH_COMMANDS,
        }  # fmt: skip
        # No machine paths in the report: the tree is the running Python's standard library, wherever it lives.
        commands = {k: v.replace(str(ROOT) + "/", "").replace(str(tree), "STDLIB") for k, v in commands.items()}
        self.record("P1", f"Build and push of the Python {sys.version_info.major}.{sys.version_info.minor} "
                    f"standard library, STDLIB ({files} files, {size / 1e6:.0f} MB) as one layer", samples,
                    errors, commands, ocipush_mode=how, files=files, bytes=size)  # fmt: skip
        p7_errors = {"ocipush (rebuild)": errors["ocipush"]} if "ocipush" in errors else {}
        self.record("P7", "Rebuild and push of the unchanged tree (incremental path), same cache and registry",
                    {"ocipush (rebuild)": p7, scaling.BUILDAH_REBUILD: buildah_rebuilds}, p7_errors,
                    {"ocipush (rebuild)": commands["ocipush"] + "  (again)",
                     scaling.BUILDAH_REBUILD: commands[scaling.BUILDAH_BUILD] + "  (again, same storage)"},
                    ocipush_mode=how)  # fmt: skip

    # -- P10 --

    def p10(self) -> None:
        """A small app layer built onto a real base in a registry: the base index's cost (one header pass of the
        base's layers on an empty cache, nothing on a rebuild), next to the same build on scratch."""
        sys.path.insert(0, str(ROOT / "tests"))
        from support.bases import cached_base, push_base

        name = "busybox" if self.quick else "debian"
        base = cached_base(name)
        manifest_ref = json.loads((base / "index.json").read_text())["manifests"][0]["digest"]
        manifest = json.loads((base / "blobs" / "sha256" / manifest_ref.split(":", 1)[1]).read_text())
        base_layers = [layer["digest"] for layer in manifest["layers"]]
        base_mb = sum(layer["size"] for layer in manifest["layers"]) / 1e6
        app = stdlib_tree() / "email"
        print(f"P10: build-push of {app.name} onto the {name} base ({base_mb:.0f} MB compressed)", flush=True)
        rebuilds: list[Sample] = []

        def command(host: str, base_ref: str) -> list[str]:
            return [str(OCIPUSH), "build-push", "--no-build-file", "--from", base_ref, "--layer",
                    f"{app}:/usr/local/lib/app", "--tag", f"{host}/p10:bench"]  # fmt: skip

        def base_gets(reg: LocalRegistry, offset: int) -> int:
            return sum(1 for method, path, _ in access_lines(reg.log_path, offset)
                       if method == "GET" and path.rsplit("/", 1)[-1] in base_layers)  # fmt: skip

        def on_base() -> Sample:
            with self.registry() as reg:
                base_ref = push_base(base, reg.host, f"base/{name}")
                cache, offset = self.fresh("cache"), reg.log_path.stat().st_size
                first = self.timed("first", command(reg.host, base_ref), self.env(cache))
                first.extra["base_blob_GETs"] = base_gets(reg, offset)
                offset = reg.log_path.stat().st_size
                again = self.timed("rebuild", command(reg.host, base_ref), self.env(cache))
                again.extra["base_blob_GETs"] = base_gets(reg, offset)
                rebuilds.append(again)
            return first

        def on_scratch() -> Sample:
            with self.registry() as reg:
                return self.timed("scratch", command(reg.host, "scratch"), self.env(self.fresh("cache")))

        first_name, rebuild_name = f"ocipush on {name}, empty cache", f"ocipush on {name}, unchanged rebuild"
        scratch_name = "ocipush on scratch, empty cache"
        samples, errors = self.alternate(self.sizes.reps, {first_name: on_base, scratch_name: on_scratch})
        samples = {first_name: samples[first_name], rebuild_name: rebuilds, scratch_name: samples[scratch_name]}
        if first_name in errors:
            errors[rebuild_name] = errors[first_name]
        shown = shlex.join(command("127.0.0.1:PORT", "BASE")).replace(str(app), "STDLIB/email")
        shown = shown.replace(str(ROOT) + "/", "")
        commands = {
            first_name: shown + "  (fresh cache dir)",
            rebuild_name: shown + "  (again, same cache dir)",
            scratch_name: shown.replace("BASE", "scratch") + "  (fresh cache dir)",
        }
        self.record("P10", f"Build-push of a small app layer onto a {name} base in the same registry "
                    f"({base_mb:.0f} MB of base layers): first build, unchanged rebuild, and scratch for comparison",
                    samples, errors, commands, base=name, base_MB=round(base_mb, 1),
                    note="BASE is the base pushed by skopeo as Docker v2s2 to the same registry. base_blob_GETs "
                    "counts GETs of the base's layer blobs in the registry log: the base index reads their headers "
                    "once per cache dir; the push mounts them.")  # fmt: skip

    # -- P8 --

    def p8(self) -> None:
        print("P8: SIGKILL at 50 % of a single-blob push, then re-run", flush=True)
        from counting import counting_proxy, request_count, upload_bytes

        img = self.img8
        size = img.layer_bytes
        results: list[dict[str, object]] = []

        def interrupted(tool: str, mode: str) -> Sample:
            with self.registry() as reg:
                proxy = counting_proxy(reg.url, ecr=mode == "ecr")
                try:
                    cache = self.fresh("cache")
                    ref = f"{proxy.host}/p8:bench"
                    if tool == "ocipush":
                        cmd = self.ocipush_push(img, ref)
                        if mode == "ecr":
                            # ECR's 32 MiB parts, which ocipush picks by itself on ECR host names; the proxy
                            # stands on 127.0.0.1, so they are asked for here.
                            cmd += ["--chunk-size", "32"]
                    elif tool == "skopeo":
                        cmd = self.skopeo_push(img, ref)
                    else:
                        cmd = self.curl_push(img, proxy.host, "p8")
                    env = self.env(cache)

                    def killer(proc: subprocess.Popen[bytes]) -> None:
                        deadline = time.monotonic() + 600
                        while time.monotonic() < deadline and os.path.exists(f"/proc/{proc.pid}"):
                            if upload_bytes(proxy) >= size // 2:
                                with contextlib.suppress(ProcessLookupError):
                                    os.killpg(proc.pid, signal.SIGKILL)
                                return
                            time.sleep(0.002)

                    t1, rss1, rc1 = run_timed(cmd, log=self.log, env=env, check=False, on_start=killer)
                    first = settled(lambda: upload_bytes(proxy))  # socket buffers still drain after the kill
                    proxy.reset_stats()
                    t2, rss2, rc2 = run_timed(cmd, log=self.log, env=env, check=False)
                    again = upload_bytes(proxy)
                    requests = request_count(proxy)
                finally:
                    proxy.stop()
                ok = rc2 == 0
                if ok:
                    head(f"{reg.url}/v2/p8/blobs/{img.layers[0].digest}")
                    if tool != "curl":
                        head(f"{reg.url}/v2/p8/manifests/bench", accept=data.MANIFEST_TYPE)
                label = f"{tool} [{mode}]"
                extra = {"killed_rc": rc1, "first_run_MB": round(first / 1e6, 1), "first_run_bytes": first,
                         "rerun_bytes": again,
                         "resent_pct": round(100 * again / size, 1), "rerun_s": round(t2, 3),
                         "rerun_requests": requests, "rerun_ok": ok}  # fmt: skip
                results.append({"tool": label, **extra})
                if not ok:
                    raise CommandFailed(f"{label}: re-run exited {rc2} (see {self.log})")
                return Sample(label, t1 + t2, max(rss1, rss2), rc2, extra)

        tools = {
            "ocipush [distribution]": lambda: interrupted("ocipush", "distribution"),
            "ocipush [ecr]": lambda: interrupted("ocipush", "ecr"),
            "skopeo [distribution]": lambda: interrupted("skopeo", "distribution"),
            "curl [distribution]": lambda: interrupted("curl", "distribution"),
        }
        reps = 1 if self.quick else 2
        samples, errors = self.alternate(reps, tools)
        commands = {
            "ocipush [distribution]": "ocipush push --quiet oci:P8:latest 127.0.0.1:PROXY/p8:bench; SIGKILL at 50 %; "
            "same command again (same cache dir)",
            "ocipush [ecr]": "same with --chunk-size 32 (ECR's parts), through the proxy's ECR mode (atomic parts)",
            "skopeo [distribution]": "skopeo copy --dest-tls-verify=false oci:P8:latest docker://…; SIGKILL; again",
            "curl [distribution]": "benchmarks/curl_push.sh …; SIGKILL; again",
        }
        self.record("P8", f"SIGKILL at 50 % of a {size / MiB:.0f} MiB single-blob push, then the same command again",
                    samples, errors, commands, bytes=size, runs=results,
                    note="[distribution]: the counting proxy forwards bytes as they arrive, so the registry sees "
                    "the cut-off PATCH (distribution 2.8 then discards the upload session). [ecr]: the proxy's ECR "
                    "mode (tests/support/proxy.py) spools each PATCH and forwards it only once its body is complete, "
                    "as ECR stores parts atomically; it also answers 201 and freezes Range, as ECR does.")  # fmt: skip

    # -- P9 --

    def p9(self) -> None:
        print("P9: start-up", flush=True)
        tools = {
            "python -c pass (baseline)": lambda: self.timed("python -c pass", [str(PYTHON), "-c", "pass"]),
            "python -c 'import ocipush'": lambda: self.timed("import", [str(PYTHON), "-c", "import ocipush"]),
            "ocipush --help": lambda: self.timed("--help", [str(OCIPUSH), "--help"]),
        }
        for trial in tools.values():  # warm the page cache and .pyc files
            trial()
        samples, errors = self.alternate(self.sizes.p9_reps, tools)
        commands = {k: k.replace("python", ".venv/bin/python") if "python" in k else ".venv/bin/ocipush --help"
                    for k in tools}  # fmt: skip
        self.record("P9", "Start-up wall time", samples, errors, commands)

    # -- Lambda --

    def lambda_profile(self) -> None:
        print("Lambda profile: library push of the P3 image", flush=True)
        cap = self.sizes.lambda_cap_mb
        home = Path(os.path.expanduser("~"))

        def trial() -> Sample:
            with self.registry() as reg:
                tmp = Path(tempfile.mkdtemp(prefix="ocipush-lambda-"))
                try:
                    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TMPDIR": str(tmp),
                           "LANG": "C.UTF-8"}  # fmt: skip
                    inner = [str(PYTHON), str(BENCH / "lambda_push.py"), self.img3.oci, f"{reg.host}/lambda:bench"]
                    offset = self.log.stat().st_size if self.log.exists() else 0
                    script = ('for d in "$1" "$2"; do mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" || '
                              'exit 97; done; shift 2; exec "$@"')  # fmt: skip
                    cmd = ["unshare", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(home), str(ROOT),
                           "prlimit", f"--as={cap * MiB}", "--", *inner]  # fmt: skip
                    sample = self.timed("ocipush (library, Lambda-like)", cmd, env)
                    sample.extra["first_request_s"] = scaling.first_request(self.log, offset)
                    head(f"{reg.url}/v2/lambda/manifests/bench", accept=data.MANIFEST_TYPE)
                    sample.extra["writes_in_tmp"] = sorted(p.name for p in tmp.iterdir())
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                sample.extra["MB/s"] = round(self.img3.layer_bytes / 1e6 / sample.seconds, 1)
                return sample

        samples, errors = self.alternate(self.sizes.reps, {"ocipush (library, Lambda-like)": trial})
        self.record("Lambda", "Lambda profile: `ocipush.api.push` of the P3 image in a subprocess", samples, errors,
                    {"ocipush (library, Lambda-like)": "unshare -rm (HOME and the project tree bind-mounted "
                     f"read-only) prlimit --as={cap}MiB python benchmarks/lambda_push.py oci:P3:latest "
                     "127.0.0.1:PORT/lambda:bench, HOME's cache unwritable, TMPDIR a fresh temp dir"},
                    cap_mb=cap)  # fmt: skip


# ---- helpers ---------------------------------------------------------------------------------------------------


def head(url: str, accept: str | None = None) -> None:
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as resp:  # raises on 404
        if resp.status != 200:
            raise CommandFailed(f"HEAD {url}: {resp.status}")


def settled(read: Callable[[], int], quiet: float = 0.3, limit: float = 10.0) -> int:
    """`read()` once it has stopped changing for `quiet` seconds (at most `limit` seconds)."""
    deadline = time.monotonic() + limit
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return value


def run_text(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout


def access_lines(log: Path, offset: int) -> list[tuple[str, str, int]]:
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    return [(m[1], m[2], int(m[3])) for line in text.splitlines() if (m := ACCESS.match(line))]


def count_methods(lines: list[tuple[str, str, int]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for method, path, _status in lines:
        kind = "manifest" if "/manifests/" in path else "upload" if "/blobs/uploads/" in path else (
            "blob" if "/blobs/" in path else "base" if path.rstrip("/") == "/v2" else "other")  # fmt: skip
        counts[f"{method} {kind}"] = counts.get(f"{method} {kind}", 0) + 1
    return counts


def tool_versions() -> dict[str, str]:
    def first_line(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        except OSError as err:
            return f"unavailable ({err})"
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"

    peers = "unavailable"
    if PEERS_PY.exists():
        peers = run_text([str(PEERS_PY), "-c", "import importlib.metadata as m; print('python-dxf', "
                          "m.version('python-dxf'), '/ oras', m.version('oras'))"]).strip()  # fmt: skip
    return {
        "ocipush": run_text([str(OCIPUSH), "--version"]).strip(),
        "skopeo": first_line(["skopeo", "--version"]),
        "umoci": first_line(["umoci", "--version"]),
        "curl": first_line(["curl", "--version"]),
        "pigz": first_line(["pigz", "--version"]),
        "docker-registry": first_line(["docker-registry", "--version"]),
        "python peers": peers,
    }


SCENARIOS = ("P1", "P2", "P3", "P5", "P6", "P8", "P9", "P10", "PY", "Lambda", "S1", "S2", "S3", "S4", "S5", "SY1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, one repetition (CI)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per tool in the full run (default 5)")
    parser.add_argument("--out", type=Path, help="where report.md, chart.png and raw.json go")
    parser.add_argument("--work", type=Path, help="scratch directory (default benchmarks/work or a temp dir)")
    parser.add_argument("--only", help="comma-separated subset of " + ",".join(SCENARIOS) + " (P1 includes P7, "
                        "SY1 the sync scenarios SY1-SY3)")  # fmt: skip
    parser.add_argument("--keep-data", action="store_true", help="keep the generated data for the next run")
    parser.add_argument("--ocipush", type=Path, help="the ocipush command to measure (default .venv/bin/ocipush); "
                        "run.sh passes a regular, runtime-only install")  # fmt: skip
    args = parser.parse_args(argv)
    if args.ocipush:
        global OCIPUSH, PYTHON
        OCIPUSH = args.ocipush.absolute()
        PYTHON = OCIPUSH.with_name("python")

    missing = [tool for tool in ("docker-registry", "skopeo", "umoci", "buildah", "curl", "pigz")
               if not shutil.which(tool)]  # fmt: skip
    if missing or not PEERS_PY.exists():
        print(f"missing: {' '.join(missing)} {'' if PEERS_PY.exists() else PEERS_PY}; run benchmarks/install.sh",
              file=sys.stderr)  # fmt: skip
        return 2
    sizes = quick_sizes() if args.quick else full_sizes(args.reps)
    out = args.out or BENCH / ("results-quick" if args.quick else "results")
    work = args.work or (Path(tempfile.mkdtemp(prefix="ocipush-bench-")) if args.quick else BENCH / "work")
    work.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only.split(",")) if args.only else set(SCENARIOS)

    bench = Bench(work, sizes, args.quick)
    started = time.perf_counter()
    try:
        if wanted & {"P2", "P3", "P5", "P6", "P8", "Lambda"}:  # the generated layers; P1, P9, P10 bring their own
            bench.images()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("P1", bench.p1_p7), ("P2", bench.p2), ("P3", bench.p3), ("P5", bench.p5), ("P6", bench.p6),
            ("P8", bench.p8), ("P9", bench.p9), ("P10", bench.p10),
            ("PY", lambda: python_deps.run(bench, OCIPUSH, PYTHON, min(3, sizes.reps))),
            ("Lambda", bench.lambda_profile),
            ("S1", lambda: scaling.build_curve(bench)), ("S2", lambda: scaling.push_curve(bench)),
            ("S3", lambda: scaling.pull_curve(bench)), ("S4", lambda: scaling.big_blob(bench)),
            ("S5", lambda: scaling.short_commands(bench)),
            ("SY1", lambda: sync_bench.s1_s2_s3(bench)),
        ]  # fmt: skip
        for key, step in steps:
            if key not in wanted:
                continue
            try:
                step()
            except Exception as err:  # one broken scenario must not lose the others
                print(f"{key}: harness error {err!r}", file=sys.stderr, flush=True)
                bench.scenarios.setdefault(key, {"title": key, "tools": {}, "error": repr(err)})
        if "P2" in wanted or "P3" in wanted:
            bench.scenarios["P4"] = {"title": "Peak RSS during P2 and P3", "tools": {}, "derived": True}
    finally:
        if args.quick and not args.work:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(work / "tmp", ignore_errors=True)
            if not args.keep_data:
                shutil.rmtree(work / "data", ignore_errors=True)
    raw = {
        "meta": {
            "mode": "quick" if args.quick else "full",
            "reps": sizes.reps,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM",
            "loadavg_at_end": os.getloadavg(),
            "python": sys.version.split()[0],
            "tools": tool_versions(),
            "duration_s": round(time.perf_counter() - started, 1),
            "command": "benchmarks/run.sh" + (" --quick" if args.quick else ""),
        },
        "scenarios": bench.scenarios,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "raw.json").write_text(json.dumps(raw, indent=1, default=str))
    report.write(raw, out)
    chart = subprocess.run([str(PEERS_PY), str(BENCH / "chart.py"), str(out / "raw.json"), str(out / "chart.png")],
                           capture_output=True, text=True, check=False)  # fmt: skip
    if chart.returncode != 0:
        print(f"chart failed: {chart.stderr.strip()[-500:]}", file=sys.stderr)
    print(f"report: {out / 'report.md'} ({raw['meta']['duration_s']} s)")
    return 0


if __name__ == "__main__":
    # scaling and sync_bench read OCIPUSH with `import bench`: without this they would import a second copy of this
    # file, whose OCIPUSH would stay the development venv's, whatever --ocipush said.
    sys.modules["bench"] = sys.modules[__name__]
    sys.exit(main())
