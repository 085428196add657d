"""Canned responses: texts with placeholders that agents pick, edit and send."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

CANNED_FILE = Path(__file__).parent / "canned_responses.yaml"
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


@dataclass(frozen=True)
class Canned:
    """One canned response and the actions (reply, request_info, resolve) it suits."""

    key: str
    title: str
    text: str
    actions: tuple[str, ...]


@cache
def load_canned(path: Path = CANNED_FILE) -> dict[str, Canned]:
    """The canned responses by key, read once per process."""
    entries = yaml.safe_load(path.read_text()) or []
    return {e["key"]: Canned(e["key"], e["title"], e["text"].rstrip() + "\n", tuple(e.get("for") or ["reply"]))
            for e in entries}


def canned_for(action: str) -> list[Canned]:
    """The canned responses offered on the form of `action`."""
    return [c for c in load_canned().values() if action in c.actions]


def fill(text: str, values: dict[str, str]) -> str:
    """Replace known placeholders; plain substitution, never template code, so customer data stays text."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
