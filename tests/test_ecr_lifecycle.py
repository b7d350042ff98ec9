"""The offline lifecycle evaluator and policy validation: pure functions, no AWS.

The cases follow the examples of ECR's lifecycle policy documentation (the two multi-rule examples, tag
prefix/pattern filters, untagged images, ages), plus the documented rules that interact: a lower-priority rule
cannot expire an image a higher-priority rule selected, yet still counts it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ocipush.ecr_admin.lifecycle import evaluate, parse_policy, policy_from_flags
from ocipush.ecr_admin.models import ImageDetail
from ocipush.errors import UsageError

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def image(name: str, days_ago: float, *tags: str, digest: str | None = None) -> ImageDetail:
    return ImageDetail(
        digest=digest or f"sha256:{name}", tags=tags, pushed_at=NOW - timedelta(days=days_ago), size_bytes=1
    )


def rule(priority: int, status: str, count_type: str, number: int, **lists: list[str]) -> dict[str, Any]:
    selection: dict[str, Any] = {"tagStatus": status, **lists, "countType": count_type, "countNumber": number}
    if count_type == "sinceImagePushed":
        selection["countUnit"] = "days"
    return {"rulePriority": priority, "selection": selection, "action": {"type": "expire"}}


def policy(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": list(rules)})


# (case, policy text, images, {image name: expiring rule priority})
CASES: list[tuple[str, str, list[ImageDetail], dict[str, int]]] = [
    (
        "docs example A: beta rule cannot expire B, which the prod rule selected",
        policy(
            rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["prod"]),
            rule(2, "tagged", "imageCountMoreThan", 1, tagPrefixList=["beta"]),
        ),
        [image("A", 10, "beta-1", "prod-1"), image("B", 9, "beta-2", "prod-2"), image("C", 8, "beta-3")],
        {"A": 1},
    ),
    (
        "docs example B: all images carry both tags, the prod rule expires A and B",
        policy(
            rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["prod"]),
            rule(2, "tagged", "imageCountMoreThan", 1, tagPrefixList=["beta"]),
        ),
        [
            image("A", 10, "beta-1", "prod-1"),
            image("B", 9, "beta-2", "prod-2"),
            image("C", 8, "beta-3", "prod-3"),
        ],
        {"A": 1, "B": 1},
    ),
    (
        "several prefixes in one rule: an image needs a tag for every prefix",
        policy(rule(1, "tagged", "sinceImagePushed", 5, tagPrefixList=["alpha", "beta"])),
        [
            image("A", 12, "alpha-1"),
            image("B", 11, "beta-1"),
            image("C", 10, "alpha-2", "beta-2"),
            image("D", 4, "alpha-3", "beta-3"),
        ],
        {"C": 1},
    ),
    (
        "tagPatternList prod*: whole-tag match, age over 14 days",
        policy(rule(1, "tagged", "sinceImagePushed", 14, tagPatternList=["prod*"])),
        [
            image("old-prod", 20, "prod-1"),
            image("new-prod", 3, "prod-2"),
            image("preprod", 20, "preprod"),
            image("staging", 20, "staging"),
            image("untagged", 20),
        ],
        {"old-prod": 1},
    ),
    (
        "wildcards inside a pattern, and a pattern without wildcard matches exactly",
        policy(rule(1, "tagged", "imageCountMoreThan", 1, tagPatternList=["v*-rc*"])),
        [image("rc1", 3, "v1.0-rc1"), image("rc2", 2, "v1.1-rc2"), image("final", 1, "v1.1")],
        {"rc1": 1},
    ),
    (
        "a pattern without wildcard is an exact tag",
        policy(rule(1, "tagged", "imageCountMoreThan", 1, tagPatternList=["latest"])),
        [image("l1", 3, "latest"), image("l2", 2, "latest-2"), image("l3", 1, "latest")],
        {"l1": 1},
    ),
    (
        "docs: keep only one untagged image; tagged images are not selected",
        policy(rule(1, "untagged", "imageCountMoreThan", 1)),
        [image("U1", 3), image("U2", 2), image("U3", 1), image("T", 5, "v1")],
        {"U1": 1, "U2": 1},
    ),
    (
        "docs: expire untagged images older than 14 days; exactly 14 days is not older",
        policy(rule(1, "untagged", "sinceImagePushed", 14)),
        [image("old", 14.001), image("edge", 14), image("young", 1), image("tagged-old", 40, "v1")],
        {"old": 1},
    ),
    (
        "an any rule cannot expire untagged images a higher rule selected, even ones that rule kept",
        policy(rule(1, "untagged", "sinceImagePushed", 30), rule(2, "any", "imageCountMoreThan", 1)),
        [image("U", 10), image("T1", 5, "a"), image("T2", 1, "b")],
        {"T1": 2},
    ),
    (
        "images expired by a higher rule are still counted by later rules",
        policy(
            rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["prod"]),
            rule(2, "any", "imageCountMoreThan", 2),
        ),
        # Rule 2 sees P1, P2, X, Y newest first and keeps P1 and P2, so X and Y go too.
        [image("P1", 1, "prod-1"), image("P2", 2, "prod-2"), image("X", 3, "dev-1"), image("Y", 4, "dev-2")],
        {"P2": 1, "X": 2, "Y": 2},
    ),
    (
        "rules are evaluated by priority, not by their order in the file",
        policy(
            rule(20, "any", "sinceImagePushed", 7),
            rule(10, "tagged", "imageCountMoreThan", 5, tagPrefixList=["release"]),
        ),
        [image("R", 30, "release-1"), image("D", 30, "dev-1"), image("N", 1, "dev-2")],
        {"D": 20},
    ),
]


@pytest.mark.parametrize(
    ("policy_text", "images", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_offline_evaluation(policy_text: str, images: list[ImageDetail], expected: dict[str, int]) -> None:
    expirations = evaluate(parse_policy(policy_text), images, NOW)
    assert {e.image.digest.removeprefix("sha256:"): e.rule_priority for e in expirations} == expected
    assert all(e.reason.startswith(f"rule {e.rule_priority}:") for e in expirations)


def test_ties_on_push_time_are_broken_by_digest_and_flagged() -> None:
    images = [
        image("a", 2, digest="sha256:aaaa"),
        image("b", 2, digest="sha256:bbbb"),
        image("old", 9, digest="sha256:0000"),
    ]
    expirations = evaluate(parse_policy(policy(rule(1, "untagged", "imageCountMoreThan", 1))), images, NOW)
    assert [(e.image.digest, e.tied) for e in expirations] == [("sha256:0000", False), ("sha256:aaaa", True)]
    # The same input always gives the same answer, whatever order describe_images returned.
    again = evaluate(parse_policy(policy(rule(1, "untagged", "imageCountMoreThan", 1))), images[::-1], NOW)
    assert again == expirations


def test_reasons_say_why() -> None:
    text = policy(rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["prod"]))
    [expiration] = evaluate(parse_policy(text), [image("A", 3, "prod-1"), image("B", 1, "prod-2")], NOW)
    assert expiration.reason == "rule 1: number 2 by push time of 2 tags with prefix prod; keeps the newest 1"
    [aged] = evaluate(
        parse_policy(policy(rule(1, "untagged", "sinceImagePushed", 7))), [image("U", 9.5)], NOW
    )
    assert aged.reason == "rule 1: untagged images, pushed 9 days ago, more than 7"


def test_archive_count_types_need_the_server_preview() -> None:
    text = policy(
        {
            **rule(1, "any", "sinceImagePushed", 7),
            "selection": {
                "tagStatus": "any",
                "countType": "sinceImagePulled",
                "countUnit": "days",
                "countNumber": 7,
            },
        }
    )
    with pytest.raises(UsageError, match="without --offline"):
        evaluate(parse_policy(text), [image("U", 9)], NOW)


INVALID: list[tuple[str, str]] = [
    ("not json", "not valid JSON"),
    ("[]", 'object with a "rules" list'),
    (policy(), "has no rules"),
    (
        policy(*[rule(i, "tagged", "imageCountMoreThan", 1, tagPrefixList=[f"p{i}"]) for i in range(1, 52)]),
        "at most 50",
    ),
    (
        policy(
            rule(1, "untagged", "imageCountMoreThan", 1),
            rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["x"]),
        ),
        "repeated: [1]",
    ),
    (
        policy(rule(1, "any", "imageCountMoreThan", 1), rule(2, "untagged", "imageCountMoreThan", 1)),
        "must have the highest rulePriority",
    ),
    (
        policy(rule(1, "untagged", "imageCountMoreThan", 1), rule(2, "untagged", "sinceImagePushed", 3)),
        "only one lifecycle rule may select untagged",
    ),
    (policy(rule(1, "tagged", "imageCountMoreThan", 1)), "needs a tagPrefixList or tagPatternList"),
    (
        policy(rule(1, "untagged", "imageCountMoreThan", 1, tagPrefixList=["x"])),
        "only allowed with tagStatus",
    ),
    (
        policy(rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["x"], tagPatternList=["y*"])),
        "not both",
    ),
    (
        policy(rule(1, "tagged", "imageCountMoreThan", 1, tagPatternList=["a*b*c*d*e*"])),
        "more than 4 wildcards",
    ),
    (policy(rule(1, "untagged", "imageCountMoreThan", 0)), "at least 1"),
    (policy({**rule(1, "untagged", "imageCountMoreThan", 1), "rulePriority": 0}), "positive integer"),
    (
        json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {
                            "tagStatus": "untagged",
                            "countType": "sinceImagePushed",
                            "countNumber": 3,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        ),
        '"countUnit": "days"',
    ),
    (
        json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {
                            "tagStatus": "untagged",
                            "countType": "imageCountMoreThan",
                            "countUnit": "days",
                            "countNumber": 3,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        ),
        "countUnit is not allowed",
    ),
    (
        json.dumps(
            {"rules": [{**rule(1, "untagged", "imageCountMoreThan", 1), "action": {"type": "delete"}}]}
        ),
        "action must be",
    ),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_validation_rejects_with_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_policy(text)
    assert message in str(caught.value)


def test_policy_from_flags_builds_the_common_rules() -> None:
    built = policy_from_flags(keep_last=10, keep_tag_prefixes=["v"], expire_untagged_days=7)
    assert json.loads(built.to_json()) == {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged images older than 7 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": "keep the last 10 images tagged v*",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": ["v"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 10,
                },
                "action": {"type": "expire"},
            },
        ]
    }
    # What it writes, it reads back unchanged.
    assert parse_policy(built.to_json()) == built


def test_policy_from_flags_puts_the_catch_all_last_and_refuses_nonsense() -> None:
    built = policy_from_flags(keep_untagged=1, keep_last=5)
    assert [(r.priority, r.tag_status) for r in built.rules] == [(1, "untagged"), (2, "any")]
    with pytest.raises(UsageError, match="give --file"):
        policy_from_flags()
    with pytest.raises(UsageError, match="needs --keep-last"):
        policy_from_flags(keep_tag_prefixes=["v"])
    with pytest.raises(UsageError, match="choose one"):
        policy_from_flags(expire_untagged_days=1, keep_untagged=1)
