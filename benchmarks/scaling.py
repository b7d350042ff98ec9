"""Scaling curves, short commands and buildah: the scenarios that show a regression as a bent curve.

- S1: `ocipush build` of generated trees of small files (1k/10k/100k/300k), time and peak RSS, next to
  `tar | pigz -1` (the streaming floor).
- S2, S3: push and pull of images of 1/8/32/128 small layers: ocipush, skopeo, parallel curl.
- S4: peak RSS of a 4 GiB single-blob push and pull (ocipush and skopeo).
- S5: short commands against skopeo's equivalents on a repository with 1,000 tags (`tags`, `digest`, `inspect`).
- buildah as a P1 peer (`from scratch; copy; commit; push` and `build --layers` + push) and its P7 rebuild.

Stdlib only at import: bench.py (the project's venv) and chart.py (the peers' venv) both import this module.
"""

from __future__ import annotations

import http.client
import re
import shlex
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import data
from measure import Sample

if TYPE_CHECKING:
    from bench import Bench

MiB = data.MiB
BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FIRST_REQUEST = re.compile(r"^first_request_s=([\d.]+)$", re.M)
KEYS = ("S1", "S2", "S3", "S4", "S5")  # the scenarios this module records (report.py renders them as curves)


def _ocipush() -> Path:
    import bench  # the running module (bench.py maps the name to __main__), whose OCIPUSH --ocipush may replace

    return bench.OCIPUSH


def _points(bench: Bench, full: tuple[int, ...], quick: tuple[int, ...]) -> tuple[int, ...]:
    return quick if bench.quick else full


def _reps(bench: Bench, cap: int) -> int:
    return min(bench.sizes.reps, cap)


def _curve(bench: Bench, key: str, title: str, unit: str, points: tuple[int, ...],
           trials: Callable[[int], dict[str, Callable[[], Sample]]], reps: int,
           commands: dict[str, str], **fields: Any) -> None:  # fmt: skip
    """Alternate the tools at each point; record every (tool, point) as the tool `"{tool} @ {point}"`."""
    samples: dict[str, list[Sample]] = {}
    errors: dict[str, str] = {}
    series: list[str] = []
    for point in points:
        print(f"  {key} at {point} {unit}", flush=True)
        tools = trials(point)
        series += [name for name in tools if name not in series]
        got, failed = bench.alternate(reps, tools)
        samples.update({f"{name} @ {point}": runs for name, runs in got.items()})
        errors.update({f"{name} @ {point}": err for name, err in failed.items()})
    bench.record(key, title, samples, errors, {}, points=list(points), series=series, unit=unit,
                 series_commands=commands, **fields)  # fmt: skip


# ---- S1: build time and RSS against the file count ----------------------------------------------------------


def small_files_tree(root: Path, count: int) -> Path:
    """`count` small files (20–120 bytes, deterministic), 1,000 per directory; reused when already complete."""
    stamp = root / ".bench-tree"
    if stamp.is_file() and stamp.read_text() == str(count):
        return root / "tree"
    shutil.rmtree(root, ignore_errors=True)
    tree = root / "tree"
    for n in range(count):
        folder = tree / f"d{n // 1000:04d}"
        if n % 1000 == 0:
            folder.mkdir(parents=True)
        (folder / f"f{n:07d}.txt").write_bytes(f"file {n}\n".encode() * (1 + n % 12))
    stamp.write_text(str(count))
    return tree


def build_curve(bench: Bench) -> None:
    print("S1: build time and peak RSS against the file count", flush=True)
    points = _points(bench, (1_000, 10_000, 100_000, 300_000), (200, 1_000, 3_000))

    def trials(count: int) -> dict[str, Callable[[], Sample]]:
        tree = small_files_tree(bench.work / "data" / f"files-{count}", count)

        def ocipush() -> Sample:
            out = bench.fresh("s1")
            cmd = [str(_ocipush()), "build", "--quiet", "--no-build-file", "--from", "scratch", "--layer",
                   f"{tree}:/", "--output", f"oci:{out / 'oci'}:bench"]  # fmt: skip
            sample = bench.timed("ocipush build", cmd, bench.env(bench.fresh("cache")))
            shutil.rmtree(out)
            sample.extra["us_per_file"] = round(sample.seconds / count * 1e6, 1)
            return sample

        def pigz() -> Sample:
            out = bench.fresh("s1")
            script = f"tar -C {shlex.quote(str(tree))} -cf - . | pigz -1 > {out / 'layer.tar.gz'}"
            sample = bench.timed("tar | pigz -1", ["bash", "-c", script])
            shutil.rmtree(out)
            return sample

        return {"ocipush build": ocipush, "tar | pigz -1": pigz}

    _curve(bench, "S1", "Build of N small files (one layer to an OCI layout): time and peak RSS", "files", points,
           trials, _reps(bench, 3), {"ocipush build": "ocipush build --from scratch --layer TREE:/ --output "
                                     "oci:OUT:bench (fresh cache dir)",
                                     "tar | pigz -1": "tar -C TREE -cf - . | pigz -1 > OUT"})  # fmt: skip


