"""Flags a newcomer reaches for: --profile and --aws-profile everywhere, only the flags a command uses, help for
every choice, "did you mean" for a mistyped command, and the exit codes that are not "other error"."""

from __future__ import annotations

from pathlib import Path

import pytest
from transferhelpers import make_image, run_cli

from ocipush.cli import EXIT_CODES_HELP, build_parser
from ocipush.localregistry import LocalRegistry


@pytest.mark.parametrize("flag", ["--profile", "--aws-profile"])
def test_both_profile_spellings_everywhere(flag: str) -> None:
    parser = build_parser()
    assert parser.parse_args(["push", "a", "b", flag, "ci"]).aws_profile == "ci"
    assert parser.parse_args(["digest", "r", flag, "ci"]).aws_profile == "ci"
    assert parser.parse_args(["build-push", "--tag", "h/r:1", flag, "ci"]).aws_profile == "ci"
    assert parser.parse_args(["ecr", "describe-repositories", flag, "ci"]).profile == "ci"


def test_profile_reaches_boto3(aws_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "aws-config"
    # moto's dummy keys (conftest AWS_DUMMY): a named profile takes its keys from its own section
    config.write_text(
        "[profile ci]\nregion = eu-west-3\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    env = {"AWS_CONFIG_FILE": str(config)}
    for flag in ("--profile", "--aws-profile"):
        done = run_cli("ecr", "create-repository", f"profile-{flag[2:]}", flag, "ci", "--json", env=env)
        assert done.returncode == 0, done.stderr
        assert ":eu-west-3:" in done.stdout  # the profile's Region was used
    missing = run_cli("ecr", "describe-repositories", "--aws-profile", "nope", env=env)
    assert missing.returncode == 4 and "(nope) could not be found" in missing.stderr


def test_commands_list_only_flags_they_use() -> None:
    for command in ("delete", "tags", "catalog", "inspect", "digest", "tag", "untag", "login", "logout"):
        text = run_cli(command, "--help").stdout
        assert "--jobs" not in text and "--chunk-size" not in text, command
    for command in ("push", "pull", "copy", "build-push"):
        assert "--jobs" in run_cli(command, "--help").stdout
    copy_help = " ".join(run_cli("copy", "--help").stdout.split())
    assert "source what to copy: a registry reference, oci:DIR[:tag] or docker-archive:FILE[:ref]" in copy_help
    assert "target where to copy it" in copy_help
    create = " ".join(run_cli("ecr", "create-repository", "--help").stdout.split())
    assert "--image-tag-mutability MODE whether a pushed tag may be moved" in create
    assert "--encryption {AES256,KMS,KMS_DSSE} how ECR encrypts the images at rest" in create


def test_did_you_mean(registry: LocalRegistry, tmp_path: Path) -> None:
    typo = run_cli("pus", "x", "y")
    assert typo.returncode == 2 and "did you mean 'push'?" in typo.stderr
    nested = run_cli("ecr", "create-repo", "x")
    assert nested.returncode == 2 and "did you mean 'create-repository'?" in nested.stderr
    nothing_close = run_cli("zzzzzz")
    assert nothing_close.returncode == 2 and "did you mean" not in nothing_close.stderr
    source, _ = make_image(tmp_path / "src")  # a correct command is untouched
    assert run_cli("push", source.path, f"{registry.host}/x:1", "--cache-dir", str(tmp_path / "c")).returncode == 0


def test_exit_codes_for_scan_gate_and_partial_delete_are_listed() -> None:
    text = run_cli("--help").stdout
    assert "11 a gate said no" in text and "scan --fail-on" in text and "12 partly failed" in text
    assert "12 partly failed" in EXIT_CODES_HELP
