"""`/problems/<slug>`: the page each problem's `type` URI points at."""

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from app.core.errors import PROBLEM_TYPES, NotFound, ProblemType

router = APIRouter(prefix="/problems", tags=["problems"])

_BY_SLUG = {p.slug: p for p in PROBLEM_TYPES.values()}
_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
_STYLE = "font-family:system-ui,sans-serif;margin:3em;max-width:40em;line-height:1.5"


def _page(title: str, body: str) -> HTMLResponse:
    html = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(title)}</title>"
        f"<body style='{_STYLE}'>{body}</body></html>"
    )
    return HTMLResponse(html, headers=_HEADERS)


def _describe(problem: ProblemType) -> str:
    return (
        f"<h1>{problem.status} {escape(problem.title)}</h1><p>{escape(problem.description)}</p>"
        "<p>Answers with this <code>type</code> are <code>application/problem+json</code> "
        "(RFC 9457): <code>type</code>, <code>title</code>, <code>status</code>, "
        "<code>detail</code> and, for invalid input, <code>errors</code> "
        "(<code>loc</code>, <code>msg</code>).</p><p><a href='/problems'>All problem types</a></p>"
    )


@router.get("", response_class=HTMLResponse)
async def list_problem_types() -> HTMLResponse:
    """Every problem type the API answers with."""
    items = "".join(
        f"<li><a href='{p.uri}'>{p.status} {escape(p.title)}</a></li>"
        for p in PROBLEM_TYPES.values()
    )
    return _page("Problem types", f"<h1>Problem types</h1><ul>{items}</ul>")


@router.get("/{slug}", response_class=HTMLResponse)
async def get_problem_type(slug: str) -> HTMLResponse:
    """What a problem `type` means."""
    problem = _BY_SLUG.get(slug)
    if problem is None:
        raise NotFound(f"There is no problem type {slug!r}.")
    return _page(problem.title, _describe(problem))
