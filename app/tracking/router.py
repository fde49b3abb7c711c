"""`/r/{code}`: tracked redirects."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from app.core.db import utcnow
from app.core.deps import SessionDep
from app.models import Click, Link
from app.tracking.codes import looks_like_code

router = APIRouter(tags=["tracking"])

REDIRECT_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
NOT_FOUND_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Link not found</title>"
    "<body style='font-family:system-ui,sans-serif;margin:3em'><h1>Link not found</h1>"
    "<p>This link does not exist or has been removed.</p></body></html>"
)


@router.get("/r/{code}", response_class=Response)
async def follow(code: str, request: Request, session: SessionDep) -> Response:
    """Record the click and redirect to the link's stored target."""
    return await _redirect(code, request, session)


@router.head("/r/{code}", response_class=Response)
async def follow_head(code: str, request: Request, session: SessionDep) -> Response:
    """Answer like GET without recording anything (mail clients and previews send HEADs)."""
    return await _redirect(code, request, session)


async def _redirect(code: str, request: Request, session: SessionDep) -> Response:
    link = None
    if looks_like_code(code):
        link = await session.scalar(select(Link).where(Link.code == code))
    if link is None:
        return HTMLResponse(NOT_FOUND_PAGE, status_code=404, headers={"Cache-Control": "no-store"})
    if request.method == "GET":
        session.add(Click(link_id=link.id, at=utcnow(), is_bot=False))
    return Response(status_code=302, headers={**REDIRECT_HEADERS, "Location": link.target})
