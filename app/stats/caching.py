"""ETags for stats answers: a hash of the body, so the tag changes exactly when it does."""

import hashlib

from fastapi import Request, Response

CACHE_CONTROL = "private, no-cache"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison: `*`, or any listed tag equal to ours with W/ ignored."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.removeprefix("W/") == etag:
            return True
    return False


def conditional(request: Request, body: bytes, media_type: str, **headers: str) -> Response:
    """The answer, or a 304 when the client already holds this exact body."""
    etag = etag_of(body)
    common = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=common)
    return Response(content=body, media_type=media_type, headers={**common, **headers})
