"""Lifecycle policies without AWS: parse and validate a policy, build one from common flags, and evaluate it
offline against a repository's images the way ECR documents its evaluator.

The documented semantics implemented here:
- rules run in ascending `rulePriority`; an image is expired by at most one rule;
- a rule selects images by `tagStatus`: `untagged` (no tags), `any` (all) or `tagged` with `tagPrefixList`
  or `tagPatternList`, where every prefix/pattern in the list must match one of the image's tags (AND), and
  `*` in a pattern matches any run of characters;
- `imageCountMoreThan N` keeps the N most recently pushed selected images and expires the rest;
  `sinceImagePushed N days` expires selected images pushed more than N days ago;
- once a rule has selected an image, lower-priority rules can no longer expire it, though they still count it
  (ECR: rules "can still identify them as if they haven't been expired").
ECR does not document how it orders images pushed at the same instant; ties are broken by digest so the
preview is deterministic, and `Expiration.tied` flags the images whose fate depended on that."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ocipush.ecr_admin.models import ImageDetail
from ocipush.errors import UsageError

MAX_RULES = 50
MAX_WILDCARDS = 4
TagStatus = Literal["tagged", "untagged", "any"]
CountType = Literal["imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned"]
# The offline evaluator knows push times only; the archive-tier count types need the server-side preview.
OFFLINE_COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed")


class Rule(BaseModel):
    """One lifecycle rule, flattened."""

    model_config = ConfigDict(frozen=True)

    priority: int
    description: str = ""
    tag_status: TagStatus
    tag_prefixes: tuple[str, ...] = ()
    tag_patterns: tuple[str, ...] = ()
    count_type: CountType
    count_number: int
    action: str = "expire"

    def selects(self, image: ImageDetail) -> bool:
        """Whether the image meets this rule's tagging requirements."""
        if self.tag_status == "any":
            return True
        if self.tag_status == "untagged":
            return not image.tags
        if self.tag_prefixes:
            return all(any(tag.startswith(p) for tag in image.tags) for p in self.tag_prefixes)
        return all(any(_pattern(p).fullmatch(tag) for tag in image.tags) for p in self.tag_patterns)

    def selection_text(self) -> str:
        if self.tag_prefixes:
            return f"tags with prefix {' and '.join(self.tag_prefixes)}"
        if self.tag_patterns:
            return f"tags matching {' and '.join(self.tag_patterns)}"
        return {"any": "all images", "untagged": "untagged images"}.get(self.tag_status, self.tag_status)

    def to_api(self) -> dict[str, Any]:
        selection: dict[str, Any] = {"tagStatus": self.tag_status}
        if self.tag_prefixes:
            selection["tagPrefixList"] = list(self.tag_prefixes)
        if self.tag_patterns:
            selection["tagPatternList"] = list(self.tag_patterns)
        selection["countType"] = self.count_type
        if self.count_type != "imageCountMoreThan":
            selection["countUnit"] = "days"
        selection["countNumber"] = self.count_number
        rule: dict[str, Any] = {"rulePriority": self.priority}
        if self.description:
            rule["description"] = self.description
        return {**rule, "selection": selection, "action": {"type": self.action}}


class LifecyclePolicy(BaseModel):
    """A validated lifecycle policy, rules sorted by priority."""

    model_config = ConfigDict(frozen=True)

    rules: tuple[Rule, ...]

    def to_json(self) -> str:
        return json.dumps({"rules": [rule.to_api() for rule in self.rules]}, indent=2)


class Expiration(BaseModel):
    """An image a policy would expire, the rule that would do it and why."""

    model_config = ConfigDict(frozen=True)

    image: ImageDetail
    rule_priority: int
    reason: str
    tied: bool = False


