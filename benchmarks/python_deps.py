"""PY: a Python project's dependencies as a layer, first build and unchanged rebuild, from a local wheelhouse.

ocipush `build-push --requirements` against what a user does by hand without it: `pip install --target` with the
same platform flags, then `ocipush build-push --layer DEPS:/opt/python`. The full run's wheelhouse is real:
wheels of numpy, pandas, boto3, pydantic and requests for CPython 3.12 on manylinux x86_64 (≥ 30 MB), fetched
once from PyPI with `pip download` and kept in the user's cache; the quick run (CI) uses a small synthetic one."""

from __future__ import annotations

import os
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench import Bench
    from measure import Sample

BENCH = Path(__file__).resolve().parent
REQUIREMENTS = "numpy==2.1.3\npandas==2.2.3\nboto3==1.35.71\npydantic==2.10.2\nrequests==2.32.3\n"
PLATFORM = ["--python-version", "3.12", "--implementation", "cp", "--abi", "cp312", "--only-binary=:all:",
            "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
            "--platform", "manylinux2014_x86_64"]  # fmt: skip


def _wheelhouse(quick: bool, python: Path) -> tuple[Path, str]:
    """(wheelhouse dir, requirements text)."""
    if quick:
        sys.path.insert(0, str(BENCH.parent / "tests"))
        from support.wheels import make_wheel

        house = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ocipush-bench" / "wheels-quick"
        house.mkdir(parents=True, exist_ok=True)
        payload = os.urandom(1 << 20).hex()  # incompressible-ish text, 2 MB per wheel
        for n in range(3):
            make_wheel(house, f"pkg{n}", "1.0", {f"pkg{n}/__init__.py": "X = 1\n", f"pkg{n}/data.txt": payload})
        return house, "pkg0==1.0\npkg1==1.0\npkg2==1.0\n"
    house = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ocipush-bench" / "wheels-py312"
    stamp = house / ".requirements"
    if not stamp.is_file() or stamp.read_text() != REQUIREMENTS:
        house.mkdir(parents=True, exist_ok=True)
        requirements = house / "requirements.in"
        requirements.write_text(REQUIREMENTS)
        subprocess.run([str(python), "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "-d",
                        str(house), *PLATFORM, "-r", str(requirements)], check=True)  # fmt: skip
        stamp.write_text(REQUIREMENTS)
    return house, REQUIREMENTS


def run(bench: Bench, ocipush: Path, python: Path, reps: int) -> None:
    print("PY: python dependencies as a layer", flush=True)
    house, requirements_text = _wheelhouse(bench.quick, python)
    wheel_mb = sum(p.stat().st_size for p in house.glob("*.whl")) / 1e6
    project = bench.fresh("py-project")
    (project / "requirements.txt").write_text(requirements_text)
    (project / "app").mkdir()
    (project / "app" / "main.py").write_text("import sys\nprint(sys.version)\n")
    requirements = str(project / "requirements.txt")
    app = f"{project / 'app'}:/app"
    deps_flags = ["--python-version", "3.12", "--platform", "linux/amd64", "--requirements", requirements,
                  "--find-links", str(house)]  # fmt: skip

    def ocipush_cmd(ref: str) -> list[str]:
        return [str(ocipush), "build-push", "--quiet", "--no-build-file", *deps_flags, "--layer", app, "--tag", ref]

    def by_hand_cmd(ref: str, target: Path) -> list[str]:
        script = (
            f"rm -rf {target} && {shlex.quote(str(python))} -m pip install --quiet --disable-pip-version-check "
            f"--no-compile --target {target} {shlex.join(PLATFORM)} --find-links {house} -r {requirements} && "
            f"{shlex.quote(str(ocipush))} build-push --quiet --no-build-file --layer {target}:/opt/python "
            f"--layer {app} --env PYTHONPATH=/opt/python --platform linux/amd64 --tag {ref}"
        )
        return ["sh", "-c", script]

    env_extra = {"PIP_NO_INDEX": "1"}

    rebuilds: dict[str, list[Sample]] = {"ocipush rebuild": [], "pip --target + build-push rebuild": []}

    def trial(name: str, make: Callable[[str], list[str]]) -> Callable[[], Sample]:
        def one() -> Sample:
            # The first build, then the unchanged rebuild against the same cache and registry (as P1 and P7).
            with bench.registry() as reg:
                env = {**bench.env(bench.fresh("cache")), **env_extra}
                ref = f"{reg.host}/py/app:bench"
                first = bench.timed(name, make(ref), env)
                rebuilds[f"{name} rebuild"].append(bench.timed(f"{name} rebuild", make(ref), env))
                return first

        return one

    tools = {
        "ocipush": trial("ocipush", ocipush_cmd),
        "pip --target + build-push": trial("pip --target + build-push", lambda ref: by_hand_cmd(ref, project / "deps")),
    }
    samples, errors = bench.alternate(reps, tools)
    samples.update(rebuilds)
    commands = {
        "ocipush": "ocipush build-push --python-version 3.12 --platform linux/amd64 --requirements R "
        "--find-links WHEELS --layer app:/app --tag REF (PIP_NO_INDEX=1)",
        "pip --target + build-push": "pip install --no-compile --target DEPS --python-version 3.12 --platform "
        "manylinux… --only-binary=:all: --find-links WHEELS -r R && ocipush build-push --layer DEPS:/opt/python "
        "--layer app:/app --tag REF",
        "ocipush rebuild": "the same ocipush command again, same cache and registry",
        "pip --target + build-push rebuild": "the same two commands again, same cache and registry",
    }
    bench.record("PY", f"Python dependencies as a layer ({wheel_mb:.0f} MB of wheels), first build and unchanged "
                 "rebuild", samples, errors, commands, wheel_mb=round(wheel_mb, 1), note=_pairs(samples))  # fmt: skip


def _pairs(samples: dict[str, list[Sample]]) -> str:
    """The ratios that matter here: each ocipush figure over the same step done by hand."""

    def median(name: str) -> float | None:
        runs = [s.seconds for s in samples.get(name, [])]
        return statistics.median(runs) if runs else None

    parts = []
    for label, ours, theirs in (
        ("first build", "ocipush", "pip --target + build-push"),
        ("unchanged rebuild", "ocipush rebuild", "pip --target + build-push rebuild"),
    ):
        a, b = median(ours), median(theirs)
        parts.append(f"{label} {a / b:.2f}" if a is not None and b else f"{label} not measured")
    return "ocipush / by hand (medians): " + ", ".join(parts) + "."