# ---- S2, S3: push and pull against the layer count -----------------------------------------------------------


def _layer_image(bench: Bench, layers: int) -> data.Image:
    size = (16 << 10) if bench.quick else MiB
    return data.random_image(bench.work / "data" / f"layers-{layers}", [size] * layers, seed=100 + layers)


def push_curve(bench: Bench) -> None:
    print("S2: push time against the layer count", flush=True)
    points = _points(bench, (1, 8, 32, 128), (1, 8, 32))

    def trials(layers: int) -> dict[str, Callable[[], Sample]]:
        img = _layer_image(bench, layers)
        return bench.push_tools(img, f"s2-{layers}", ["ocipush", "skopeo", "curl"])

    img = _layer_image(bench, 1)
    _curve(bench, "S2", f"Push of images of N layers of {img.layer_bytes >> 10} KiB each", "layers", points,
           trials, _reps(bench, 3), {**_push_commands(bench, img, "s2"),
                                     "curl": "benchmarks/curl_push.sh: N POST+PUT pairs in parallel"})  # fmt: skip


def _push_commands(bench: Bench, img: data.Image, repo: str) -> dict[str, str]:
    """bench.commands for ocipush and skopeo, the generated layout's path shown as LAYOUT."""
    commands = bench.commands(img, repo, ["ocipush", "skopeo"])
    return {name: cmd.replace(str(img.path), "LAYOUT") for name, cmd in commands.items()}


def pull_tools(
    bench: Bench, host: str, repo: str, img: data.Image, verified_curl: bool = False
) -> dict[str, Callable[[], Sample]]:
    """ocipush pull (digests verified by ocipush, and every blob re-hashed here), skopeo copy, parallel curl GETs,
    and with `verified_curl` the same GETs each followed by `openssl dgst`. ocipush's samples carry `verified` and
    `verification` (blobs checked, bad, missing)."""
    digests = [layer.digest for layer in img.layers]

    def ocipush() -> Sample:
        out = bench.fresh("pull")
        cmd = [str(_ocipush()), "pull", "--quiet", f"{host}/{repo}:bench", f"oci:{out}:bench"]
        sample = bench.timed("ocipush", cmd, bench.env(bench.fresh("cache")))
        checked, bad = data.verify_layout(out)
        missing = [d for d in digests if not (out / "blobs" / "sha256" / d.split(":")[1]).exists()]
        sample.extra["verification"] = {"blobs": checked, "bad": bad, "missing": missing}
        sample.extra["verified"] = not bad and not missing
        shutil.rmtree(out)
        return sample

    def skopeo() -> Sample:
        out = bench.fresh("pull")
        cmd = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{host}/{repo}:bench",
               f"oci:{out}:bench"]  # fmt: skip
        sample = bench.timed("skopeo", cmd)
        shutil.rmtree(out)
        return sample

    def curl(name: str = "curl", *flags: str) -> Sample:
        out = bench.fresh("pull")
        sample = bench.timed(name, [str(BENCH / "curl_pull.sh"), *flags, host, repo, str(out), *digests])
        shutil.rmtree(out)
        return sample

    tools = {"ocipush": ocipush, "skopeo": skopeo, "curl": curl}
    if verified_curl:
        tools[VERIFIED_CURL] = lambda: curl(VERIFIED_CURL, "--verify")
    return tools


VERIFIED_CURL = "curl + openssl dgst"
PULL_COMMANDS = {
    "ocipush": "ocipush pull --quiet 127.0.0.1:PORT/REPO:bench oci:OUT:bench",
    "skopeo": "skopeo copy --quiet --src-tls-verify=false docker://127.0.0.1:PORT/REPO:bench oci:OUT:bench",
    "curl": "benchmarks/curl_pull.sh: one GET per layer, in parallel, not verified",
}


