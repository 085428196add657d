"""The `classify` action: category and priority from configured keyword rules, then from the learned classifier."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from activities.elevel.base import Automation, AutomationContext, AutomationRequest, AutomationResult, register
from activities.elevel.classifier import concern_text, default_model_path, load_classifier, predict_category

DEFAULT_RULES = Path(__file__).with_name("classify_rules.yaml")
# On the shipped sample's held-out concerns, guesses at 0.35 or above were right about nine times in ten
# and covered about four concerns in five; below it a human sorts the concern out faster than a wrong guess.
DEFAULT_MIN_CONFIDENCE = 0.35
PRIORITIES = ("low", "normal", "high", "urgent")


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    words = [re.escape(word) for word in keyword.lower().split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class CategoryRule:
    """The keywords that point at one category, and the priority that category deserves."""

    category: str
    keywords: tuple[tuple[str, re.Pattern[str]], ...]
    priority: str | None = None

    def matches(self, text: str) -> list[str]:
        """The rule's keywords found in `text`."""
        return [keyword for keyword, pattern in self.keywords if pattern.search(text)]


@dataclass(frozen=True)
class RuleMatch:
    """The category the rules chose and the keywords that chose it."""

    category: str
    keywords: list[str]
    priority: str | None


@dataclass(frozen=True)
class ClassifyRules:
    """Keyword rules for categories and for raising priority, read from YAML."""

    categories: tuple[CategoryRule, ...]
    priorities: tuple[tuple[str, tuple[tuple[str, re.Pattern[str]], ...]], ...]

    def match(self, text: str) -> RuleMatch | None:
        """The category whose keywords match most, or None when none or several match equally."""
        scored = [(len(found), rule, found) for rule in self.categories if (found := rule.matches(text))]
        if not scored:
            return None
        scored.sort(key=lambda item: -item[0])
        if len(scored) > 1 and scored[0][0] == scored[1][0]:
            return None
        _, rule, found = scored[0]
        return RuleMatch(rule.category, found, rule.priority)

    def category_priority(self, category: str) -> str | None:
        """The priority configured for `category`, if any."""
        return next((rule.priority for rule in self.categories if rule.category == category), None)

    def raised_priority(self, text: str) -> tuple[str, str] | None:
        """The highest priority whose keywords occur in `text`, with the keyword."""
        for priority, keywords in self.priorities:
            for keyword, pattern in keywords:
                if pattern.search(text):
                    return priority, keyword
        return None


def _compiled(keywords: list[str]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((str(keyword), _keyword_pattern(str(keyword))) for keyword in keywords)


def parse_rules(document: dict) -> ClassifyRules:
    """Rules from their YAML document, with clear errors for unknown priorities."""
    categories = []
    for category, spec in (document.get("categories") or {}).items():
        priority = (spec or {}).get("priority")
        if priority is not None and priority not in PRIORITIES:
            raise ValueError(f"category {category}: unknown priority {priority!r} (use {', '.join(PRIORITIES)})")
        categories.append(CategoryRule(category, _compiled((spec or {}).get("keywords") or []), priority))
    raising = document.get("priorities") or {}
    unknown = [priority for priority in raising if priority not in PRIORITIES]
    if unknown:
        raise ValueError(f"unknown priority {unknown[0]!r} in priorities (use {', '.join(PRIORITIES)})")
    ordered = sorted(raising, key=PRIORITIES.index, reverse=True)
    return ClassifyRules(tuple(categories), tuple((priority, _compiled(raising[priority])) for priority in ordered))


@lru_cache(maxsize=8)
def _rules_at(path: Path, stamp: int) -> ClassifyRules:
    return parse_rules(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def load_rules(path: Path = DEFAULT_RULES) -> ClassifyRules:
    """The rules in `path`, read again whenever the file changes."""
    path = Path(path)
    return _rules_at(path, path.stat().st_mtime_ns)


def _higher(current: str, candidate: str | None) -> str:
    if candidate is None or current not in PRIORITIES:
        return candidate or current
    return max(current, candidate, key=PRIORITIES.index)


@register
class Classify(Automation):
    """Sets a concern's category and priority; never overrides the customer's category unless configured."""

    name = "classify"

    async def run(self, request: AutomationRequest, ctx: AutomationContext) -> AutomationResult:
        """Keep the customer's category or find one by rules, then by the classifier; raise priority by keywords."""
        text = concern_text(request.subject, request.body)
        rules = load_rules(Path(ctx.options.get("classify_rules_path") or DEFAULT_RULES))
        keep_customer = bool(
            request.category_from_customer and request.category and not ctx.options.get("classify_overrides_customer")
        )
        score = None
        if keep_customer:
            category, reasons = request.category, [f"kept the customer's category {request.category}"]
        elif (match := rules.match(text)) is not None:
            category, reasons = match.category, [f"rules chose {match.category} ({', '.join(match.keywords)})"]
        else:
            category, score, reasons = await self._learned(text, ctx)

        priority = request.priority
        if category is not None:
            priority = _higher(priority, rules.category_priority(category))
        if (raised := rules.raised_priority(text)) is not None:
            priority = _higher(priority, raised[0])
            reasons.append(f"priority {raised[0]} for '{raised[1]}'")

        return AutomationResult(
            outcome="classified" if category else "unclassified",
            category=category,
            priority=priority if category or priority != request.priority else None,
            score=score,
            detail="; ".join(reasons),
        )

    @staticmethod
    async def _learned(text: str, ctx: AutomationContext) -> tuple[str | None, float | None, list[str]]:
        model_path = Path(ctx.options.get("classifier_model_path") or default_model_path(ctx.settings))
        model = await asyncio.to_thread(load_classifier, model_path)
        if model is None:
            return None, None, ["no rule matched and no classifier is trained"]
        guess, confidence = await asyncio.to_thread(predict_category, model, text)
        minimum = float(ctx.options.get("classifier_min_confidence", DEFAULT_MIN_CONFIDENCE))
        if confidence < minimum:
            unsure = f"no rule matched; classifier unsure ({guess} at {confidence:.2f} < {minimum:.2f})"
            return None, round(confidence, 4), [unsure]
        return guess, round(confidence, 4), [f"classifier chose {guess} ({confidence:.2f})"]