def parse_policy(text: str) -> LifecyclePolicy:
    """Parse and validate policy JSON; raises UsageError naming the first problem found."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"lifecycle policy is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise UsageError('lifecycle policy must be an object with a "rules" list')
    return validate_rules([_parse_rule(index, raw) for index, raw in enumerate(document["rules"], 1)])


def validate_rules(rules: Sequence[Rule]) -> LifecyclePolicy:
    """Check the rules against ECR's constraints that span rules and return them as a policy."""
    if not rules:
        raise UsageError("lifecycle policy has no rules")
    if len(rules) > MAX_RULES:
        raise UsageError(f"lifecycle policy has {len(rules)} rules; ECR allows at most {MAX_RULES}")
    ordered = tuple(sorted(rules, key=lambda rule: rule.priority))
    priorities = [rule.priority for rule in ordered]
    duplicates = sorted({p for p in priorities if priorities.count(p) > 1})
    if duplicates:
        raise UsageError(f"lifecycle rule priorities must be unique; repeated: {duplicates}")
    for rule in ordered[:-1]:
        if rule.tag_status == "any":
            raise UsageError(
                f"rule {rule.priority} selects tagStatus any, so it must have the highest rulePriority "
                f"(highest is {ordered[-1].priority})"
            )
    if sum(rule.tag_status == "untagged" for rule in ordered) > 1:
        raise UsageError("only one lifecycle rule may select untagged images")
    return LifecyclePolicy(rules=ordered)


def policy_from_flags(
    *,
    keep_last: int | None = None,
    keep_tag_prefixes: Sequence[str] = (),
    expire_untagged_days: int | None = None,
    keep_untagged: int | None = None,
    expire_older_than_days: int | None = None,
) -> LifecyclePolicy:
    """Build the common policies: untagged clean-up first, then tagged retention, then a catch-all."""
    rules: list[Rule] = []
    if expire_untagged_days is not None and keep_untagged is not None:
        raise UsageError("choose one of --expire-untagged-days and --keep-untagged")
    if expire_untagged_days is not None:
        rules.append(_flag_rule(len(rules) + 1, "untagged", "sinceImagePushed", expire_untagged_days))
    if keep_untagged is not None:
        rules.append(_flag_rule(len(rules) + 1, "untagged", "imageCountMoreThan", keep_untagged))
    if keep_last is not None and keep_tag_prefixes:
        rules.append(_flag_rule(len(rules) + 1, "tagged", "imageCountMoreThan", keep_last, keep_tag_prefixes))
    elif keep_last is not None:
        rules.append(_flag_rule(len(rules) + 1, "any", "imageCountMoreThan", keep_last))
    elif keep_tag_prefixes:
        raise UsageError("--keep-tag-prefix needs --keep-last")
    if expire_older_than_days is not None:
        if any(rule.tag_status == "any" for rule in rules):
            raise UsageError("--expire-older-than-days cannot be combined with --keep-last for all images")
        rules.append(_flag_rule(len(rules) + 1, "any", "sinceImagePushed", expire_older_than_days))
    if not rules:
        raise UsageError(
            "give --file or at least one of --keep-last, --expire-untagged-days, --keep-untagged, "
            "--expire-older-than-days"
        )
    return validate_rules(rules)


def evaluate(policy: LifecyclePolicy, images: Sequence[ImageDetail], now: datetime) -> list[Expiration]:
    """Which images the policy would expire at `now`, oldest first within each rule."""
    expired: dict[str, Expiration] = {}
    claimed: set[str] = set()  # digests selected by a higher-priority rule: later rules cannot expire them
    for rule in policy.rules:
        if rule.count_type not in OFFLINE_COUNT_TYPES:
            raise UsageError(f"rule {rule.priority} uses {rule.count_type}; preview it without --offline")
        selected = sorted(
            (i for i in images if rule.selects(i)), key=lambda i: (i.pushed_at, i.digest), reverse=True
        )  # newest first
        for rank, image in enumerate(selected, 1):
            reason = _expiry_reason(rule, image, rank, len(selected), now)
            if reason is None or image.digest in claimed:
                continue
            expired[image.digest] = Expiration(
                image=image,
                rule_priority=rule.priority,
                reason=reason,
                tied=rule.count_type == "imageCountMoreThan"
                and _tied_at_cut(selected, rule.count_number, image),
            )
        claimed.update(image.digest for image in selected)
    return sorted(expired.values(), key=lambda e: (e.rule_priority, e.image.pushed_at, e.image.digest))


def _expiry_reason(rule: Rule, image: ImageDetail, rank: int, total: int, now: datetime) -> str | None:
    if rule.count_type == "imageCountMoreThan":
        if rank <= rule.count_number:
            return None
        return (
            f"rule {rule.priority}: number {rank} by push time of {total} {rule.selection_text()}; "
            f"keeps the newest {rule.count_number}"
        )
    age = now - image.pushed_at
    if age <= timedelta(days=rule.count_number):
        return None
    return (
        f"rule {rule.priority}: {rule.selection_text()}, pushed {age.days} days ago, "
        f"more than {rule.count_number}"
    )


