"""The limits on every credential form and on token guessing, per account and per address.

One mechanism (`registry.access.take`) counts them all. A password or a token is checked only after an
attempt was counted, so parallel guesses get at most as many checks as the limit allows; an attempt
that succeeds is given back.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request

from registry.access import Limit, Refused
from registry.access import give_back as _give_back
from registry.access import take as _take
from registry.db import Sessions

FIVE_MINUTES = timedelta(minutes=5)
QUARTER_HOUR = timedelta(minutes=15)


def _sign_in(form: str) -> tuple[Limit, Limit, Limit]:
    return (
        Limit(f"{form}:account+address", 5, FIVE_MINUTES, "failed sign-ins for {email} from your address"),
        Limit(f"{form}:account", 20, FIVE_MINUTES, "failed sign-ins for {email}"),
        Limit(f"{form}:address", 20, FIVE_MINUTES, "failed sign-ins from your address"),
    )


STAFF_SIGN_IN = _sign_in("staff-sign-in")
PORTAL_SIGN_IN = _sign_in("portal-sign-in")
# Sign-up and password reset both mail a link to the address, so they count together.
LINK_REQUESTS = (
    Limit("sign-in-link:account", 3, QUARTER_HOUR, "requests for a link to {email}"),
    Limit("sign-in-link:address", 10, QUARTER_HOUR, "requests for sign-in links from your address"),
)
UNKNOWN_TOKENS = Limit("api-token:address", 10, FIVE_MINUTES, "requests with an unknown API token from your address")


def client_address(request: Request) -> str:
    """The caller's address: the connection's peer, or what a trusted proxy said (see `CCR_TRUSTED_PROXIES`)."""
    return request.client.host if request.client else "unknown"


def keyed(limits: tuple[Limit, ...], *, email: str, address: str) -> list[tuple[Limit, str]]:
    """Each limit with the value it counts under: the account, the address or both."""
    values = {"account+address": f"{email}|{address}", "account": email, "address": address}
    return [(limit, values[limit.name.rsplit(":", 1)[1]]) for limit in limits]


def take(sessions: Sessions, limits: list[tuple[Limit, str]]):
    """Count an attempt under every limit, or refuse it (`Refused`) when one is spent."""
    return _take(sessions=sessions, limits=limits)


def succeeded(sessions: Sessions, limits: list[tuple[Limit, str]]) -> None:
    """A right password: the attempt is given back and the account's failures from this address are forgiven."""
    pair = [(limit, value) for limit, value in limits if limit.name.endswith(":account+address")]
    _give_back(sessions=sessions, limits=[lv for lv in limits if lv not in pair], forget=pair)


def retry_headers(refused: Refused) -> dict[str, str]:
    return {"Retry-After": str(refused.retry_after)}
