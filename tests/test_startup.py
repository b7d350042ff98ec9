"""Start-up of the short commands and of a library push (issue #14), checked by what they load, never by timing
(the benchmark suite times them: S5 and the Lambda profile). Each probe runs in a fresh interpreter, as a user's
command or a Lambda's cold start would, and reports which heavy modules are in `sys.modules` afterwards."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from transferhelpers import make_image, modules_after_pushes, options, push_two_platform_index, run_cli

from ocipush import api
from ocipush.cli import build_parser
from ocipush.document import ManifestDocument, config_of
from ocipush.errors import InvalidManifestError
from ocipush.layout import OCILayout
from ocipush.localregistry import LocalRegistry
from ocipush.mediatypes import ACCEPT_MANIFESTS, OCI_MANIFEST

# What a query to a plain-HTTP registry never needs: pydantic's models, the transfer engine and local media (with
# their locations' classes), the converter, the AWS SDK, YAML, signing, Dask, the CLI modules of other command
# groups, TLS, the standard library's HTTP stack and file helpers, logging (no warning came), shutil (argparse's
# terminal width), inspect (which dataclasses would load: ocipush.cli.deferred), typing (the path's modules use it
# for type checkers only) and base64 (Basic auth and docker config entries only).
HEAVY = (
    "pydantic", "ocipush.models", "ocipush.transfer", "ocipush.layout", "ocipush.ops.convert", "ocipush.extract",
    "ocipush.locations", "boto3", "botocore", "yaml", "nacl", "dask", "ocipush.cli.ecr", "ocipush.cli.sign",
    "ocipush.cli.transfer",
    "ssl", "http.client", "urllib.request", "email.utils", "tempfile", "subprocess", "random", "concurrent.futures",
    "hashlib", "logging", "shutil", "inspect", "typing", "base64",
)  # fmt: skip

# Runs each command line of argv[2] (JSON) through the CLI in this one process, and after each prints a line
# `loaded: [...]` naming the HEAVY modules loaded so far.
CLI_PROBE = """
import json, sys
from ocipush.cli import main
for command in json.loads(sys.argv[2]):
    code = main(command)
    print("loaded:", json.dumps([code, [m for m in sys.argv[1].split(",") if m in sys.modules]]), flush=True)
