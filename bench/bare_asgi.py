"""The redirect benchmark's ceiling: a framework-free ASGI app answering every request with
`302 Location: https://example.com/`, `Cache-Control: no-store` and an empty body.

    python -m bench.bare_asgi serve --host 127.0.0.1 --port 8001   (from the repository root)

runs it through `amplify serve` itself (`app.cli`, same settings from AMPLIFY_* variables) with
only the ASGI app swapped, so uvicorn gets exactly the arguments the service gets (workers, loop,
http implementation, proxy headers, log level, access log). It prints those arguments to stderr.
With BARE_ASGI_ACCESS_LOG=0 it passes access_log=False on top (to show what access logging costs).
`python -m uvicorn bench.bare_asgi:app ...` works too, with whatever flags you give it.
"""

import os
import sys
from pathlib import Path
from typing import Any

APP_REF = "bench.bare_asgi:app"

START = {
    "type": "http.response.start",
    "status": 302,
    "headers": [
        (b"location", b"https://example.com/"),
        (b"cache-control", b"no-store"),
        (b"content-length", b"0"),
    ],
}
BODY = {"type": "http.response.body", "body": b""}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send(START)
        await send(BODY)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import uvicorn

    from app import cli

    real_run = uvicorn.run

    def run(app_ref: Any, **kwargs: Any) -> None:
        used = dict(kwargs)
        if os.environ.get("BARE_ASGI_ACCESS_LOG") == "0":
            used["access_log"] = False
        print(
            f"bare_asgi: amplify serve calls uvicorn.run({app_ref!r}, **{kwargs!r}); "
            f"running uvicorn.run({APP_REF!r}, **{used!r})",
            file=sys.stderr,
            flush=True,
        )
        real_run(APP_REF, **used)

    uvicorn.run = run  # `amplify serve` looks it up at call time
    cli.main()


if __name__ == "__main__":
    main()
