"""Liveness and readiness probes."""

import hmac
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select, text

from app.core.deps import bearer_token
from app.core.errors import Unauthorized
from app.core.metrics import DELIVERIES_PENDING, WEBHOOKS_PENDING, exposition
from app.core.migrate import current_revision, head_revision
from app.models import Delivery, DeliveryStatus
from app.webhooks.store import pending_count as webhooks_pending

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok"]


@router.get("/healthz", operation_id="get_health", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable"]
    migration: str | None = None
    head: str | None = Field(default=None, description="The newest migration, when behind.")
    detail: str | None = Field(default=None, description="Why the database is unreachable.")


@router.get(
    "/readyz",
    operation_id="get_readiness",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "The database is unreachable or its schema is not at the newest "
            "migration.",
        }
    },
)
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the newest migration."""
    engine = request.app.state.engine
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            revision = await current_revision(connection)
    except Exception as exc:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "detail": type(exc).__name__},
            status_code=503,
        )
    head = head_revision()
    if revision != head:
        return JSONResponse(
            {"status": "unavailable", "database": "ok", "migration": revision, "head": head},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok", "migration": revision})


@router.get(
    "/metrics",
    operation_id="get_metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        401: {"description": "`AMPLIFY_METRICS_TOKEN` is set and was not sent."},
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (with `AMPLIFY_METRICS_TOKEN` set, send it as a Bearer token)."""
    token = request.app.state.settings.metrics_token
    if token is not None:
        sent = bearer_token(request) or ""
        if not hmac.compare_digest(sent.encode(), token.encode()):
            raise Unauthorized("Send AMPLIFY_METRICS_TOKEN as 'Authorization: Bearer <token>'.")
    try:
        async with request.app.state.engine.connect() as connection:
            pending = await connection.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status == DeliveryStatus.PENDING)
            )
            WEBHOOKS_PENDING.set(await webhooks_pending(connection))
        DELIVERIES_PENDING.set(pending or 0)
    except Exception:  # the database being down must not hide the other metrics
        pass
    body, content_type = exposition()
    return Response(body, media_type=content_type)