def _tied_at_cut(selected: Sequence[ImageDetail], keep: int, image: ImageDetail) -> bool:
    """True when an image kept by this rule was pushed at the same instant as this expired one."""
    return any(kept.pushed_at == image.pushed_at for kept in selected[:keep])


def _flag_rule(
    priority: int, status: TagStatus, count_type: CountType, number: int, prefixes: Sequence[str] = ()
) -> Rule:
    return _checked_rule(
        Rule(
            priority=priority,
            description=_describe(status, count_type, number, prefixes),
            tag_status=status,
            tag_prefixes=tuple(prefixes),
            count_type=count_type,
            count_number=number,
        )
    )


def _describe(status: TagStatus, count_type: CountType, number: int, prefixes: Sequence[str]) -> str:
    what = {"any": "images", "untagged": "untagged images"}.get(
        status, f"images tagged {'/'.join(prefixes)}*"
    )
    if count_type == "imageCountMoreThan":
        return f"keep the last {number} {what}"
    return f"expire {what} older than {number} days"


def _parse_rule(index: int, raw: Any) -> Rule:
    where = f"rule #{index}"
    if not isinstance(raw, dict):
        raise UsageError(f"{where} is not an object")
    priority = raw.get("rulePriority")
    if not isinstance(priority, int) or isinstance(priority, bool) or priority < 1:
        raise UsageError(f"{where}: rulePriority must be a positive integer")
    where = f"rule {priority}"
    selection = raw.get("selection")
    action = raw.get("action")
    if not isinstance(selection, dict):
        raise UsageError(f"{where}: missing selection")
    if not isinstance(action, dict) or action.get("type") not in ("expire", "transition"):
        raise UsageError(f'{where}: action must be {{"type": "expire"}}')
    status = selection.get("tagStatus")
    if status not in ("tagged", "untagged", "any"):
        raise UsageError(f"{where}: tagStatus must be tagged, untagged or any")
    count_type = selection.get("countType")
    if count_type not in (
        "imageCountMoreThan",
        "sinceImagePushed",
        "sinceImagePulled",
        "sinceImageTransitioned",
    ):
        raise UsageError(f"{where}: countType must be imageCountMoreThan or sinceImagePushed")
    number = selection.get("countNumber")
    if not isinstance(number, int) or isinstance(number, bool):
        raise UsageError(f"{where}: countNumber must be an integer")
    unit = selection.get("countUnit")
    if count_type == "imageCountMoreThan" and unit is not None:
        raise UsageError(f"{where}: countUnit is not allowed with imageCountMoreThan")
    if count_type != "imageCountMoreThan" and unit != "days":
        raise UsageError(f'{where}: {count_type} needs "countUnit": "days"')
    return _checked_rule(
        Rule(
            priority=priority,
            description=str(raw.get("description") or ""),
            tag_status=status,
            tag_prefixes=tuple(_strings(where, selection, "tagPrefixList")),
            tag_patterns=tuple(_strings(where, selection, "tagPatternList")),
            count_type=count_type,
            count_number=number,
            action=action["type"],
        )
    )


def _checked_rule(rule: Rule) -> Rule:
    """The constraints of a single rule."""
    where = f"rule {rule.priority}"
    if rule.count_number < 1:
        raise UsageError(f"{where}: countNumber must be at least 1")
    if rule.tag_prefixes and rule.tag_patterns:
        raise UsageError(f"{where}: use tagPrefixList or tagPatternList, not both")
    has_tags = bool(rule.tag_prefixes or rule.tag_patterns)
    if rule.tag_status == "tagged" and not has_tags:
        raise UsageError(f"{where}: tagStatus tagged needs a tagPrefixList or tagPatternList")
    if rule.tag_status != "tagged" and has_tags:
        raise UsageError(f"{where}: tag lists are only allowed with tagStatus tagged")
    for pattern in rule.tag_patterns:
        if pattern.count("*") > MAX_WILDCARDS:
            raise UsageError(f"{where}: {pattern!r} has more than {MAX_WILDCARDS} wildcards")
    return rule


def _strings(where: str, selection: dict[str, Any], key: str) -> list[str]:
    value = selection.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise UsageError(f"{where}: {key} must be a list of non-empty strings")
    return value


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
