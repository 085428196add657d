"""The `order_status` action: look an order up in the shop's system through a configurable HTTP connector."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import stamina
from temporalio import activity

from activities.elevel.base import Automation, AutomationContext, AutomationRequest, AutomationResult, register

# "#48213", "order 48213", "order no. AB-48213", "Bestellung 48213": a number of 4 to 12 digits,
# optionally with a short letter prefix, after a hash sign or the word order.
ORDER_PATTERN = re.compile(
    r"(?:#\s?|\b(?:order|bestellung|commande)\s*(?:number|no\.?|nr\.?|id|#)?\s*[:#]?\s*)"
    r"(?P<order>(?:[A-Z]{1,4}-?)?\d{4,12})\b",
    re.IGNORECASE,
)
DEFAULTS: dict[str, Any] = {
    "order_status_timeout": 5.0,
    "order_status_attempts": 3,
    "order_status_wait_initial": 0.5,
    "order_status_wait_max": 5.0,
    "order_status_field": "status",
}


class ConnectorError(Exception):
    """The order system answered with a server error, which is worth another try."""


def find_order_number(text: str, pattern: re.Pattern[str] | str = ORDER_PATTERN) -> str | None:
    """The first order number mentioned in `text` (the `order` group of `pattern`, or its whole match)."""
    match = re.search(pattern, text, re.IGNORECASE) if isinstance(pattern, str) else pattern.search(text)
    if match is None:
        return None
    return (match.groupdict().get("order") or match.group(0)).upper()


def _status_text(response: httpx.Response, field: str) -> str:
    try:
        document = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(document, dict) and document.get(field) is not None:
        return str(document[field])[:200]
    return ""


async def fetch_order(
    ctx: AutomationContext, order: str, options: dict[str, Any]
) -> tuple[httpx.Response | None, int, str]:
    """GET the order's status with retries on timeouts, connection errors and 5xx: (response, attempts, error)."""
    url = str(options["order_status_url"]).format(order=quote(order, safe=""))
    headers = dict(options.get("order_status_headers") or {})
    attempts = 0
    try:
        async for attempt in stamina.retry_context(
            on=(httpx.TransportError, ConnectorError),
            attempts=int(options["order_status_attempts"]),
            timeout=None,
            wait_initial=float(options["order_status_wait_initial"]),
            wait_max=float(options["order_status_wait_max"]),
            # Jitter spreads the retries of many workers that met the same outage.
            wait_jitter=float(options["order_status_wait_initial"]),
        ):
            with attempt:
                attempts += 1
                try:
                    response = await ctx.http.get(url, headers=headers, timeout=float(options["order_status_timeout"]))
                    if response.status_code >= 500:
                        raise ConnectorError(f"the order system answered {response.status_code}")
                except (httpx.TransportError, ConnectorError) as err:
                    _report_progress(f"order {order}: attempt {attempts}: {err or type(err).__name__}")
                    raise
        return response, attempts, ""
    except (httpx.TransportError, ConnectorError) as err:
        return None, attempts, str(err) or type(err).__name__


def _report_progress(detail: str) -> None:
    """Tell Temporal why the connector is still trying, so /ops shows the reason while the activity runs."""
    if activity.in_activity():
        activity.heartbeat(detail)


@register
class OrderStatus(Automation):
    """Tells the customer where their order is, using the order number they wrote."""

    name = "order_status"

    async def run(self, request: AutomationRequest, ctx: AutomationContext) -> AutomationResult:
        """`found` with the status, `not_found` (no number or unknown order) or `unavailable` (system down)."""
        options = {**DEFAULTS, **ctx.options}
        if not options.get("order_status_url"):
            return AutomationResult(outcome="unavailable", detail="no order_status_url is configured")
        text = f"{request.subject}\n{request.body}"
        order = find_order_number(text, options.get("order_pattern") or ORDER_PATTERN)
        if order is None:
            return AutomationResult(outcome="not_found", detail="the concern names no order number")

        response, attempts, error = await fetch_order(ctx, order, options)
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if response is None:
            return AutomationResult(outcome="unavailable", detail=f"order {order}: {error} after {tries}")
        if response.status_code == 404:
            return AutomationResult(outcome="not_found", detail=f"order {order} is unknown to the order system")
        if response.status_code >= 400:
            return AutomationResult(
                outcome="unavailable", detail=f"order {order}: the order system refused with {response.status_code}"
            )
        status = _status_text(response, str(options["order_status_field"]))
        if not status:
            return AutomationResult(outcome="unavailable", detail=f"order {order}: the answer had no status")
        # The mail around it greets the customer and signs off; the message is the answer alone.
        message = f"The status of your order {order} is: {status}."
        return AutomationResult(outcome="found", message=message, detail=f"order {order}: {status} ({tries})")