def pull_curve(bench: Bench) -> None:
    print("S3: pull time against the layer count", flush=True)
    points = _points(bench, (1, 8, 32, 128), (1, 8, 32))
    with bench.registry() as reg:

        def trials(layers: int) -> dict[str, Callable[[], Sample]]:
            img = _layer_image(bench, layers)
            repo = f"s3-{layers}"
            subprocess.run(bench.ocipush_push(img, f"{reg.host}/{repo}:bench"), check=True,
                           env=bench.env(bench.fresh("cache")), stdout=subprocess.DEVNULL)  # fmt: skip
            return pull_tools(bench, reg.host, repo, img)

        img = _layer_image(bench, 1)
        _curve(bench, "S3", f"Pull of images of N layers of {img.layer_bytes >> 10} KiB each to an OCI layout",
               "layers", points, trials, _reps(bench, 3), PULL_COMMANDS)  # fmt: skip


# ---- S4: one big blob's peak RSS -----------------------------------------------------------------------------


def big_blob(bench: Bench) -> None:
    size = 64 * MiB if bench.quick else 4096 * MiB
    print(f"S4: peak RSS of a {size / MiB:.0f} MiB single-blob push and pull", flush=True)
    img = data.random_image(bench.work / "data" / "s4", [size], seed=4)
    pushes = bench.push_tools(img, "s4", ["ocipush", "skopeo"])
    with bench.registry() as reg:
        subprocess.run(bench.ocipush_push(img, f"{reg.host}/s4:bench"), check=True,
                       env=bench.env(bench.fresh("cache")), stdout=subprocess.DEVNULL)  # fmt: skip
        pulls = pull_tools(bench, reg.host, "s4", img)
        tools = {"ocipush push": pushes["ocipush"], "skopeo push": pushes["skopeo"],
                 "ocipush pull": pulls["ocipush"], "skopeo pull": pulls["skopeo"]}  # fmt: skip
        samples, errors = bench.alternate(_reps(bench, 2), tools)
    push_cmds = _push_commands(bench, img, "s4")
    commands = {"ocipush push": push_cmds["ocipush"], "skopeo push": push_cmds["skopeo"],
                "ocipush pull": PULL_COMMANDS["ocipush"], "skopeo pull": PULL_COMMANDS["skopeo"]}  # fmt: skip
    bench.record("S4", f"Peak RSS of a {size / MiB:.0f} MiB single-blob push and pull", samples, errors, commands,
                 bytes=img.layer_bytes, pairs=[["push", "ocipush push", "skopeo push"],
                                               ["pull", "ocipush pull", "skopeo pull"]])  # fmt: skip


# ---- S5: short commands --------------------------------------------------------------------------------------


def _tag_many(host: str, repo: str, img: data.Image, count: int) -> None:
    """PUT the image's manifest under `count` tags over one keep-alive connection."""
    body = img.manifest.path.read_bytes()
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        for n in range(count):
            conn.request("PUT", f"/v2/{repo}/manifests/t{n:04d}", body, {"Content-Type": data.MANIFEST_TYPE})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 201:
                raise RuntimeError(f"tagging t{n:04d}: HTTP {resp.status}")
    finally:
        conn.close()


SHORT = (  # (label, ocipush args, skopeo args); REF is HOST/REPO:t0000, REPO is HOST/REPO
    ("tags", ["tags", "REPO"], ["list-tags", "--tls-verify=false", "docker://REPO"]),
    ("digest", ["digest", "REF"], ["inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://REF"]),
    ("inspect", ["inspect", "REF"], ["inspect", "--tls-verify=false", "docker://REF"]),
)


