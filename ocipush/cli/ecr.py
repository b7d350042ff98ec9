"""`ocipush ecr …`: Amazon ECR management over `ocipush.ecr_admin`, named after the aws CLI's sub-commands.

Tables for people by default, `--json` for scripts. Library imports happen inside the handlers so that
`ocipush --help` never loads boto3 or pydantic."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ocipush.errors import CheckFailedError, UsageError

if TYPE_CHECKING:
    from ocipush.ecr_admin.lifecycle import Expiration, LifecyclePolicy
    from ocipush.ecr_admin.repositories import RepositoryOptions

Handler = Callable[[argparse.Namespace], int]
TAG_MUTABILITY = ("MUTABLE", "IMMUTABLE", "MUTABLE_WITH_EXCLUSION", "IMMUTABLE_WITH_EXCLUSION")
ENCRYPTION = ("AES256", "KMS", "KMS_DSSE")
SEVERITY_CHOICES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
MUTABILITY_HELP = ("whether a pushed tag may be moved to another image: MUTABLE (default), IMMUTABLE, or "
                   "MUTABLE_WITH_EXCLUSION / IMMUTABLE_WITH_EXCLUSION (tags matching --mutability-exclusion are the "
                   "exception)")  # fmt: skip
# Exit codes of commands whose requests succeeded but whose result is a failure (listed in EXIT_CODES_HELP): a
# scan gate is a check that found problems, as lambda-check is.
FINDINGS_FOUND = CheckFailedError.exit_code
PARTIAL_FAILURE = 12


def register(subparsers: Any) -> None:
    ecr = subparsers.add_parser(
        "ecr", help="manage Amazon ECR: repositories, images, lifecycle, scanning, policies, settings"
    )
    commands = ecr.add_subparsers(dest="ecr_command", metavar="ECR_COMMAND")
    ecr.set_defaults(handler=lambda args: _help(ecr))
    common = type(ecr)(add_help=False)  # the CLI's parser class: its help needs no shutil
    common.add_argument("--region", help="AWS Region (default: AWS_REGION or the profile's Region)")
    common.add_argument("--profile", "--aws-profile", dest="profile", metavar="PROFILE",
                        help="AWS profile (default: AWS_PROFILE or the default chain)")  # fmt: skip
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, parents=[common], help=help_text)
        parser.set_defaults(handler=handler)
        return parser

    _register_repositories(command)
    _register_images(command)
    _register_lifecycle(command)
    _register_scanning(command)
    _register_policies(command)
    _register_registry(command)


Command = Callable[[str, Handler, str], argparse.ArgumentParser]


# ---- shared flags for create-repository and push/build-push --create-repo ----------------------------------


def add_create_repo_arguments(parser: argparse.ArgumentParser) -> None:
    """`--create-repo` and the repository flags, for commands that may create a missing repository."""
    parser.add_argument(
        "--create-repo",
        action="store_true",
        help="create the ECR repository when the registry says it is missing",
    )
    _add_repository_flags(parser, "--repo-tag")


def repository_options_from_args(args: argparse.Namespace) -> RepositoryOptions:
    from ocipush.ecr_admin.repositories import RepositoryOptions

    return RepositoryOptions(
        scan_on_push=args.scan_on_push,
        tag_mutability=args.image_tag_mutability,
        mutability_exclusions=tuple(args.mutability_exclusion),
        encryption=args.encryption,
        kms_key=args.kms_key,
        tags=dict(_key_value(item) for item in args.repo_tags),
    )


def _add_repository_flags(parser: argparse.ArgumentParser, tag_flag: str) -> None:
    parser.add_argument("--scan-on-push", action="store_true", help="scan each image when it is pushed")
    parser.add_argument("--image-tag-mutability", choices=TAG_MUTABILITY, default="MUTABLE", metavar="MODE",
                        help=MUTABILITY_HELP)  # fmt: skip
    parser.add_argument(
        "--mutability-exclusion",
        action="append",
        default=[],
        metavar="PATTERN",
        help="wildcard tag filter exempt from the mutability setting (with *_WITH_EXCLUSION; repeatable)",
    )
    parser.add_argument("--encryption", choices=ENCRYPTION, default="AES256",
                        help="how ECR encrypts the images at rest: AES256 (default, S3-managed keys), KMS or KMS_DSSE "
                        "(an AWS KMS key, --kms-key or the AWS-managed one; DSSE adds a second layer); fixed at "
                        "creation")  # fmt: skip
    parser.add_argument("--kms-key", help="KMS key ARN or id (with --encryption KMS or KMS_DSSE)")
    parser.add_argument(
        tag_flag, dest="repo_tags", action="append", default=[], metavar="KEY=VALUE", help="resource tag"
    )


# ---- repositories ------------------------------------------------------------------------------------------


def _register_repositories(command: Command) -> None:
    parser = command("create-repository", _create_repository, "create a repository")
    parser.add_argument("name")
    _add_repository_flags(parser, "--tag")
    parser = command(
        "describe-repositories", _describe_repositories, "describe repositories (all by default)"
    )
    parser.add_argument("names", nargs="*", metavar="NAME")
    parser = command("delete-repository", _delete_repository, "delete a repository")
    parser.add_argument("name")
    parser.add_argument("--force", action="store_true", help="also delete the images it holds")
    parser = command("put-image-tag-mutability", _put_tag_mutability, "change tag mutability of a repository")
    parser.add_argument("name")
    parser.add_argument("--image-tag-mutability", choices=TAG_MUTABILITY, required=True, metavar="MODE",
                        help=MUTABILITY_HELP)  # fmt: skip
    parser.add_argument("--mutability-exclusion", action="append", default=[], metavar="PATTERN")
    parser = command("put-image-scanning-configuration", _put_scanning, "turn scan-on-push on or off")
    parser.add_argument("name")
    parser.add_argument("--scan-on-push", action=argparse.BooleanOptionalAction, required=True)


def _create_repository(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.repositories import create_repository

    repository = create_repository(args.name, repository_options_from_args(args), **_where(args))
    return _render_repositories(args, [repository])


def _describe_repositories(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.repositories import describe_repositories

    return _render_repositories(args, describe_repositories(args.names, **_where(args)))


def _delete_repository(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.repositories import delete_repository

    return _render_repositories(args, [delete_repository(args.name, force=args.force, **_where(args))])


def _render_repositories(args: argparse.Namespace, repositories: Sequence[Any]) -> int:
    return _output(
        args,
        repositories,
        ("NAME", "URI", "TAG MUTABILITY", "SCAN ON PUSH", "ENCRYPTION", "CREATED"),
        lambda r: (r.name, r.uri, r.tag_mutability, r.scan_on_push, r.encryption, r.created_at),
    )


def _put_tag_mutability(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.repositories import put_image_tag_mutability

    put_image_tag_mutability(args.name, args.image_tag_mutability, args.mutability_exclusion, **_where(args))
    return _done(args, {"repository": args.name, "imageTagMutability": args.image_tag_mutability})


def _put_scanning(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.repositories import put_image_scanning_configuration

    put_image_scanning_configuration(args.name, args.scan_on_push, **_where(args))
    return _done(args, {"repository": args.name, "scanOnPush": args.scan_on_push})


# ---- images --------------------------------------------------------------------------------------------------


def _register_images(command: Command) -> None:
    for name, handler, help_text in (
        ("list-images", _list_images, "list image ids (one row per tag)"),
        ("describe-images", _describe_images, "tags, digest, size, push time and scan status of images"),
    ):
        parser = command(name, handler, help_text)
        parser.add_argument("repository")
        only = parser.add_mutually_exclusive_group()
        only.add_argument("--tagged", dest="tag_status", action="store_const", const="TAGGED", default="ANY")
        only.add_argument("--untagged", dest="tag_status", action="store_const", const="UNTAGGED")
    parser = command("batch-delete-image", _batch_delete, "delete images by tag and/or digest")
    parser.add_argument("repository")
    parser.add_argument("--tag", action="append", default=[], help="remove this tag (repeatable)")
    parser.add_argument("--digest", action="append", default=[], help="delete this image and its tags")


def _list_images(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.images import list_images

    ids = list_images(args.repository, args.tag_status, **_where(args))
    return _output(args, ids, ("TAG", "DIGEST"), lambda i: (i.tag, i.digest))


def _describe_images(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.images import describe_images

    images = sorted(
        describe_images(args.repository, args.tag_status, **_where(args)), key=lambda i: i.pushed_at
    )
    return _output(
        args,
        images,
        ("TAGS", "DIGEST", "SIZE", "PUSHED", "SCAN"),
        lambda i: (",".join(i.tags), i.digest, _size(i.size_bytes), i.pushed_at, i.scan_status),
    )


def _batch_delete(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.images import batch_delete_image
    from ocipush.ecr_admin.models import ImageId

    if not args.tag and not args.digest:
        raise UsageError("name the images to delete with --tag and/or --digest")
    ids = [ImageId(tag=tag) for tag in args.tag] + [ImageId(digest=digest) for digest in args.digest]
    result = batch_delete_image(args.repository, ids, **_where(args))
    if args.json:
        _print_json(result)
    else:
        _table(("DELETED TAG", "DIGEST"), [(i.tag, i.digest) for i in result.deleted])
    for failure in result.failures:
        print(
            f"ocipush: error: cannot delete {args.repository}{failure.image}: {failure.reason}",
            file=sys.stderr,
        )
    return PARTIAL_FAILURE if result.failures else 0


# ---- lifecycle -----------------------------------------------------------------------------------------------


def _register_lifecycle(command: Command) -> None:
    parser = command("put-lifecycle-policy", _put_lifecycle, "validate and set a lifecycle policy")
    parser.add_argument("repository")
    _add_policy_source(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the validated policy, do not set it")
    parser = command("get-lifecycle-policy", _get_lifecycle, "show the lifecycle policy")
    parser.add_argument("repository")
    parser = command("delete-lifecycle-policy", _delete_lifecycle, "remove the lifecycle policy")
    parser.add_argument("repository")
    parser = command(
        "preview-lifecycle-policy", _preview_lifecycle, "which images a policy would expire, and why"
    )
    parser.add_argument("repository")
    parser.add_argument("--offline", action="store_true", help="evaluate locally instead of ECR's preview")
    _add_policy_source(parser, required=False)


def _add_policy_source(parser: argparse.ArgumentParser, required: bool = True) -> None:
    tail = "" if required else " (default: the repository's policy)"
    parser.add_argument("--file", help=f"policy JSON (PATH, file://PATH or - for stdin){tail}")
    parser.add_argument("--keep-last", type=int, metavar="N", help="keep the N newest images")
    parser.add_argument(
        "--keep-tag-prefix",
        action="append",
        default=[],
        metavar="PREFIX",
        help="apply --keep-last to images with tags starting with PREFIX only",
    )
    parser.add_argument(
        "--expire-untagged-days", type=int, metavar="N", help="expire untagged images after N days"
    )
    parser.add_argument(
        "--keep-untagged", type=int, metavar="N", help="keep only the N newest untagged images"
    )
    parser.add_argument(
        "--expire-older-than-days", type=int, metavar="N", help="expire any image after N days"
    )


def _policy_from_args(args: argparse.Namespace) -> LifecyclePolicy | None:
    from ocipush.ecr_admin.lifecycle import parse_policy, policy_from_flags

    flags = {
        "keep_last": args.keep_last,
        "keep_tag_prefixes": args.keep_tag_prefix,
        "expire_untagged_days": args.expire_untagged_days,
        "keep_untagged": args.keep_untagged,
        "expire_older_than_days": args.expire_older_than_days,
    }
    given = any(value not in (None, []) for value in flags.values())
    if args.file and given:
        raise UsageError("give --file or rule flags, not both")
    if args.file:
        return parse_policy(_read_text(args.file))
    return policy_from_flags(**flags) if given else None


def _put_lifecycle(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.lifecycle import policy_from_flags
    from ocipush.ecr_admin.lifecycle_policies import put_lifecycle_policy

    policy = _policy_from_args(args) or policy_from_flags()  # the latter raises the "what to give" error
    if not args.dry_run:
        put_lifecycle_policy(args.repository, policy, **_where(args))
    return _render_policy(args, policy)


def _get_lifecycle(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.lifecycle_policies import get_lifecycle_policy

    return _render_policy(args, get_lifecycle_policy(args.repository, **_where(args)))


def _render_policy(args: argparse.Namespace, policy: LifecyclePolicy) -> int:
    if args.json:
        print(policy.to_json())
        return 0
    _table(
        ("PRIORITY", "SELECTS", "COUNT", "DESCRIPTION"),
        [
            (r.priority, r.selection_text(), f"{r.count_type} {r.count_number}", r.description)
            for r in policy.rules
        ],
    )
    return 0


def _delete_lifecycle(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.lifecycle_policies import delete_lifecycle_policy

    delete_lifecycle_policy(args.repository, **_where(args))
    return _done(args, {"repository": args.repository, "lifecyclePolicy": "deleted"})


def _preview_lifecycle(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.lifecycle_policies import preview_offline, preview_on_server

    policy = _policy_from_args(args)
    if args.offline:
        expirations = preview_offline(args.repository, policy, **_where(args))
    else:
        expirations = preview_on_server(args.repository, policy, on_wait=_progress, **_where(args))
    return _render_expirations(args, expirations)


def _render_expirations(args: argparse.Namespace, expirations: Sequence[Expiration]) -> int:
    return _output(
        args,
        expirations,
        ("RULE", "TAGS", "DIGEST", "PUSHED", "WHY"),
        lambda e: (
            e.rule_priority,
            ",".join(e.image.tags) or "<untagged>",
            e.image.digest,
            e.image.pushed_at,
            e.reason + (" (tie on push time, broken by digest)" if e.tied else ""),
        ),
        empty="the policy expires no image",
    )


# ---- scanning ------------------------------------------------------------------------------------------------


def _register_scanning(command: Command) -> None:
    parser = command("start-image-scan", _start_scan, "start a basic scan of IMAGE (REPO:TAG or REPO@DIGEST)")
    parser.add_argument("image")
    for name, handler, help_text in (
        ("scan", _scan, "scan IMAGE, wait, print findings; --fail-on makes findings fail the command"),
        ("describe-image-scan-findings", _findings, "print the findings of IMAGE's latest scan"),
    ):
        parser = command(name, handler, help_text)
        parser.add_argument("image")
        parser.add_argument(
            "--fail-on",
            type=str.upper,
            choices=SEVERITY_CHOICES,
            help="exit 1 when a finding at or above this severity exists",
        )
    parser = command(
        "put-registry-scanning-configuration",
        _put_registry_scanning,
        "set the registry's scan type and rules",
    )
    parser.add_argument("--scan-type", choices=("BASIC", "ENHANCED"), default="BASIC")
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="FREQUENCY:FILTER[,FILTER]",
        help="e.g. SCAN_ON_PUSH:prod-*  (frequencies: SCAN_ON_PUSH, CONTINUOUS_SCAN, MANUAL)",
    )
    command(
        "get-registry-scanning-configuration", _get_registry_scanning, "show the registry's scanning setup"
    )


def _start_scan(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.models import parse_image
    from ocipush.ecr_admin.scanning import start_image_scan

    repository, image = parse_image(args.image)
    status = start_image_scan(repository, image, **_where(args))
    return _done(args, {"image": args.image, "status": status})


def _scan(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.models import parse_image
    from ocipush.ecr_admin.scanning import scan_image

    repository, image = parse_image(args.image)
    return _render_scan(args, scan_image(repository, image, on_progress=_progress, **_where(args)))


def _findings(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.models import parse_image
    from ocipush.ecr_admin.scanning import describe_image_scan_findings

    repository, image = parse_image(args.image)
    return _render_scan(args, describe_image_scan_findings(repository, image, **_where(args)))


def _render_scan(args: argparse.Namespace, result: Any) -> int:
    if args.json:
        _print_json(result)
    else:
        counts = (
            ", ".join(f"{severity} {n}" for severity, n in sorted(result.severity_counts.items())) or "none"
        )
        print(f"{args.image}: scan {result.status}; findings: {counts}")
        _table(
            ("SEVERITY", "NAME", "PACKAGE", "URI"),
            [(f.severity, f.name, f.package, f.uri) for f in result.findings],
        )
    if args.fail_on and (failing := result.count_at_or_above(args.fail_on)):
        print(
            f"ocipush: error: {failing} findings at {args.fail_on} or above in {args.image}", file=sys.stderr
        )
        return FINDINGS_FOUND
    return 0


def _put_registry_scanning(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.scanning import ScanningRule, put_registry_scanning_configuration

    rules = []
    for text in args.rule:
        frequency, _, filters = text.partition(":")
        if frequency not in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN", "MANUAL") or not filters:
            raise UsageError(f"--rule {text!r}: write FREQUENCY:FILTER[,FILTER], e.g. SCAN_ON_PUSH:*")
        rules.append(ScanningRule(frequency=frequency, filters=tuple(filters.split(","))))
    put_registry_scanning_configuration(args.scan_type, rules, **_where(args))
    return _get_registry_scanning(args)


def _get_registry_scanning(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.scanning import get_registry_scanning_configuration

    config = get_registry_scanning_configuration(**_where(args))
    if args.json:
        _print_json(config)
        return 0
    print(f"scan type: {config.scan_type}")
    _table(("FREQUENCY", "FILTERS"), [(rule.frequency, ",".join(rule.filters)) for rule in config.rules])
    return 0


# ---- policies ------------------------------------------------------------------------------------------------


def _register_policies(command: Command) -> None:
    for verb in ("set", "put"):  # aws says set-repository-policy; put- matches every other ocipush verb
        parser = command(f"{verb}-repository-policy", _set_repo_policy, "set the repository policy")
        parser.add_argument("repository")
        parser.add_argument("--file", required=True, help="policy JSON (PATH, file://PATH or -)")
        parser.add_argument("--force", action="store_true", help="allow a policy that could lock you out")
    for verb, handler in (("get", _get_repo_policy), ("delete", _delete_repo_policy)):
        parser = command(f"{verb}-repository-policy", handler, f"{verb} the repository policy")
        parser.add_argument("repository")
    parser = command("put-registry-policy", _put_registry_policy, "set the registry policy")
    parser.add_argument("--file", required=True, help="policy JSON (PATH, file://PATH or -)")
    command("get-registry-policy", _get_registry_policy, "show the registry policy")
    command("delete-registry-policy", _delete_registry_policy, "remove the registry policy")


def _set_repo_policy(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.policies import set_repository_policy

    set_repository_policy(args.repository, _read_text(args.file), force=args.force, **_where(args))
    return _done(args, {"repository": args.repository, "repositoryPolicy": "set"})


def _get_repo_policy(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.policies import get_repository_policy

    _print_policy(get_repository_policy(args.repository, **_where(args)))
    return 0


def _delete_repo_policy(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.policies import delete_repository_policy

    delete_repository_policy(args.repository, **_where(args))
    return _done(args, {"repository": args.repository, "repositoryPolicy": "deleted"})


def _put_registry_policy(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.policies import put_registry_policy

    put_registry_policy(_read_text(args.file), **_where(args))
    return _done(args, {"registryPolicy": "set"})


def _get_registry_policy(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.policies import get_registry_policy

    _print_policy(get_registry_policy(**_where(args)))
    return 0


def _delete_registry_policy(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.policies import delete_registry_policy

    delete_registry_policy(**_where(args))
    return _done(args, {"registryPolicy": "deleted"})


def _print_policy(text: str) -> None:
    # A policy is JSON either way; re-indent it for reading.
    print(json.dumps(json.loads(text), indent=2))


# ---- registry settings ---------------------------------------------------------------------------------------


def _register_registry(command: Command) -> None:
    parser = command(
        "put-replication-configuration", _put_replication, "set replication rules (replaces all)"
    )
    parser.add_argument(
        "--destination",
        action="append",
        default=[],
        metavar="REGION[:ACCOUNT]",
        help="replicate to this Region (and account; default: this account); repeatable",
    )
    parser.add_argument(
        "--prefix", action="append", default=[], help="replicate only repositories starting with this"
    )
    command("get-replication-configuration", _get_replication, "show the replication rules")
    parser = command("create-pull-through-cache-rule", _create_cache_rule, "cache an upstream registry")
    parser.add_argument("--prefix", required=True, help="ECR repository prefix, e.g. docker-hub")
    parser.add_argument("--upstream-url", required=True, help="e.g. registry-1.docker.io")
    parser.add_argument("--upstream-registry", help="e.g. docker-hub, quay, github-container-registry")
    parser.add_argument("--credential-arn", help="Secrets Manager secret (prefix ecr-pullthroughcache/)")
    parser = command(
        "describe-pull-through-cache-rules", _describe_cache_rules, "list pull-through cache rules"
    )
    parser.add_argument("--prefix", action="append", default=[])
    parser = command("delete-pull-through-cache-rule", _delete_cache_rule, "delete a pull-through cache rule")
    parser.add_argument("--prefix", required=True)
    parser = command("get-account-setting", _get_setting, "show an account setting (e.g. BLOB_MOUNTING)")
    parser.add_argument("name")
    parser = command("put-account-setting", _put_setting, "change an account setting")
    parser.add_argument("name")
    parser.add_argument("value", help="e.g. ENABLED or DISABLED")
    command("get-login-password", _login_password, "print a registry password for `docker login -u AWS`")


def _put_replication(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.registry_settings import (
        Destination,
        ReplicationRule,
        put_replication_configuration,
    )

    destinations = []
    for text in args.destination:
        region, _, account = text.partition(":")
        destinations.append(Destination(region=region, registry_id=account or None))
    if args.prefix and not destinations:
        raise UsageError("--prefix needs at least one --destination")
    rules = (
        [ReplicationRule(destinations=tuple(destinations), prefixes=tuple(args.prefix))]
        if destinations
        else []
    )
    put_replication_configuration(rules, **_where(args))
    return _get_replication(args)


def _get_replication(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.registry_settings import get_replication_configuration

    rules = get_replication_configuration(**_where(args))
    return _output(
        args,
        rules,
        ("DESTINATIONS", "PREFIXES"),
        lambda r: (
            ",".join(f"{d.region}:{d.registry_id}" for d in r.destinations),
            ",".join(r.prefixes) or "<all>",
        ),
        empty="replication is off",
    )


def _create_cache_rule(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.registry_settings import PullThroughCacheRule, create_pull_through_cache_rule

    rule = PullThroughCacheRule(
        prefix=args.prefix,
        upstream_url=args.upstream_url,
        upstream_registry=args.upstream_registry,
        credential_arn=args.credential_arn,
    )
    return _render_cache_rules(args, [create_pull_through_cache_rule(rule, **_where(args))])


def _describe_cache_rules(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.registry_settings import describe_pull_through_cache_rules

    return _render_cache_rules(args, describe_pull_through_cache_rules(args.prefix, **_where(args)))


def _delete_cache_rule(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.registry_settings import delete_pull_through_cache_rule

    return _render_cache_rules(args, [delete_pull_through_cache_rule(args.prefix, **_where(args))])


def _render_cache_rules(args: argparse.Namespace, rules: Sequence[Any]) -> int:
    return _output(
        args,
        rules,
        ("PREFIX", "UPSTREAM", "REGISTRY", "CREDENTIAL"),
        lambda r: (r.prefix, r.upstream_url, r.upstream_registry, r.credential_arn),
    )


def _get_setting(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.registry_settings import get_account_setting

    return _done(args, {"name": args.name, "value": get_account_setting(args.name, **_where(args))})


def _put_setting(args: argparse.Namespace) -> int:
    from ocipush.ecr_admin.registry_settings import put_account_setting

    value = put_account_setting(args.name, args.value, **_where(args))
    return _done(args, {"name": args.name, "value": value})


def _login_password(args: argparse.Namespace) -> int:
    import base64

    from ocipush.aws import aws_call, ecr_client

    client = ecr_client(args.region, args.profile)
    with aws_call("get-login-password", region=client.meta.region_name):
        data = client.get_authorization_token()["authorizationData"][0]
    # The token is base64 of "AWS:<password>"; docker login wants only the password.
    print(base64.b64decode(data["authorizationToken"]).decode().partition(":")[2])
    return 0


# ---- rendering and small parsers ---------------------------------------------------------------------------


def _where(args: argparse.Namespace) -> dict[str, Any]:
    return {"region": args.region, "profile": args.profile}


def _output(
    args: argparse.Namespace,
    items: Sequence[Any],
    headers: Sequence[str],
    row: Callable[[Any], Sequence[Any]],
    empty: str | None = None,
) -> int:
    if args.json:
        _print_json(list(items))
    elif not items and empty:
        print(empty)
    else:
        _table(headers, [row(item) for item in items])
    return 0


def _done(args: argparse.Namespace, summary: dict[str, Any]) -> int:
    if args.json:
        _print_json(summary)
    else:
        print(" ".join(f"{key}={value}" for key, value in summary.items()))
    return 0


def _print_json(value: Any) -> None:
    print(json.dumps(_plain(value), indent=2, default=str))


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    cells = [list(headers)] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    for line in cells:
        print("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M:%S"))
    return str(value)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    scaled, unit = size / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if scaled < 1024:
            break
        scaled, unit = scaled / 1024, bigger
    return f"{scaled:.1f} {unit}"


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not key or not sep:
        raise UsageError(f"{text!r} is not KEY=VALUE")
    return key, value


def _read_text(source: str) -> str:
    # aws CLI users write file://p.json; accept it as well as a plain path and - for stdin.
    if source == "-":
        return sys.stdin.read()
    from pathlib import Path  # here, not at start-up: every command's parser registers these options

    return Path(source.removeprefix("file://")).read_text(encoding="utf-8")


def _progress(status: str) -> None:
    print(f"ocipush: waiting: {status}", file=sys.stderr)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
