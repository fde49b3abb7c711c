"""ETags for stats answers: a hash of the body, so the tag changes exactly when it does."""

import hashlib
from collections import OrderedDict
from collections.abc import Hashable

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


class AnswerCache:
    """Answers by (what was asked, the version of their inputs), in process memory.

    A dashboard polls the same statistics over and over while nothing changed, and a 304 needs
    the body's tag: the version (a few indexed max/count reads) decides whether the stored body
    still holds, so unchanged answers and 304s skip the aggregation.
    """

    def __init__(self, max_entries: int = 512) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[Hashable, bytes]] = OrderedDict()

    def get(self, key: Hashable, version: Hashable) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != version:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: Hashable, version: Hashable, body: bytes) -> None:
        self._entries[key] = (version, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