def short_commands(bench: Bench) -> None:
    tags = 100 if bench.quick else 1_000
    print(f"S5: short commands on a repository with {tags} tags", flush=True)
    img = data.random_image(bench.work / "data" / "s5", [64 << 10], seed=5)
    with bench.registry() as reg:
        subprocess.run(bench.ocipush_push(img, f"{reg.host}/s5:t0000"), check=True,
                       env=bench.env(bench.fresh("cache")), stdout=subprocess.DEVNULL)  # fmt: skip
        _tag_many(reg.host, "s5", img, tags)
        repo, ref = f"{reg.host}/s5", f"{reg.host}/s5:t0000"

        def fill(args: list[str]) -> list[str]:
            return [a.replace("REPO", repo).replace("REF", ref) for a in args]

        tools: dict[str, Callable[[], Sample]] = {}
        commands: dict[str, str] = {}
        for label, ours, theirs in SHORT:
            for name, cmd in ((f"ocipush {label}", [str(_ocipush()), *fill(ours)]),
                              (f"skopeo {theirs[0]} ({label})", ["skopeo", *fill(theirs)])):  # fmt: skip
                tools[name] = lambda name=name, cmd=cmd: bench.timed(name, cmd, bench.env(bench.fresh("cache")))
                shown = shlex.join(cmd).replace(str(ROOT) + "/", "").replace(reg.host, "127.0.0.1:PORT")
                commands[name] = shown
        for trial in tools.values():  # warm the page cache and .pyc files
            trial()
        samples, errors = bench.alternate(bench.sizes.reps if bench.quick else bench.sizes.p9_reps, tools)
    pairs = [[label, f"ocipush {label}", f"skopeo {theirs[0]} ({label})"] for label, _ours, theirs in SHORT]
    bench.record("S5", f"Short commands on a repository with {tags:,} tags, against skopeo", samples, errors,
                 commands, tags=tags, pairs=pairs)  # fmt: skip


# ---- buildah as a P1 peer, and its P7 rebuild ---------------------------------------------------------------


BUILDAH_FROM = "buildah (from, copy, commit, push)"
BUILDAH_BUILD = "buildah build --layers + push"
BUILDAH_REBUILD = "buildah build --layers + push (rebuild)"
BUILDAH_COMMANDS = {
    BUILDAH_FROM: "c=$(buildah from scratch) && buildah copy $c TREE / && buildah commit $c IMG && buildah push "
    "--tls-verify=false IMG docker://127.0.0.1:PORT/p1:bench (fresh storage)",
    BUILDAH_BUILD: "buildah build --layers -f Containerfile -t IMG TREE && buildah push --tls-verify=false IMG "
    "docker://127.0.0.1:PORT/p1:bench; Containerfile: FROM scratch, COPY . / (fresh storage)",
}


