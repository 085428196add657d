"""History events as plain JSON with every payload decoded by the client's data converter (never base64)."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.json_format import MessageToDict, ParseDict
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.converter import DataConverter

# Byte fields that are not payloads but still come out of protobuf's JSON as base64; none says anything to a person.
_OPAQUE = {"binaryChecksum", "nonce", "token", "taskToken"}


class Decoder:
    """Decodes events with one data converter (and its payload codec, when one is configured)."""

    def __init__(self, converter: DataConverter) -> None:
        self.converter = converter

    async def event(self, event: HistoryEvent) -> dict[str, Any]:
        """`{id, type, time, attributes}`: the event's attributes with payloads as the values they carry."""
        raw = MessageToDict(event)
        attributes = next((v for k, v in raw.items() if k.endswith("EventAttributes")), {})
        decoded = {
            "id": event.event_id,
            "type": raw.get("eventType", "").removeprefix("EVENT_TYPE_").lower(),
            "time": raw.get("eventTime"),
            "attributes": await self._tree(attributes),
        }
        if event.HasField("user_metadata") and event.user_metadata.HasField("summary"):
            decoded["summary"] = await self.payload(event.user_metadata.summary)
        return decoded

    async def payload(self, payload: Payload) -> Any:
        """One payload's value; one the converter cannot read is shown by its encoding, not its bytes."""
        payloads = [payload]
        if self.converter.payload_codec is not None:
            payloads = await self.converter.payload_codec.decode(payloads)
        try:
            return self.converter.payload_converter.from_payloads(payloads)[0]
        except Exception:
            encoding = payloads[0].metadata.get("encoding", b"").decode(errors="replace")
            return f"<{len(payloads[0].data)} bytes of {encoding or 'unknown encoding'}>"

    async def _tree(self, node: Any) -> Any:
        if isinstance(node, dict):
            if _is_payload(node):
                return _plain(await self.payload(ParseDict(node, Payload())))
            if set(node) == {"payloads"} and isinstance(node["payloads"], list):
                return [await self._tree(p) for p in node["payloads"]]
            return {k: ("…" if k in _OPAQUE else await self._tree(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [await self._tree(v) for v in node]
        return node


def _is_payload(node: dict) -> bool:
    metadata = node.get("metadata")
    return isinstance(metadata, dict) and "encoding" in metadata and \
        set(node) <= {"metadata", "data", "externalPayloads"}


def _plain(value: Any) -> Any:
    """A value as JSON would carry it (pydantic models, datetimes and bytes become plain data)."""
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)
