"""The concern's business fields as Temporal search attributes, so Temporal's UI and CLI can find concerns by them."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

# Behaviour added with the search attributes; histories from before it replay without upserts.
SEARCH_ATTRIBUTES_PATCH = "search-attributes"

CCR_STATUS = SearchAttributeKey.for_keyword("CcrStatus")
CCR_STEP = SearchAttributeKey.for_keyword("CcrStep")
CCR_LEVEL = SearchAttributeKey.for_int("CcrLevel")
CCR_ASSIGNEE = SearchAttributeKey.for_keyword("CcrAssignee")
CCR_SOP_ID = SearchAttributeKey.for_keyword("CcrSopId")
CCR_SOP_VERSION = SearchAttributeKey.for_int("CcrSopVersion")
CCR_PRIORITY = SearchAttributeKey.for_keyword("CcrPriority")
CCR_CATEGORY = SearchAttributeKey.for_keyword("CcrCategory")
CCR_CHANNEL = SearchAttributeKey.for_keyword("CcrChannel")
CCR_SLA_STATE = SearchAttributeKey.for_keyword("CcrSlaState")
CCR_CUSTOMER_ID = SearchAttributeKey.for_int("CcrCustomerId")
# True while a resolved concern's workflow only waits out its reopen window (it shows as Running in Temporal).
CCR_WAITING_REOPEN = SearchAttributeKey.for_bool("CcrWaitingReopen")

KEYS: tuple[SearchAttributeKey, ...] = (
    CCR_STATUS, CCR_STEP, CCR_LEVEL, CCR_ASSIGNEE, CCR_SOP_ID, CCR_SOP_VERSION, CCR_PRIORITY, CCR_CATEGORY,
    CCR_CHANNEL, CCR_SLA_STATE, CCR_CUSTOMER_ID, CCR_WAITING_REOPEN,
)

# The names `temporal server start-dev --search-attribute NAME=TYPE` and the operator API use for each key type.
_TYPE_NAMES = {"KEYWORD": "Keyword", "INT": "Int", "BOOL": "Bool", "TEXT": "Text", "DOUBLE": "Double",
               "DATETIME": "Datetime", "KEYWORD_LIST": "KeywordList"}


def type_name(key: SearchAttributeKey) -> str:
    """`Keyword`, `Int` or `Bool`: the type of `key` as Temporal's CLI spells it."""
    return _TYPE_NAMES[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]


def dev_server_flags() -> list[str]:
    """`--search-attribute` flags registering every key on `temporal server start-dev`."""
    flags: list[str] = []
    for key in KEYS:
        flags += ["--search-attribute", f"{key.name}={type_name(key)}"]
    return flags


def changed_attributes(published: dict[str, object],
                       wanted: list[tuple[SearchAttributeKey, object]]) -> list[SearchAttributeUpdate]:
    """The updates that bring `published` (name → value, changed in place) to `wanted`; None unsets a key."""
    updates: list[SearchAttributeUpdate] = []
    for key, value in wanted:
        if key.name in published and published[key.name] == value:
            continue
        if key.name not in published and value is None:
            continue  # nothing to unset
        published[key.name] = value
        updates.append(key.value_unset() if value is None else key.value_set(value))
    return updates
