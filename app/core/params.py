"""Checks on query and path values that hold for every route, run before the route's own."""

from fastapi import Request
from fastapi.routing import APIRoute

from app.core.errors import InvalidInput
from app.core.openapi import dependants
from app.core.schemas import has_control_characters

_QUERY_NAMES: dict[int, frozenset[str]] = {}  # by id(): routes are not hashable, and live forever


def _query_names(route: APIRoute) -> frozenset[str]:
    names = _QUERY_NAMES.get(id(route))
    if names is None:
        names = frozenset(p.alias for d in dependants(route.dependant) for p in d.query_params)
        _QUERY_NAMES[id(route)] = names
    return names


async def refuse_control_characters(request: Request) -> None:
    """A declared query value or a path segment with a control character is a 422.

    PostgreSQL refuses NUL in text (a 500 if it reached a query), and no name, tag, token or
    time zone has control characters."""
    route = request.scope.get("route")
    declared = _query_names(route) if isinstance(route, APIRoute) else frozenset()
    located = [
        *(("query", n, v) for n, v in request.query_params.multi_items() if n in declared),
        *(("path", n, v) for n, v in request.path_params.items() if isinstance(v, str)),
    ]
    errors = [
        {"loc": [where, name], "msg": "must not contain control characters"}
        for where, name, value in located
        if has_control_characters(value)
    ]
    if errors:
        raise InvalidInput("A parameter holds control characters.", errors=errors)
