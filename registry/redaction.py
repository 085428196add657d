"""Strip the personal data the registry knows from text that is about to become shared knowledge."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import phonenumbers

# Regions whose national phone formats are recognised besides international (+...) numbers.
DEFAULT_REGIONS = ("DE", "GB", "US")

_CONCERN_REF = re.compile(r"\b(?:support\+)?CCR-[0-9A-Z]{6,12}\b", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_SECRET_LINK = re.compile(r"https?://\S*/(?:portal/reset|reset|verify|token)/\S+", re.IGNORECASE)
_NUMBER_WORD = r"(?:number|no\.?|nr\.?|num|#|id|ref(?:erence)?)"
# "order 10442", "order no. A-5531-77", "Bestellung #99812": the keyword says what the token is.
_ORDER = re.compile(rf"\b(?:order|bestellung|invoice|rechnung)\s*(?:{_NUMBER_WORD}\s*)?[:#]?\s*"
                    r"(?=[\w-]*\d)([A-Z0-9][\w-]{2,})", re.IGNORECASE)
_ORDER_CODE = re.compile(r"\b(?:ORD|SO|PO|INV)[-_]?\d{3,}[\w-]*\b", re.IGNORECASE)
_TRACKING = re.compile(rf"\b(?:tracking|sendungs?nummer|parcel|shipment|consignment)\s*(?:{_NUMBER_WORD}\s*)?"
                       r"[:#]?\s*(?=[\w-]*\d)([A-Z0-9][\w-]{5,})", re.IGNORECASE)
# Carriers' formats that need no keyword: UPS 1Z..., S10 (postal: two letters, nine digits, two letters).
_TRACKING_CODE = re.compile(r"\b(?:1Z[0-9A-Z]{16}|[A-Z]{2}\d{9}[A-Z]{2})\b")
_STREET = re.compile(
    r"\b\d{1,5}[a-zA-Z]?\s+(?:[A-Z][\w'.-]*\s+){0,4}"
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Way|Boulevard|Blvd|Court|Ct|Place|Pl|Square|Sq)\b\.?"
    r"|\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|weg|platz|allee|gasse|ring|damm)\s+\d{1,4}\s?[a-z]?\b",
)
_POSTCODE_CITY = re.compile(r"\b\d{5}\s+[A-ZÄÖÜ][a-zäöüß]+(?:[ -][A-ZÄÖÜ][a-zäöüß]+)?\b"
                            r"|\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b")
# Long digit runs left over (account, card or parcel numbers without a keyword).
_LONG_NUMBER = re.compile(r"(?<![\w\[])\d{8,}(?![\w\]])")


@dataclass
class Redacted:
    """Text with personal data replaced by markers, and how many of each kind were removed."""

    text: str
    removed: Counter = field(default_factory=Counter)

    def note(self) -> str:
        """What was removed, for the reviewer: "2 names, 1 order number"."""
        return ", ".join(f"{n} {_plural(kind, n)}" for kind, n in sorted(self.removed.items()))


class Redactor:
    """Replaces what is known about one customer, and data of the shapes that identify anyone, with markers."""

    def __init__(self, *, names: Iterable[str] = (), emails: Iterable[str] = (), phones: Iterable[str] = (),
                 addresses: Iterable[str] = (), regions: Iterable[str] = DEFAULT_REGIONS) -> None:
        self.names = _name_parts(names)
        self.known = sorted({v.strip() for v in [*emails, *phones, *addresses] if v and len(v.strip()) >= 4},
                            key=len, reverse=True)
        self.regions = list(dict.fromkeys([*(_region(p) for p in phones), *regions]))
        self.regions = [r for r in self.regions if r]

    def redact(self, text: str, removed: Counter | None = None) -> Redacted:
        """`text` without the personal data; `removed` (shared across calls) counts each kind."""
        removed = Counter() if removed is None else removed

        def sub(pattern: re.Pattern, kind: str, value: str, group: int = 0) -> str:
            def replace(match: re.Match) -> str:
                removed[kind] += 1
                whole = match.group(0)
                if group:
                    start, end = match.start(group) - match.start(0), match.end(group) - match.start(0)
                    return f"{whole[:start]}[{kind} removed]{whole[end:]}"
                return f"[{kind} removed]"
            return pattern.sub(replace, value)

        for value in self.known:
            text = sub(re.compile(re.escape(value), re.IGNORECASE), _known_kind(value), text)
        text = sub(_SECRET_LINK, "link", text)
        text = sub(_EMAIL, "e-mail address", text)
        text = sub(_CONCERN_REF, "concern reference", text)
        text = sub(_ORDER, "order number", text, group=1)
        text = sub(_ORDER_CODE, "order number", text)
        text = sub(_TRACKING, "tracking number", text, group=1)
        text = sub(_TRACKING_CODE, "tracking number", text)
        text = sub(_STREET, "address", text)
        text = sub(_POSTCODE_CITY, "address", text)
        text = self._phones(text, removed)
        text = sub(_LONG_NUMBER, "number", text)
        if self.names:
            names = re.compile(r"(?<![\w\[])(?:" + "|".join(re.escape(n) for n in self.names) + r")(?!\w)",
                               re.IGNORECASE)
            text = names.sub(lambda m: _count(removed, "name"), text)
            # "[name removed] [name removed]" for a full name reads as one.
            text = text.replace("[name removed] [name removed]", "[name removed]")
        return Redacted(text=text, removed=removed)

    def _phones(self, text: str, removed: Counter) -> str:
        for region in self.regions:
            spans = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(
                text, region, leniency=phonenumbers.Leniency.VALID)]
            for start, end in reversed(spans):
                removed["phone number"] += 1
                text = f"{text[:start]}[phone number removed]{text[end:]}"
        return text


def _plural(kind: str, n: int) -> str:
    if n == 1:
        return kind
    return kind + ("es" if kind.endswith("s") else "s")


def _count(removed: Counter, kind: str) -> str:
    removed[kind] += 1
    return f"[{kind} removed]"


def _name_parts(names: Iterable[str]) -> list[str]:
    parts: set[str] = set()
    for name in names:
        name = " ".join((name or "").split())
        if len(name) >= 2:
            parts.add(name)
            parts.update(p for p in re.split(r"[\s,]+", name) if len(p) >= 2 and p[0].isalpha())
    return sorted(parts, key=len, reverse=True)


def _region(phone: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return None


def _known_kind(value: str) -> str:
    if "@" in value:
        return "e-mail address"
    if re.fullmatch(r"[+\d\s().-]+", value):
        return "phone number"
    return "address"
