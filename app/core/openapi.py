"""The OpenAPI document, exact enough for client generators and fuzzers.

Operation ids are the endpoints' names (`create_campaign`), or the `operation_id` a route
gives. The error answers an operation can give are derived from its signature, once, here:
an API key → 401 (and 403 when some role may not call it), a path parameter → 404, any
parameter → 422, a JSON body → 400, 413, 415 and 422. Routes declare only what their
signature cannot show (a 409 and why) as `responses={409: {"description": …}}`. Every error
answer is the one `Problem` schema as `application/problem+json`."""

from collections.abc import Callable, Iterator
from typing import Any, cast

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from app.core.deps import RoleGuard, get_principal
from app.core.errors import PROBLEM_JSON, PROBLEM_TYPES, Problem
from app.core.schemas import NO_CONTROL_CHARACTERS
from app.models import Role

SECURITY_SCHEME = "apiKey"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

DERIVED_DESCRIPTIONS = {
    400: "The body is not well-formed JSON.",
    401: "Missing, unknown or revoked API key.",
    403: "The API key's role may not do this.",
    404: "Unknown id, or one of another organization.",
    413: "The body is too large.",
    415: "The body is not `application/json`.",
    422: "Invalid input; `errors` says where.",
}


def csv_request_body(example: str, more: dict[str, Any] | None = None) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself: CSV (under the media types an
    import accepts) with `example`, plus `more` media types and their descriptions."""
    text = {"schema": {"type": "string"}}
    content = {
        "text/csv": {**text, "example": example},
        "application/csv": text,
        "text/plain": text,
        **(more or {}),
    }
    return {"requestBody": {"required": True, "content": content}}


def operation_id(route: APIRoute) -> str:
    """The endpoint's own name, already a verb_noun (`list_deliveries`)."""
    return route.name


def dependants(dependant: Dependant) -> Iterator[Dependant]:
    """The route's dependant and every dependency's, depth first."""
    yield dependant
    for sub in dependant.dependencies:
        yield from dependants(sub)


def _calls(dependant: Dependant) -> list[Callable[..., Any]]:
    return [d.call for d in dependants(dependant) if d.call is not None]


def derived_statuses(route: APIRoute) -> list[int]:
    """The error statuses the route's signature alone shows it can answer."""
    calls = _calls(route.dependant)
    every = list(dependants(route.dependant))
    statuses: set[int] = set()
    if get_principal in calls:
        statuses.add(401)
    guards = [call for call in calls if isinstance(call, RoleGuard)]
    if any(not role.allows(guard.needed) for guard in guards for role in Role):
        statuses.add(403)
    if any(d.path_params for d in every):
        statuses.add(404)
    if any(d.path_params or d.query_params or d.header_params or d.cookie_params for d in every):
        statuses.add(422)
    if route.body_field is not None:
        statuses |= {400, 413, 415, 422}
    return sorted(statuses)


def _needs_key(route: APIRoute) -> bool:
    return get_principal in _calls(route.dependant)


def _problem_answer(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def _is_problem_slot(answer: dict[str, Any]) -> bool:
    """An error answer with no content of its own (or JSON of no particular shape) is a
    problem+json answer."""
    content: dict[str, Any] = answer.get("content") or {}
    if PROBLEM_JSON in content:
        return True
    return set(content) <= {"application/json"} and not any(
        m.get("schema") for m in content.values()
    )


def _complete_operation(route: APIRoute, operation: dict[str, Any]) -> None:
    answers: dict[str, Any] = operation.setdefault("responses", {})
    declared = {str(code) for code in route.responses}
    for status in derived_statuses(route):
        if str(status) not in declared:
            answers[str(status)] = {"description": DERIVED_DESCRIPTIONS[status]}
    for code, answer in answers.items():
        if code.isdigit() and int(code) >= 400 and _is_problem_slot(answer):
            fallback = DERIVED_DESCRIPTIONS.get(int(code)) or PROBLEM_TYPES[int(code)].title
            description = answer.get("description") if code in declared else None
            # A page may answer some of these in HTML too (a refused form): kept beside.
            pages = {
                media: body
                for media, body in (answer.get("content") or {}).items()
                if media not in (PROBLEM_JSON, "application/json")
            }
            answers[code] = _problem_answer(description or fallback)
            answers[code]["content"].update(pages)
    if _needs_key(route):
        operation["security"] = [{SECURITY_SCHEME: []}]
    for parameter in operation.get("parameters", []):
        _drop_null_from_parameter(parameter)
        if parameter.get("in") in ("path", "query"):
            _refuse_control_characters(parameter.get("schema", {}))
    _drop_null_from_optional_body(operation)


def _drop_null_from_parameter(parameter: dict[str, Any]) -> None:
    """A parameter is left out, never null: `X | None` reads as plain X (what a query string
    can carry, and what generated clients should take)."""
    schema = parameter.get("schema", {})
    variants = schema.get("anyOf", [])
    kept = [v for v in variants if v.get("type") != "null"]
    if len(kept) == 1 and len(variants) == 2:
        del schema["anyOf"]
        schema.update(kept[0])


def _refuse_control_characters(schema: dict[str, Any]) -> None:
    """Say in each free-text parameter what `refuse_control_characters` checks."""
    if schema.get("type") == "string" and not schema.keys() & {"enum", "pattern"}:
        schema["pattern"] = NO_CONTROL_CHARACTERS
    for variant in [*schema.get("anyOf", []), *([schema["items"]] if "items" in schema else [])]:
        _refuse_control_characters(variant)


def _drop_null_from_optional_body(operation: dict[str, Any]) -> None:
    """An optional body is described by its schema alone: sending none is the way to omit
    it, and generated clients then take the model (not a model-or-null)."""
    body = operation.get("requestBody")
    if body is None or body.get("required"):
        return
    for media in body.get("content", {}).values():
        variants = media.get("schema", {}).get("anyOf", [])
        kept = [v for v in variants if v.get("type") != "null"]
        if len(kept) == 1 and len(variants) == 2:
            media["schema"] = kept[0]


def _add_components(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`amplify keys create`, or `POST /api/v1/keys`).",
        }
    }


def complete(schema: dict[str, Any], routes: list[APIRoute]) -> dict[str, Any]:
    _add_components(schema)
    for route in routes:
        path = schema["paths"].get(route.path_format, {})
        for method in route.methods or ():
            operation = path.get(method.lower())
            if operation is not None:
                _complete_operation(route, operation)
    return schema


def api_routes(app: FastAPI) -> list[APIRoute]:
    """The documented API routes, each with its effective path, dependencies and responses
    (FastAPI keeps included routers as such and resolves them lazily)."""
    return [
        cast(APIRoute, context)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.include_in_schema
    ]


def install_openapi(app: FastAPI, extra_paths: dict[str, Any]) -> None:
    """Serve the completed document, plus `extra_paths` (routes answered outside FastAPI)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            try:
                schema = generate()
                schema["paths"].update(extra_paths)
                app.openapi_schema = complete(schema, api_routes(app))
            except Exception:
                app.openapi_schema = None  # never serve a half-completed document
                raise
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
