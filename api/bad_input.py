"""Input no database can store is refused at the door with 422 and a reason, on every route at once.

Two kinds reach SQLite or PostgreSQL and fail there (a 500) however well a route checks its own fields:
integers outside the signed 64-bit range, and JSON strings holding a lone surrogate (`"\\ud800"`), which is
not a character and cannot be encoded as UTF-8. Integers are bounded for every declared int parameter of
every route by one app-wide dependency; JSON bodies are checked whole by one middleware, before any route
(or a validation error echoing the input) sees them.
"""

from __future__ import annotations

import json
from typing import get_args

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse

from registry.types import INT64_MAX, INT64_MIN

RANGE_MESSAGE = f"Input should be a whole number from {INT64_MIN} to {INT64_MAX}"
SURROGATE_MESSAGE = ("The text holds a lone surrogate (such as \\ud800), which is not a character; "
                     "send valid Unicode text")


def _is_int(annotation) -> bool:
    return annotation is int or int in get_args(annotation)


def _int_parameters(route: APIRoute) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The path and query parameters the route (or one of its dependencies) declares as int."""
    cached = getattr(route, "_int_parameters", None)  # routes are not hashable; they keep their own answer
    if cached is None:
        cached = route._int_parameters = _declared_ints(route.dependant)
    return cached


def _declared_ints(root) -> tuple[tuple[str, ...], tuple[str, ...]]:
    path, query, todo = set(), set(), [root]
    while todo:
        dependant = todo.pop()
        path |= {p.name for p in dependant.path_params if _is_int(p.field_info.annotation)}
        query |= {p.alias for p in dependant.query_params if _is_int(p.field_info.annotation)}
        todo += dependant.dependencies
    return tuple(path), tuple(query)


def _out_of_range(value) -> bool:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return False  # not a number at all: the route's own validation says so
    return not INT64_MIN <= number <= INT64_MAX


async def bounded_integers(request: Request) -> None:
    """An app-wide dependency: refuse an int path or query parameter that no registry column can hold."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    path_names, query_names = _int_parameters(route)
    errors = [{"type": "int_range", "loc": ("path", name), "msg": RANGE_MESSAGE}
              for name in path_names if _out_of_range(request.path_params.get(name))]
    errors += [{"type": "int_range", "loc": ("query", name), "msg": RANGE_MESSAGE}
               for name in query_names for value in request.query_params.getlist(name) if _out_of_range(value)]
    if errors:
        raise RequestValidationError(errors)


def _problems(value, loc: tuple) -> list[dict]:
    """What in a parsed JSON document no database can store, with where it is."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return [{"type": "string_unicode", "loc": list(loc), "msg": SURROGATE_MESSAGE}]
        return []
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [] if INT64_MIN <= value <= INT64_MAX else [{"type": "int_range", "loc": list(loc), "msg": RANGE_MESSAGE}]
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            found += _problems(key, (*loc, "(key)")) + _problems(item, (*loc, key))
        return found
    if isinstance(value, list):
        return [p for n, item in enumerate(value) for p in _problems(item, (*loc, n))]
    return []


class StorableJson:
    """Refuse a JSON request body with a lone surrogate or an integer beyond 64 bits (422), before routing."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or b"json" not in dict(scope.get("headers") or []).get(b"content-type", b""):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # the client went away: let the app see it
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            problems = _problems(json.loads(body), ("body",)) if body else []
        except UnicodeDecodeError:
            problems = [{"type": "json_invalid", "loc": ["body"], "msg": "The body is not valid UTF-8"}]
        except ValueError:
            problems = []  # not JSON: the route's validation answers that with its own 422
        if problems:
            await JSONResponse({"detail": problems}, 422)(scope, receive, send)
            return
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
