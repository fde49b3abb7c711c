"""Every error leaves as RFC 9457 problem+json, rendered by one set of handlers.

A problem's `type` is `/problems/<slug>`, a short page this service serves (see
`app/core/problem_pages.py`), so the URI resolves wherever the service runs."""

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("amplify.errors")

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ProblemType:
    status: int
    slug: str
    title: str
    description: str

    @property
    def uri(self) -> str:
        return f"/problems/{self.slug}"


PROBLEM_TYPES: dict[int, ProblemType] = {
    p.status: p
    for p in (
        ProblemType(
            400,
            "bad-request",
            "Bad request",
            "The request could not be read: the body is not well-formed JSON (or not UTF-8).",
        ),
        ProblemType(
            401,
            "unauthorized",
            "Unauthorized",
            "No API key was sent as `Authorization: Bearer <key>`, or the key is unknown or "
            "revoked.",
        ),
        ProblemType(
            403,
            "forbidden",
            "Forbidden",
            "The API key's role may not do this (viewer < editor < admin).",
        ),
        ProblemType(
            404,
            "not-found",
            "Not found",
            "No such resource in the key's organization (another organization's ids answer "
            "404 too), or no such path.",
        ),
        ProblemType(
            405, "method-not-allowed", "Method not allowed", "The path does not take that method."
        ),
        ProblemType(
            409,
            "conflict",
            "Conflict",
            "The resource's state does not allow this (a campaign already sent, a duplicate "
            "email …); `detail` says which.",
        ),
        ProblemType(
            413,
            "payload-too-large",
            "Payload too large",
            "The request body is larger than the service accepts (`AMPLIFY_MAX_BODY_BYTES`), "
            "or an import has more rows than allowed.",
        ),
        ProblemType(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "The body's `Content-Type` is not one the operation reads (JSON operations want "
            "`application/json`).",
        ),
        ProblemType(
            422,
            "invalid-input",
            "Invalid input",
            "A parameter or a field of the body is not valid; `errors` lists each one with its "
            "location (`loc`) and the reason (`msg`).",
        ),
        ProblemType(
            502,
            "bad-gateway",
            "Bad gateway",
            "A service the request depends on did not answer as it should (for example Amazon "
            "SNS, when a bounce callback's subscription is confirmed).",
        ),
        ProblemType(
            500,
            "internal-error",
            "Internal server error",
            "An unexpected error on the server; it is logged with the request id.",
        ),
    )
}


def problem_title(status: int) -> str:
    found = PROBLEM_TYPES.get(status)
    if found is not None:
        return found.title
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_type_uri(status: int) -> str:
    """`/problems/<slug>`, or `about:blank` (RFC 9457: the status alone says it all)."""
    found = PROBLEM_TYPES.get(status)
    return found.uri if found is not None else "about:blank"


class ProblemError(BaseModel):
    loc: list[str] = Field(
        description="Where: `body`, `query`, `path` or `header`, then the field's path."
    )
    msg: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """RFC 9457 problem details, with the invalid fields in `errors`."""

    type: str = Field(
        description="The problem type: `/problems/<slug>`, a page of this service describing it."
    )
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong in this request.")
    errors: list[ProblemError] = Field(
        default_factory=list, description="Each invalid input (422 only)."
    )


class AppError(Exception):
    """A domain error that knows its HTTP status."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class MalformedBody(AppError):
    status = 400
    title = "Bad request"


class NotFound(AppError):
    status = 404
    title = "Not found"


class Conflict(AppError):
    status = 409
    title = "Conflict"


class InvalidInput(AppError):
    status = 422
    title = "Invalid input"


class PayloadTooLarge(AppError):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(AppError):
    status = 415
    title = "Unsupported media type"


class Unauthorized(AppError):
    status = 401
    title = "Unauthorized"


class Forbidden(AppError):
    status = 403
    title = "Forbidden"


def problem_body(
    status: int, title: str, detail: str, *, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type_uri(status),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, title, detail, errors=errors),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
        for error in exc.errors()
    ]


def _expects_json_body(request: Request) -> bool:
    route = request.scope.get("route")
    return getattr(route, "body_field", None) is not None


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem(exc.status, exc.title, exc.detail, errors=exc.errors, headers=headers)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        return problem(400, "Bad request", "The request body is not well-formed JSON.")
    # FastAPI hands a body it did not parse as JSON (another or no Content-Type) on as bytes.
    if isinstance(exc.body, bytes | bytearray) and _expects_json_body(request):
        return problem(
            415,
            "Unsupported media type",
            "Send the body as JSON with 'Content-Type: application/json'.",
        )
    return problem(
        422, "Invalid input", "The request is not valid.", errors=_validation_errors(exc)
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette names only the first route's)."""
    scope = {**request.scope, "method": ""}
    methods: set[str] = set()
    for context in iter_route_contexts(request.app.routes):
        route = context.original_route
        if isinstance(route, Route) and route.methods and route.matches(scope)[0] != Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem(
        exc.status_code, problem_title(exc.status_code), str(exc.detail), headers=headers or None
    )


class UnexpectedErrors:
    """Answers an unexpected exception with a 500 problem and keeps the connection.

    Starlette's own last-resort handler re-raises after answering, and uvicorn closes the
    connection of any request whose application raised: a client's kept-alive connection
    (and every request pipelined on it) would be lost with the one failed request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            logger.exception("unhandled error", exc_info=exc)
            if started:  # half an answer is out: only closing tells the client
                raise
            response = problem(500, "Internal server error", "An unexpected error occurred.")
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
