"""Per-request metrics, request ids and one log line per API request."""

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import request_id
from app.core.metrics import HTTP_REQUESTS

logger = logging.getLogger("amplify.http")

REQUEST_ID_HEADER = b"x-request-id"
_VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def _route_of(scope: Scope) -> str:
    """The matched route's template (never the raw path: it may hold a signed token, and one
    series per id would swamp the metrics)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "unmatched"


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _VALID_ID.fullmatch(value):
            return str(value.decode())
    return None


class ObservedRequests:
    """Counts every framework-served request by route and status, gives it a request id (the
    caller's `X-Request-ID` when sane, else a new one; echoed in the answer) and logs it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope) or uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            route = _route_of(scope)
            HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
            if route.startswith("/api/"):
                logger.info(
                    "%s %s %s %.1f ms",
                    scope["method"],
                    route,
                    status,
                    (time.perf_counter() - started) * 1000,
                )
            request_id.reset(token)
