"""`ccr temporal setup`: register the concern's search attributes on a Temporal cluster's namespace, idempotently."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.search import KEYS, type_name


class SetupRefused(RuntimeError):
    """The namespace has an attribute of another type, or the server does not let this client add attributes."""


@dataclass
class SetupReport:
    """What `setup_search_attributes` found and did."""

    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)


def _wanted() -> dict[str, int]:
    return {key.name: int(key.indexed_value_type) for key in KEYS}


async def setup_search_attributes(client: Client, namespace: str) -> SetupReport:
    """Add the concern's search attributes the namespace lacks; those already there with the right type are kept."""
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    existing = {**listed.system_attributes, **listed.custom_attributes}
    report = SetupReport()
    missing: dict[str, int] = {}
    for name, wanted in _wanted().items():
        if name not in existing:
            missing[name] = wanted
        elif existing[name] == wanted:
            report.present.append(name)
        else:
            have = IndexedValueType.Name(existing[name]).removeprefix("INDEXED_VALUE_TYPE_")
            raise SetupRefused(f"the namespace {namespace} has {name} as {have}, the desk needs "
                               f"{IndexedValueType.Name(wanted).removeprefix('INDEXED_VALUE_TYPE_')}; "
                               "remove or rename it there first")
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing))
        except RPCError as err:
            if err.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
                commands = "; ".join(
                    f"tcld namespace search-attributes add -n {namespace} --sa '{key.name}={type_name(key)}'"
                    for key in KEYS if key.name in missing)
                raise SetupRefused(f"the server refused to add search attributes ({err.message}). On Temporal Cloud "
                                   f"add them with tcld or in the Cloud UI: {commands}") from err
            raise
        report.added = sorted(missing)
    return report