def buildah_p1(bench: Bench, tree: Path) -> tuple[dict[str, Callable[[], Sample]], list[Sample]]:
    """P1's buildah trials, and the list their `build --layers` rebuilds (P7) are appended to.

    Storage, run root and temp dir live under the trial's scratch dir (tests/support/runtime.py's sandbox config:
    runc, cgroupfs), so every cold build is cold."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support.runtime import Buildah

    rebuilds: list[Sample] = []

    def run(name: str, script: str, tool: Buildah) -> Sample:
        return bench.timed(name, ["bash", "-c", script], tool.env)

    def sandbox() -> tuple[Buildah, Path]:
        root = bench.fresh("buildah")
        return Buildah(root), root

    def cleanup(tool: Buildah, root: Path) -> None:
        tool.cmd("rm", "--all", check=False)
        tool.cmd("rmi", "--all", "--force", check=False)
        shutil.rmtree(root, ignore_errors=True)

    def from_scratch() -> Sample:
        with bench.registry() as reg:
            tool, root = sandbox()
            try:
                script = (f"set -e; c=$(buildah from scratch); buildah copy --quiet $c {shlex.quote(str(tree))} /; "
                          "buildah commit --quiet $c localhost/p1:bench; buildah push --quiet --tls-verify=false "
                          f"localhost/p1:bench docker://{reg.host}/p1:bench; buildah rm $c")  # fmt: skip
                sample = run(BUILDAH_FROM, script, tool)
                from bench import head

                head(f"{reg.url}/v2/p1/manifests/bench", accept=data.MANIFEST_TYPE)
            finally:
                cleanup(tool, root)
        return sample

    def build_layers() -> Sample:
        with bench.registry() as reg:
            tool, root = sandbox()
            try:
                containerfile = root / "Containerfile"
                containerfile.write_text("FROM scratch\nCOPY . /\n")
                script = (f"set -e; buildah build --quiet --layers -f {containerfile} -t localhost/p1:bench "
                          f"{shlex.quote(str(tree))} >/dev/null; buildah push --quiet --tls-verify=false "
                          f"localhost/p1:bench docker://{reg.host}/p1:bench")  # fmt: skip
                first = run(BUILDAH_BUILD, script, tool)
                rebuilds.append(run(BUILDAH_REBUILD, script, tool))
            finally:
                cleanup(tool, root)
        return first

    return {BUILDAH_FROM: from_scratch, BUILDAH_BUILD: build_layers}, rebuilds


# ---- the Lambda profile's time to first request --------------------------------------------------------------


def first_request(log: Path, offset: int) -> float | None:
    """The `first_request_s=` line benchmarks/lambda_push.py printed into the command log after `offset`."""
    with log.open("rb") as handle:
        handle.seek(offset)
        found = FIRST_REQUEST.findall(handle.read().decode(errors="replace"))
    return float(found[-1]) if found else None


# ---- report and chart ----------------------------------------------------------------------------------------


def _median(scenario: dict[str, Any] | None, tool: str, key: str = "seconds") -> float | None:
    value = ((scenario or {}).get("tools", {}).get(tool, {}).get(key) or {}).get("median")
    return float(value) if value is not None else None


def _pair(key: str, label: str) -> Callable[[dict[str, Any]], tuple[float | None, str]]:
    def measure(s: dict[str, Any]) -> tuple[float | None, str]:
        scenario = s.get(key) or {}
        pair = next((p for p in scenario.get("pairs", []) if p[0] == label), None)
        if key == "P6":
            pair = [label, "ocipush", "skopeo"]
        ours, theirs = (_median(scenario, pair[1]), _median(scenario, pair[2])) if pair else (None, None)
        if ours is None or not theirs:
            return None, "not measured"
        return ours / theirs, f"{ours / theirs:.2f} × skopeo ({ours * 1000:.0f} vs {theirs * 1000:.0f} ms)"

    return measure


def _build_rss(which: int) -> Callable[[dict[str, Any]], tuple[float | None, str]]:
    """Peak RSS of `ocipush build` at the `which`-th largest point of S1 (1: largest)."""

    def measure(s: dict[str, Any]) -> tuple[float | None, str]:
        scenario = s.get("S1") or {}
        points = sorted(scenario.get("points", []))
        if len(points) < which:
            return None, "not measured"
        point = points[-which]
        rss = _median(scenario, f"ocipush build @ {point}", "maxrss_mb")
        return rss, f"{rss:.0f} MB at {point:,} files" if rss is not None else "not measured"

    return measure


def _per_file(s: dict[str, Any]) -> tuple[float | None, str]:
    """`ocipush build`'s time per file at S1's largest tree, in µs (start-up included)."""
    scenario = s.get("S1") or {}
    points = scenario.get("points", [])
    seconds = _median(scenario, f"ocipush build @ {max(points)}") if points else None
    if seconds is None:
        return None, "not measured"
    micros = seconds / max(points) * 1e6
    return micros, f"{micros:.0f} µs per file at {max(points):,} files"


def _first_request(s: dict[str, Any]) -> tuple[float | None, str]:
    tools = (s.get("Lambda") or {}).get("tools", {})
    values = [x["extra"]["first_request_s"] for entry in tools.values() for x in entry.get("samples", [])
              if x["extra"].get("first_request_s") is not None]  # fmt: skip
    if not values:
        return None, "not measured"
    value = statistics.median(values)
    return value, f"{value * 1000:.0f} ms after process start"


TARGETS: dict[str, tuple[str, Callable[[dict[str, Any]], tuple], float, str]] = {
    "S5 tags": ("`tags` ≤ 3 × `skopeo list-tags`", _pair("S5", "tags"), 3.0, "<="),
    "S5 digest": ("`digest` ≤ 3 × `skopeo inspect --format {{.Digest}}`", _pair("S5", "digest"), 3.0, "<="),
    "S5 inspect": ("`inspect` ≤ 3 × `skopeo inspect`", _pair("S5", "inspect"), 3.0, "<="),
    "P6 time": ("unchanged re-push ≤ 3 × skopeo copy", _pair("P6", "re-push"), 3.0, "<="),
    "Lambda start": ("first request ≤ 0.15 s after process start", _first_request, 0.15, "<="),
    "S1 RSS": ("build peak RSS ≤ 60 MB at the largest tree", _build_rss(1), 60, "<="),
    "S1 RSS 2": ("build peak RSS ≤ 60 MB at the second largest tree", _build_rss(2), 60, "<="),
    "S1 time": ("build time per file ≤ 29 µs at the largest tree (absolute: round 1's rate)", _per_file, 29, "<="),
}


def table(scenario: dict[str, Any]) -> list[str]:
    """A curve: one row per point, each series' median time and peak RSS, ocipush / peer ratios. Pairs: one row
    per pair."""
    if "pairs" in scenario:
        lines = ["| command | ocipush median | peer median | ocipush / peer | ocipush RSS | peer RSS |",
                 "|---|---|---|---|---|---|"]  # fmt: skip
        for label, ours, theirs in scenario["pairs"]:
            a, b = _median(scenario, ours), _median(scenario, theirs)
            ra, rb = _median(scenario, ours, "maxrss_mb"), _median(scenario, theirs, "maxrss_mb")
            lines.append(f"| {label} | {_s(a)} | {_s(b)} | {a / b:.2f} |" if a is not None and b else
                         f"| {label} | {_s(a)} | {_s(b)} | – |")  # fmt: skip
            lines[-1] += f" {_mb(ra)} | {_mb(rb)} |"
        return lines
    series = scenario.get("series", [])
    shown = {name: name.replace("|", "\\|") for name in series}
    ours = next((name for name in series if name.startswith("ocipush")), None)
    peers = [name for name in series if name != ours]
    header = f"| {scenario.get('unit', 'point')} |" + "".join(f" {shown[name]} |" for name in series)
    header += "".join(f" ocipush / {shown[name]} |" for name in peers)
    header += "".join(f" {shown[name]} RSS |" for name in series)
    lines = [header, "|" + "---|" * (1 + 2 * len(series) + len(peers))]
    for point in scenario.get("points", []):
        times = {name: _median(scenario, f"{name} @ {point}") for name in series}
        rss = {name: _median(scenario, f"{name} @ {point}", "maxrss_mb") for name in series}
        cells = [f"{point:,}"] + [_s(times[name]) for name in series]
        for name in peers:
            a, b = times.get(ours) if ours else None, times[name]
            cells.append(f"{a / b:.2f}" if a is not None and b else "–")
        cells += [_mb(rss[name]) for name in series]
        lines.append("| " + " | ".join(cells) + " |")
    failed = {name: entry["error"] for name, entry in scenario.get("tools", {}).items() if "error" in entry}
    lines += [f"\n{name} failed: {err[:160]}" for name, err in failed.items()]
    commands = scenario.get("series_commands", {})
    if commands:
        lines += ["", "Commands:", ""] + [f"- {name}: `{cmd}`" for name, cmd in commands.items()]
    return lines


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f} s"


def _mb(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} MB"


# (panel title, scenario key, metric): the chart's curves (log-log), or pairs as bars
PANELS = (
    ("S1: build time (s) vs files", "S1", "seconds"),
    ("S1: build peak RSS (MB) vs files, target 60", "S1", "maxrss_mb"),
    ("S2: push time (s) vs layers", "S2", "seconds"),
    ("S3: pull time (s) vs layers", "S3", "seconds"),
    ("S4: big blob peak RSS (MB)", "S4", "maxrss_mb"),
    ("S5: short commands (ms)", "S5", "seconds"),
)


def plot(ax: Any, title: str, scenario: dict[str, Any], metric: str) -> None:
    """Draw one panel on a matplotlib Axes (chart.py owns matplotlib)."""
    ax.set_title(title, fontsize=10)
    if "pairs" in scenario:
        names, values = [], []
        scale = 1000 if metric == "seconds" else 1
        for _label, ours, theirs in scenario["pairs"]:
            for name in (ours, theirs):
                value = _median(scenario, name, metric)
                if value is not None:
                    names.append(name)
                    values.append(value * scale)
        ax.barh(names, values, color=["tab:orange" if n.startswith("ocipush") else "tab:gray" for n in names])
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
        return
    peers = iter(("tab:blue", "tab:green", "tab:purple", "tab:gray"))
    for name in scenario.get("series", []):
        xs, ys = [], []
        for point in scenario.get("points", []):
            value = _median(scenario, f"{name} @ {point}", metric)
            if value is not None:
                xs.append(point)
                ys.append(value)
        color = "tab:orange" if name.startswith("ocipush") else next(peers)
        ax.plot(xs, ys, marker="o", label=name, color=color)
    ax.set_xscale("log")
    ax.set_xticks(scenario.get("points", []), [f"{p:,}" for p in scenario.get("points", [])], fontsize=8)
    ax.minorticks_off()
    if metric == "maxrss_mb":  # memory: linear from 0, with the target line
        ax.axhline(60, color="red", linestyle="--", linewidth=1)
        ax.set_ylim(bottom=0)
    else:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