"""


def _probe_cli(*commands: list[str], watch: tuple[str, ...] = HEAVY) -> list[tuple[int, list[str]]]:
    done = subprocess.run([sys.executable, "-c", CLI_PROBE, ",".join(watch), json.dumps(commands)],
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    lines = [line.removeprefix("loaded: ") for line in done.stdout.splitlines() if line.startswith("loaded: ")]
    found = [json.loads(line) for line in lines]
    assert len(found) == len(commands), done.stdout + done.stderr
    return [(code, loaded) for code, loaded in found]


def test_tags_digest_inspect_load_nothing_heavy(registry: LocalRegistry, tmp_path: Path) -> None:
    make_image(tmp_path / "img")
    api.push(f"oci:{tmp_path / 'img'}:v1", f"{registry.host}/short:v1", options=options(tmp_path))
    repo = f"{registry.host}/short"
    results = _probe_cli(["tags", repo], ["digest", f"{repo}:v1"], ["catalog", registry.host],
                         ["inspect", f"{repo}:v1"], ["inspect", "--config", f"{repo}:v1"],
                         # the control: picking a platform parses one with the models, and the probe sees them
                         ["inspect", "--platform", "linux/amd64", f"{repo}:v1"])  # fmt: skip
    assert [code for code, _ in results] == [0] * 6
    assert [loaded for _, loaded in results[:3]] == [[]] * 3
    # inspect hashes the manifest it received (its digest): hashlib, and nothing else
    assert [loaded for _, loaded in results[3:5]] == [["hashlib"]] * 2
    assert "ocipush.models" in results[5][1] and "pydantic" not in results[5][1]


def test_push_pull_and_build_push_load_no_pydantic_and_no_tempfile(registry: LocalRegistry, tmp_path: Path) -> None:
    """The documents and build settings are ocipush.records dataclasses: pydantic (~80 ms to import and build) is
    for the ECR management calls only. Nor is inspect loaded (~5 ms with ast and dis): dataclasses uses it only to
    write a docstring for a dataclass that has none, and every dataclass of ours has one. Push and pull move blobs
    on threads of their own (ocipush.workers), without concurrent.futures and the logging it loads (~6 ms)."""
    make_image(tmp_path / "img")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "hello.txt").write_text("hello\n")
    repo = f"{registry.host}/records"
    results = _probe_cli(["push", "--quiet", f"oci:{tmp_path / 'img'}:v1", f"{repo}:v1"],
                         ["pull", "--quiet", f"{repo}:v1", f"oci:{tmp_path / 'out'}:v1"],
                         ["build-push", "--quiet", "--no-build-file", "--from", f"{repo}:v1", "--layer",
                          f"{tmp_path / 'app'}:/app", "--env", "A=1", "--tag", f"{repo}:app"],
                         watch=("pydantic", "ocipush.models", "ocipush.build.spec", "tempfile", "shutil",
                                "inspect", "concurrent.futures", "logging"))  # fmt: skip
    assert [code for code, _ in results] == [0, 0, 0], results
    # the documents were parsed (the models loaded), and the build settings read, without pydantic; push and pull
    # name their temporary files without tempfile, and clean up without shutil (~5 ms with what they load)
    assert [loaded for _, loaded in results[:2]] == [["ocipush.models"]] * 2
    assert {"ocipush.models", "ocipush.build.spec"} <= set(results[2][1])
    assert not {"pydantic", "inspect"} & set(results[2][1])
    pulled = OCILayout(str(tmp_path / "out")).resolve("v1")
    assert pulled.digest == api.resolve_digest(f"{repo}:v1", options=options(tmp_path))


def test_helpers_on_every_path_import_what_they_use_when_they_use_it(tmp_path: Path) -> None:
    """Retry, digest, credential, layout and cache-dir helpers are on the path of every registry command or push;
    what only some calls need (email's date parser for a Retry-After date, random for a backoff, hashlib for a
    hash, subprocess for a credential helper, shutil for a clean-up) is imported by the call that needs it; an
    atomic write names its temporary file itself and never imports tempfile."""
    modules = ("ocipush.registry.retry", "ocipush.digest", "ocipush.registry.credentials", "ocipush.layout",
               "ocipush.cachedir")  # fmt: skip
    later = ("email.utils", "random", "hashlib", "subprocess", "tempfile", "shutil")
    code = (
        f"import json, sys\nimport {', '.join(modules)}\n"
        f"print(json.dumps([m for m in {later!r} if m in sys.modules]))\n"
        "from ocipush.digest import sha256_of\n"
        "from ocipush.fsutil import atomic_write_bytes\n"
        "from ocipush.registry.retry import RetryBudget\n"
        "sha256_of(b'x')\n"
        "atomic_write_bytes(sys.argv[1], b'x')\n"
        "RetryBudget(3, 60.0).next_delay('Wed, 21 Oct 2015 07:28:00 GMT')\n"
        "RetryBudget(3, 60.0).next_delay()\n"
        f"print(json.dumps([m for m in {later!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "written")], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    before, after = (json.loads(line) for line in done.stdout.splitlines())
    assert before == []
    # the control: using them loads them, and the probe sees it
    assert {"email.utils", "random", "hashlib"} <= set(after) and "tempfile" not in after
    assert (tmp_path / "written").read_bytes() == b"x"


# The CLI as the console script runs it (main() reading sys.argv). The exit handler shows that exit handlers ran;
# the object that writes when it is freed shows that the interpreter's teardown ran (it frees __main__'s names).
# With "embedded", main() is given its arguments, as a program embedding it does.
ENTRY_PROBE = """
import atexit, os, sys
atexit.register(lambda: print("exit handlers ran", file=sys.stderr))
class Freed:
    def __del__(self, write=os.write):
        write(2, b"teardown ran\\n")
