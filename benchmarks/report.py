"""The Markdown report: one table per scenario (medians, min–max, ratio ocipush/peer) and the targets' verdicts."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import scaling

Scenario = dict[str, Any]
ORDER = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "PY", "Lambda", "S1", "S2", "S3", "S4", "S5",
         "SY1", "SY2", "SY3")


def med(scenario: Scenario | None, tool: str, key: str = "seconds") -> float | None:
    if not scenario:
        return None
    entry = scenario.get("tools", {}).get(tool, {})
    value = entry.get(key, {}).get("median")
    return float(value) if value is not None else None


def extra_values(scenario: Scenario | None, tool: str, key: str) -> list[Any]:
    if not scenario:
        return []
    return [s["extra"][key] for s in scenario.get("tools", {}).get(tool, {}).get("samples", []) if key in s["extra"]]


def _ocipush_name(scenario: Scenario) -> str | None:
    return next((name for name in scenario.get("tools", {}) if name.startswith("ocipush")), None)


def _fmt(value: float | None, unit: str = "s", digits: int = 2) -> str:
    if value is None:
        return "–"
    if unit == "ms":
        return f"{value * 1000:.0f} ms"
    return f"{value:.{digits}f} {unit}".strip()


# ---- targets ---------------------------------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _p4(s: dict[str, Scenario]) -> tuple[float | None, str]:
    peaks = [v for key in ("P2", "P3") for v in [med(s.get(key), "ocipush", "maxrss_mb")] if v is not None]
    peaks_max = [max(extra) for key in ("P2", "P3")
                 if (extra := [x["maxrss_mb"] for x in s.get(key, {}).get("tools", {}).get("ocipush", {})
                               .get("samples", [])])]  # fmt: skip
    if not peaks:
        return None, "not measured"
    return max(peaks), f"{max(peaks):.0f} MB median peak (max {max(peaks_max):.0f} MB)"


def _p6(s: dict[str, Scenario]) -> tuple[float | None, str]:
    scenario = s.get("P6")
    counts = extra_values(scenario, "ocipush", "requests")
    if not counts or not scenario:
        return None, "not measured"
    allowed = scenario["blobs"] + 2
    return statistics.median(counts) / allowed, f"{statistics.median(counts):.0f} requests (limit {allowed})"


def _p8(s: dict[str, Scenario]) -> tuple[float | None, str]:
    parts, worst = [], None
    for tool in ("ocipush [distribution]", "ocipush [ecr]"):
        values = extra_values(s.get("P8"), tool, "resent_pct")
        if values:
            value = statistics.median(values)
            parts.append(f"{tool.split()[1]}: {value:.0f} %")
            if tool.endswith("[ecr]"):
                worst = value / 100
    if worst is None:
        values = extra_values(s.get("P8"), "ocipush [distribution]", "resent_pct")
        worst = statistics.median(values) / 100 if values else None
    return worst, ", ".join(parts) or "not measured"


def _simple(key: str, a: str, b: str | None, invert: bool = False) -> Callable[[dict[str, Scenario]], tuple]:
    def measure(s: dict[str, Scenario]) -> tuple[float | None, str]:
        scenario = s.get(key)
        if b is None:
            value = med(scenario, a)
            return value, _fmt(value, "ms") if value is not None else "not measured"
        ratio = _ratio(med(scenario, b), med(scenario, a)) if invert else _ratio(med(scenario, a), med(scenario, b))
        return ratio, f"{ratio:.2f}" if ratio is not None else "not measured"

    return measure


def _p7(s: dict[str, Scenario]) -> tuple[float | None, str]:
    ratio = _ratio(med(s.get("P7"), "ocipush (rebuild)"), med(s.get("P1"), "ocipush"))
    return ratio, f"{ratio:.2f} × P1" if ratio is not None else "not measured"


def _p5(s: dict[str, Scenario]) -> tuple[float | None, str]:
    ratio = _ratio(med(s.get("P5"), "ocipush"), med(s.get("P5"), "skopeo"))
    verified = extra_values(s.get("P5"), "ocipush", "verified")
    if ratio is None:
        return None, "not measured"
    note = "digests verified" if verified and all(verified) else "DIGESTS NOT VERIFIED"
    return (ratio if verified and all(verified) else float("inf")), f"{ratio:.2f} × skopeo, {note}"


# key: (target text, measure -> (value, shown), limit, direction)
TARGETS: dict[str, tuple[str, Callable[[dict[str, Scenario]], tuple], float, str]] = {
    "P1": ("time ≤ 0.25 × umoci + skopeo", _simple("P1", "ocipush", "umoci + skopeo"), 0.25, "<="),
    "P2": ("throughput ≥ 1.0 × curl", _simple("P2", "ocipush", "curl", invert=True), 1.0, ">="),
    "P3": ("time ≤ 1.1 × 8 parallel curl", _simple("P3", "ocipush", "curl"), 1.1, "<="),
    "P4": ("peak RSS ≤ 60 MB", _p4, 60, "<="),
    "P5": ("time ≤ 0.5 × skopeo, digests verified", _p5, 0.5, "<="),
    "P5 curl": ("time ≤ 1.5 × 8 parallel curl GETs", _simple("P5", "ocipush", "curl"), 1.5, "<="),
    "P6": ("requests ≤ blobs + 2", _p6, 1.0, "<="),
    "P7": ("time ≤ 0.2 × P1", _p7, 0.2, "<="),
    "P8": ("re-sent ≤ 55 %", _p8, 0.55, "<="),
    "P9 import": ("`import ocipush` ≤ 150 ms", _simple("P9", "python -c 'import ocipush'", None), 0.150, "<="),
    "P9 --help": ("`ocipush --help` ≤ 60 ms", _simple("P9", "ocipush --help", None), 0.060, "<="),
    **scaling.TARGETS,
    "SY1": ("sync cold ≤ 0.5 × skopeo sync", _simple("SY1", "ocipush sync", "skopeo sync"), 0.5, "<="),
    "SY2": ("sync warm ≤ 0.2 × skopeo sync", _simple("SY2", "ocipush sync", "skopeo sync"), 0.2, "<="),
}


def verdicts(scenarios: dict[str, Scenario]) -> list[dict[str, Any]]:
    rows = []
    for key, (text, measure, limit, direction) in TARGETS.items():
        value, shown = measure(scenarios)
        met = None if value is None else (value <= limit if direction == "<=" else value >= limit)
        rows.append({"scenario": key, "target": text, "measured": shown, "met": met})
    return rows


# ---- tables ----------------------------------------------------------------------------------------------------


def _time_table(scenario: Scenario, extras: tuple[str, ...] = (), no_ratio: bool = False) -> list[str]:
    tools = scenario.get("tools", {})
    ours = _ocipush_name(scenario)
    ours_med = med(scenario, ours) if ours else None
    header = "| tool | median | min – max | ocipush / tool | peak RSS (median) |" + "".join(f" {e} |" for e in extras)
    lines = [header, "|" + "---|" * (5 + len(extras))]
    for name, entry in tools.items():
        secs = entry.get("seconds") or {}
        if not secs:
            shown = name.replace("|", "\\|")
            lines.append(f"| {shown} | not measured: {entry.get('error', 'no samples')} |" + " |" * (3 + len(extras)))
            continue
        ratio = _ratio(ours_med, secs["median"])
        rss = (entry.get("maxrss_mb") or {}).get("median")
        cells = [
            name.replace("|", "\\|"),
            f"{secs['median']:.3f} s",
            f"{secs['min']:.3f} – {secs['max']:.3f} s",
            "–" if no_ratio else "1.00" if name == ours else (f"{ratio:.2f}" if ratio is not None else "–"),
            f"{rss:.0f} MB" if rss is not None else "–",
        ]
        for key in extras:
            values = [s["extra"][key] for s in entry.get("samples", []) if key in s["extra"]]
            numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            if numeric:
                cells.append(f"{statistics.median(numeric):g}")
            elif values:
                cells.append(", ".join(sorted({str(v) for v in values})))
            else:
                cells.append("–")
        error = ""
        if "error" in entry:
            error = f" (failed after {len(entry.get('samples', []))} runs: {entry['error'][:120]})"
        lines.append("| " + " | ".join(cells) + " |" + error)
    return lines


def _p4_table(scenarios: dict[str, Scenario]) -> list[str]:
    lines = ["| tool | P2 peak RSS median (max) | P3 peak RSS median (max) |", "|---|---|---|"]
    names: list[str] = []
    for key in ("P2", "P3"):
        names += [n for n in scenarios.get(key, {}).get("tools", {}) if n not in names]
    for name in names:
        cells = [name]
        for key in ("P2", "P3"):
            entry = scenarios.get(key, {}).get("tools", {}).get(name)
            rss = (entry or {}).get("maxrss_mb") or {}
            cells.append(f"{rss['median']:.0f} MB ({rss['max']:.0f})" if rss else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _commands(scenario: Scenario) -> list[str]:
    cmds = [(n, e.get("command")) for n, e in scenario.get("tools", {}).items() if e.get("command")]
    if not cmds:
        return []
    return ["", "Commands:", ""] + [f"- {name}: `{cmd}`" for name, cmd in cmds]


def write(raw: dict[str, Any], out: Path) -> Path:
    meta, scenarios = raw["meta"], raw["scenarios"]
    lines = [
        f"# ocipush benchmark report ({meta['mode']} run)",
        "",
        f"{meta['date']} on {meta['machine']}; Python {meta['python']}; {meta['reps']} repetitions per tool, "
        f"tools alternating; run with `{meta['command']}` in {meta['duration_s']:.0f} s "
        f"(load average at the end {', '.join(f'{x:.2f}' for x in meta['loadavg_at_end'])}).",
        "",
        "Times are wall clock (perf_counter around the child), peak RSS is the child's `ru_maxrss` from `wait4` "
        "(the largest process of its tree). Each push goes to a fresh `docker-registry` on 127.0.0.1. "
        "Ratios are ocipush's median over the peer's median (below 1: ocipush is faster). "
        "See [docs/benchmarks.md](../../docs/benchmarks.md) for how to read this. Chart: [chart.png](chart.png), "
        "raw numbers: [raw.json](raw.json).",
        "",
        "Tools: " + "; ".join(f"{k} {v}" for k, v in meta["tools"].items()),
        "",
        "## Targets",
        "",
        "| scenario | target | measured | met |",
        "|---|---|---|---|",
    ]
    for row in verdicts(scenarios):
        met = {True: "yes", False: "**no**", None: "not measured"}[row["met"]]
        lines.append(f"| {row['scenario']} | {row['target']} | {row['measured']} | {met} |")
    extras_for = {
        "P1": ("layer_MB",),
        "P2": ("MB/s",),
        "P3": ("MB/s",),
        "P5": ("verified",),
        "P6": ("requests",),
        "P8": ("resent_pct", "rerun_s", "rerun_requests", "first_run_MB"),
        "P10": ("base_blob_GETs",),
        "Lambda": ("MB/s", "first_request_s", "writes_in_tmp"),
        "SY1": ("images/s",),
        "SY2": ("dest_requests",),
        "SY3": ("images/s", "cluster_start_s", "copy_s", "copy images/s"),
    }
    for key in ORDER:
        scenario = scenarios.get(key)
        lines += ["", f"## {key}: {scenario['title'] if scenario else 'not run'}", ""]
        if key == "P9" and scenario:
            lines += ["Absolute times (the targets are absolute here); the baseline is the interpreter alone.", ""]
        if not scenario:
            lines.append("Not run (see --only).")
            continue
        if "error" in scenario:
            lines.append(f"Harness error: `{scenario['error']}`")
            continue
        if key == "P4":
            lines += _p4_table(scenarios)
            continue
        if key in scaling.KEYS:
            lines += scaling.table(scenario)
        else:
            lines += _time_table(scenario, extras_for.get(key, ()), no_ratio=key == "P9")
        if key in ("P1", "P7") and scenario.get("ocipush_mode"):
            lines += ["", f"ocipush ran as: {scenario['ocipush_mode']}."]
        if key == "P6":
            by_method = extra_values(scenario, "ocipush", "by_method")
            if by_method:
                lines += ["", f"ocipush's requests (first re-push): {by_method[0]}; skopeo's: "
                          f"{(extra_values(scenario, 'skopeo', 'by_method') or ['–'])[0]}."]  # fmt: skip
        if key == "Lambda" and "cap_mb" in scenario:
            lines += ["", f"Address-space cap (RLIMIT_AS): {scenario['cap_mb']} MiB; HOME and the project tree "
                      "read-only; only TMPDIR (and /tmp) writable."]  # fmt: skip
        if scenario.get("note"):
            lines += ["", scenario["note"]]
        lines += _commands(scenario)
    findings = out / "findings.md"  # hand-written profile notes, kept next to the report
    if findings.exists():
        lines += ["", findings.read_text().strip()]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
