"""Bad input gets 404 or 422 with a message on every route, never a 500: integers too large for the registry
(2^63 and more) and lone surrogates in JSON strings, on every route the app serves (so a new route is covered
as soon as it exists), plus a schemathesis run over the whole OpenAPI schema."""

from __future__ import annotations

import json
import re

import httpx
from fastapi.routing import APIRoute, iter_route_contexts

from tests.web_support import as_session, make_staff, publish_workspace_sop
from web.access import ANONYMOUS, CUSTOMER, RULES, rule_key

TOO_BIG = 2**63
LONE_SURROGATE = "\ud800"


def _routes(app):
    """(method, path, route) of every API route and page, HEAD left out."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path is not None:
            for method in sorted(set(context.methods or route.methods) - {"HEAD"}):
                yield method, context.path, route


def _inputs(route: APIRoute) -> tuple[dict, dict]:
    """The route's declared path and query parameters: name -> annotation."""
    path, query, todo = {}, {}, [route.dependant]
    while todo:  # the route's own parameters and those of its dependencies
        dependant = todo.pop()
        path.update({p.name: p.field_info.annotation for p in dependant.path_params})
        query.update({p.alias: p.field_info.annotation for p in dependant.query_params})
        todo += dependant.dependencies
    return path, query


def _is_int(annotation) -> bool:
    return annotation is int or "int" in re.findall(r"\w+", str(annotation))


async def _callers(desk) -> dict[str, dict]:
    publish_workspace_sop(desk.sessions)
    concern = await desk.intake.open(email="bad@example.com", name="Bad", subject="Bad input", body="Hi",
                                     channel="web", category="workspace")
    admin = make_staff(desk.sessions, "root@bad.test", "admin")
    return {"admin": {**as_session(desk, user_id=admin["id"]), **desk.auth},
            CUSTOMER: as_session(desk, customer_id=concern.customer_id),
            ANONYMOUS: as_session(desk)}, concern.id


def _caller_for(key: str) -> str:
    allowed = RULES[key]
    return "admin" if "admin" in allowed else CUSTOMER if CUSTOMER in allowed else ANONYMOUS


def _problem(response: httpx.Response, where: str) -> str | None:
    if response.status_code >= 500:
        return f"{where}: {response.status_code} {response.text[:300]}"
    return None


async def test_integers_too_large_for_the_registry_get_404_or_422_on_every_route(desk):
    callers, concern_id = await _callers(desk)
    problems, tried = [], 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app, raise_app_exceptions=False),
                                 base_url="http://desk") as http:
        for method, path, route in _routes(desk.app):
            key = rule_key(method, path)
            headers = callers[_caller_for(key)]
            path_params, query_params = _inputs(route)
            defaults = {name: concern_id if name == "concern_id" else "1" for name in path_params}
            targets = [("path", n) for n, a in path_params.items() if _is_int(a)]
            targets += [("query", n) for n, a in query_params.items() if _is_int(a)]
            for where, name in targets:
                values = {**defaults, **({name: str(TOO_BIG)} if where == "path" else {})}
                url = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values[m.group(1)], path)
                params = {name: str(TOO_BIG)} if where == "query" else {}
                response = await http.request(method, url, params=params, headers=headers, follow_redirects=False)
                tried += 1
                label = f"{method} {path} with {where} {name}={TOO_BIG}"
                problems.append(_problem(response, label))
                if response.status_code not in (404, 422):
                    problems.append(f"{label}: {response.status_code}, expected 404 or 422")
                elif "application/json" in response.headers.get("content-type", ""):
                    assert response.json()["detail"], label
    assert tried >= 20
    problems = [p for p in problems if p]
    assert problems == [], "\n".join(problems)


def _sample(schema: dict, components: dict):
    """A valid value for a JSON schema of the API's (its first choice of everything)."""
    if "$ref" in schema:
        return _sample(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if "anyOf" in schema:
        return _sample(next(s for s in schema["anyOf"] if s.get("type") != "null"), components)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        return {name: _sample(sub, components) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_sample(schema.get("items", {}), components)]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "boolean":
        return False
    if schema.get("format") == "email":
        return "someone@example.com"
    return "text"


def _spoilt(value, bad):
    """Every variant of `value` with one string (or one integer) replaced by `bad`, with where it is."""
    if isinstance(value, dict):
        for name, sub in value.items():
            for where, spoilt in _spoilt(sub, bad):
                yield f"{name}.{where}".rstrip("."), {**value, name: spoilt}
    elif isinstance(value, list):
        for where, spoilt in _spoilt(value[0], bad):
            yield f"0.{where}".rstrip("."), [spoilt]
    elif isinstance(value, str) and isinstance(bad, str) or isinstance(value, int) and not isinstance(value, bool) \
            and isinstance(bad, int):
        yield "", bad


async def test_lone_surrogates_and_huge_integers_in_json_bodies_get_422_on_every_route(desk):
    callers, concern_id = await _callers(desk)
    schema = (await desk.http.get("/openapi.json")).json()
    components = schema.get("components", {}).get("schemas", {})
    problems, tried = [], 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app, raise_app_exceptions=False),
                                 base_url="http://desk") as http:
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                body = operation.get("requestBody", {}).get("content", {}).get("application/json")
                if body is None:
                    continue
                valid = _sample(body["schema"], components)
                url = re.sub(r"\{\w+\}", concern_id if "concern" in path else "1", path)
                headers = {**callers[_caller_for(rule_key(method.upper(), path))], "content-type": "application/json"}
                for bad in (LONE_SURROGATE, TOO_BIG):
                    for where, spoilt in _spoilt(valid, bad):
                        response = await http.request(method.upper(), url, headers=headers,
                                                      content=json.dumps(spoilt))
                        tried += 1
                        label = f"{method.upper()} {path} with {where}={bad!r}"
                        problems.append(_problem(response, label))
                        if response.status_code != 422:
                            problems.append(f"{label}: {response.status_code}, expected 422")
                        elif bad == LONE_SURROGATE:
                            assert "surrogate" in json.dumps(response.json()["detail"]), label
    assert tried >= 10
    problems = [p for p in problems if p]
    assert problems == [], "\n".join(problems)


EXAMPLES_PER_OPERATION = 15


async def test_no_generated_request_gets_a_500_on_any_api_operation(desk):
    """Schemathesis draws requests from /openapi.json for every operation; none may answer 500."""
    import warnings

    import schemathesis
    from hypothesis.errors import NonInteractiveExampleWarning

    callers, concern_id = await _callers(desk)
    schema = schemathesis.openapi.from_dict((await desk.http.get("/openapi.json")).json())
    problems, operations = [], 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app, raise_app_exceptions=False),
                                 base_url="http://desk") as http:
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            strategy = operation.as_strategy()
            headers = callers[_caller_for(rule_key(operation.method.upper(), operation.path))]
            for _ in range(EXAMPLES_PER_OPERATION):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NonInteractiveExampleWarning)
                    case = strategy.example()
                sent = case.as_transport_kwargs(base_url="http://desk")
                response = await http.request(
                    sent["method"], sent["url"], params=sent.get("params"), json=sent.get("json"),
                    content=sent.get("data") if isinstance(sent.get("data"), (bytes, str)) else None,
                    headers={**(sent.get("headers") or {}), **headers})
                if response.status_code >= 500:
                    problems.append(f"{case.method} {case.formatted_path} {sent.get('params')} {sent.get('json')!r}: "
                                    f"{response.status_code} {response.text[:200]}")
    assert operations >= 15
    assert problems == [], "\n".join(problems[:20])
