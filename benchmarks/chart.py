"""chart.png from raw.json: per scenario, each tool's median time (bars) with min–max whiskers.

    python chart.py raw.json chart.png   (the peers virtualenv has matplotlib)
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import scaling

PANELS = ("P1", "P7", "P2", "P3", "P5", "P6", "P8", "P9", "Lambda")


def main(raw_path: str, png_path: str) -> None:
    with open(raw_path) as handle:
        raw = json.load(handle)
    scenarios = raw["scenarios"]
    panels = [key for key in PANELS if scenarios.get(key, {}).get("tools")]
    panels.append("P4")
    curves = [panel for panel in scaling.PANELS if scenarios.get(panel[1], {}).get("tools")]
    panels += curves
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(15, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, key in zip(axes.flat, panels, strict=False):
        if isinstance(key, tuple):
            scaling.plot(ax, key[0], scenarios[key[1]], key[2])
            continue
        if key == "P4":
            names, values = [], []
            for scen in ("P2", "P3"):
                for name, entry in scenarios.get(scen, {}).get("tools", {}).items():
                    rss = entry.get("maxrss_mb") or {}
                    if rss:
                        names.append(f"{name} ({scen})")
                        values.append(rss["median"])
            ax.barh(names, values, color=["tab:orange" if n.startswith("ocipush") else "tab:gray" for n in names])
            ax.axvline(60, color="red", linestyle="--", linewidth=1)
            ax.set_title("P4: peak RSS (MB), target 60 MB", fontsize=10)
            ax.set_xscale("log")
            ax.invert_yaxis()
            continue
        names, medians, lo, hi = [], [], [], []
        for name, entry in scenarios[key]["tools"].items():
            secs = entry.get("seconds") or {}
            if not secs:
                continue
            scale = 1000 if key == "P9" else 1
            names.append(name)
            medians.append(secs["median"] * scale)
            lo.append((secs["median"] - secs["min"]) * scale)
            hi.append((secs["max"] - secs["median"]) * scale)
        colors = ["tab:orange" if n.startswith("ocipush") else "tab:gray" for n in names]
        ax.barh(names, medians, xerr=[lo, hi], color=colors, capsize=3)
        ax.invert_yaxis()
        unit = "ms" if key == "P9" else "s"
        ax.set_title(f"{key}: {scenarios[key]['title'][:60]} ({unit})", fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"ocipush vs peers, {raw['meta']['mode']} run, {raw['meta']['date']} — median, min–max", fontsize=12)
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
