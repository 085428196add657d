"""Helpers for tests that move running concerns between versions of the `migrate` test SOP."""

from __future__ import annotations

import yaml

from api.security import create_token, create_user
from registry.sop_store import publish
from sops.schema import SopDefinition

V2 = """
id: migrate
title: Moved between versions in tests (v2)
applies_to: {categories: [migrate]}
sla: slow
start: first_line
steps:
  first_line: {type: human, level: 1, escalate_after: 1h, outcomes: {resolved: done, escalated: experts}}
  experts: {type: human, level: 2, outcomes: {resolved: done}}
  done: {type: end, result: resolved}
"""


def publish_v2(desk, text: str = V2) -> int:
    with desk.sessions.begin() as session:
        row, _ = publish(session=session, definition=SopDefinition.model_validate(yaml.safe_load(text)), by="po",
                         source_yaml=text)
        return row.version


def token_for(desk, role: str, **kw) -> dict:
    with desk.sessions.begin() as session:
        user = create_user(session=session, email=f"{role}-{kw.get('level', 0)}@desk.test", password="a-long-password",
                           role=role, **kw)
        return {"Authorization": f"Bearer {create_token(session=session, user=user)}"}


def body(to: int, **kw) -> dict:
    return {"from": 1, "to": to, "mapping": {"level1": "first_line", "level2": "experts"}, "reason": "new ladder",
            **kw}