probe = Freed()
from ocipush.cli import main
embedded = sys.argv[1] == "embedded"
del sys.argv[1]
sys.exit(main(sys.argv[1:]) if embedded else main())
"""


def test_commands_leave_without_the_teardown_and_deliver_all_their_output(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    make_image(tmp_path / "img")
    tags = [f"t{i:03d}" for i in range(150)]
    api.push(f"oci:{tmp_path / 'img'}:v1", f"{registry.host}/quick:v1", tags=tags, options=options(tmp_path))
    repo = f"{registry.host}/quick"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", ENTRY_PROBE, *args], capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    out = tmp_path / "out"
    listed, embedded = run("script", "tags", repo), run("embedded", "tags", repo)
    missing = run("script", "digest", f"{repo}:nope")
    pulled = run("script", "pull", "--quiet", f"{repo}:v1", f"oci:{out}:v1")
    for quick in (listed, pulled):  # left at once, exit handlers run, every line delivered
        assert quick.returncode == 0, quick.stderr
        assert "exit handlers ran" in quick.stderr and "teardown ran" not in quick.stderr
    assert sorted(listed.stdout.split()) == sorted(["v1", *tags])
    pulled_index, source_index = OCILayout(str(out)).read_index(), OCILayout(str(tmp_path / "img")).read_index()
    assert [d.digest for d in pulled_index.manifests] == [d.digest for d in source_index.manifests]
    blobs = list((out / "blobs" / "sha256").iterdir())
    assert len(blobs) >= 3 and all(hashlib.sha256(b.read_bytes()).hexdigest() == b.name for b in blobs)
    # the controls: embedded, and a failed command, end the regular way
    assert embedded.returncode == 0 and sorted(embedded.stdout.split()) == sorted(listed.stdout.split())
    assert "teardown ran" in embedded.stderr
    assert missing.returncode == 3 and "exit handlers ran" in missing.stderr and "teardown ran" in missing.stderr


def _get(url: str, accept: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        body: bytes = response.read()
        return body


def _expected_inspection(host: str, repo: str, tag: str) -> str:
    """What `inspect` printed before the short path existed, rebuilt from the registry's own bytes."""
    raw = _get(f"http://{host}/v2/{repo}/manifests/{tag}", ACCEPT_MANIFESTS)
    manifest = json.loads(raw)
    config = None
    if "config" in manifest:
        config = json.loads(_get(f"http://{host}/v2/{repo}/blobs/{manifest['config']['digest']}"))
    shown = {"reference": f"{host}/{repo}:{tag}", "digest": f"sha256:{hashlib.sha256(raw).hexdigest()}",
             "mediaType": manifest["mediaType"], "manifest": manifest, "config": config}  # fmt: skip
    return json.dumps(shown, indent=2) + "\n"


def test_inspect_output_is_the_same_on_the_short_path(registry: LocalRegistry, tmp_path: Path) -> None:
    """The short path (no models) prints byte for byte what the model path prints, for an image and an index."""
    make_image(tmp_path / "img")
    ref = f"{registry.host}/same:v1"
    api.push(f"oci:{tmp_path / 'img'}:v1", ref, options=options(tmp_path))
    short = run_cli("inspect", ref)
    assert short.returncode == 0, short.stderr
    assert short.stdout == _expected_inspection(registry.host, "same", "v1")
    # --platform on a single image takes the general path (the transfer engine's source, the models' descriptors)
    assert run_cli("inspect", "--platform", "linux/amd64", ref).stdout == short.stdout
    assert run_cli("inspect", "--config", ref).stdout == json.dumps(json.loads(short.stdout)["config"], indent=2) + "\n"
    raw = subprocess.run([sys.executable, "-m", "ocipush.cli", "inspect", "--raw", ref], capture_output=True,
                         check=True, timeout=120).stdout  # fmt: skip
    assert raw == _get(f"http://{registry.host}/v2/same/manifests/v1", ACCEPT_MANIFESTS)

    index = push_two_platform_index(registry.host, tmp_path, repo="sameindex")
    shown = run_cli("inspect", index)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == _expected_inspection(registry.host, "sameindex", "1")
    assert json.loads(shown.stdout)["config"] is None


def test_config_of_reads_the_raw_json_and_refuses_what_is_not_a_descriptor() -> None:
    """The short path takes the config's descriptor from the exact bytes. A registry refuses such manifests on PUT
    (distribution answers 400), so the malformed ones are checked here on the parser alone."""
    manifest = {"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:" + "a" * 64, "size": 7}}
    assert config_of(ManifestDocument(json.dumps(manifest).encode(), OCI_MANIFEST)) == ("sha256:" + "a" * 64, 7)
    for bad in (b"[]", b"{}", b'{"config": 1}', b'{"config": {"digest": "sha256:1", "size": 1}}',
                b'{"config": {"digest": "sha256:' + b"a" * 64 + b'", "size": -1}}', b"not json"):  # fmt: skip
        with pytest.raises(InvalidManifestError, match=r"^malformed .* document: config: "):
            config_of(ManifestDocument(bad, OCI_MANIFEST))


# A Lambda handler's push: the time before its first request is all imports; the converter (and with it the
# decompressors, the layer extractor and more models) must not load when nothing is converted.
def test_library_push_loads_no_converter(registry: LocalRegistry, tmp_path: Path) -> None:
    make_image(tmp_path / "img")
    heavy = ("ocipush.ops.convert", "ocipush.extract", "boto3", "botocore", "yaml", "nacl", "dask", "ocipush.cli")
    target = f"{registry.host}/lambda:v1"
    first, second = modules_after_pushes(f"oci:{tmp_path / 'img'}:v1", [(target, None), (f"{target}-gzip", "gzip")],
                                         tmp_path / "cache", heavy)  # fmt: skip
    assert first == []
    assert "ocipush.ops.convert" in second and "ocipush.extract" in second  # the control: a conversion loads them


def test_help_loads_no_library_and_no_dataclasses() -> None:
    """`ocipush --help` imports every command's CLI module (to list them), so those modules import nothing heavy at
    the top: no library modules beyond the CLI's own, no dataclasses (4 ms with `inspect`), no sockets."""
    probe = ("import runpy, sys; sys.argv = ['ocipush', '--help']\n"
             "try:\n    runpy.run_module('ocipush.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('loaded:', sorted(m for m in sys.modules if m in ('dataclasses', 'socket', 'pydantic', "
             "'ocipush.registry.wire', 'ocipush.models', 'ocipush.transfer')))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert "usage: ocipush" in done.stdout
    assert done.stdout.splitlines()[-1] == "loaded: []", done.stdout[-300:]


def test_help_lists_the_commands_without_building_their_parsers() -> None:
    """`ocipush --help` (and a missing or mistyped command) registers the commands on sketches: the same help, but
    argparse builds only the top-level parser's arguments, not the ~950 of every command's parser."""
    assert build_parser(listing=True).format_help() == build_parser().format_help()
    probe = ("import argparse, contextlib, io\nfrom ocipush.cli import main\ncalls = []\n"
             "real = argparse.ArgumentParser.add_argument\n"
             "argparse.ArgumentParser.add_argument = lambda self, *a, **k: calls.append(a) or real(self, *a, **k)\n"
             "for words in (['--help'], ['pusj'], ['push', '--help']):\n"
             "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()), "
             "contextlib.redirect_stderr(io.StringIO()):\n"
             "        main(words)\n"
             "    print(len(calls))\n    calls.clear()\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    listed, mistyped, push = (int(n) for n in done.stdout.split())
    assert listed == mistyped == 4  # -h, --version, --verbose, --debug
    assert push > 20  # the control: a command's own help builds its parser


def test_tags_compiles_only_the_patterns_it_uses(registry: LocalRegistry, tmp_path: Path) -> None:
    """Patterns compile on first use (ocipush.lazy.Pattern): tags against a plain-HTTP, anonymous registry compiles
    the reference's host and repository patterns, and none of redaction, challenges, paging or ECR hosts."""
    make_image(tmp_path / "img")
    api.push(f"oci:{tmp_path / 'img'}:v1", f"{registry.host}/patterns:v1", options=options(tmp_path))
    probe = (
        "import sys\nfrom ocipush.cli import main\n"
        f"main(['tags', '{registry.host}/patterns'])\n"
        "from ocipush import digest, log, reference\nfrom ocipush.registry import auth, client, ecr\n"
        "patterns = {'host': reference._HOST_RE, 'repository': reference._REPO_RE, 'tag': reference._TAG_RE,\n"
        "            'digest': digest._DIGEST_RE, 'url': log._URL, 'challenge': auth._PARAM_RE,\n"
        "            'link': client._LINK_RE, 'ecr': ecr._PRIVATE_HOST}\n"
        "print('compiled:', sorted(k for k, p in patterns.items() if p._compiled is not None))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == ["v1", "compiled: ['host', 'repository']"]


DEFERRED_PROBE = """
import sys
from dataclasses import dataclass
print("loaded before use:", "inspect" in sys.modules)

@dataclass
class Undocumented:
    name: str
    size: int = 0

print("docstring:", Undocumented.__doc__)
print("real module now:", sys.modules["dataclasses"].inspect is sys.modules["inspect"])
"""


def test_dataclasses_load_inspect_only_when_they_use_it() -> None:
    """The command line imports dataclasses with a stand-in for inspect; a dataclass without a docstring (the one
    use) then loads the real module and gets the docstring dataclasses always writes."""
    prelude = "from ocipush.cli import deferred; deferred.import_dataclasses_without_inspect()"
    done = subprocess.run([sys.executable, "-c", prelude + DEFERRED_PROBE], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.splitlines() == [
        "loaded before use: False",
        "docstring: Undocumented(name: str, size: int = 0)",
        "real module now: True",
    ]
