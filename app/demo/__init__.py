"""`amplify demo`: the whole product in one command, on throwaway data.

It starts a mail sink and the real service (API, redirects, worker) on a fresh demo database;
creates an organization, API keys, a roster and a campaign through the HTTP API; sends the
digests over real SMTP to the sink; simulates shares, visits, link previews and one mail-scanner
burst through the real `/r/` endpoint over sockets; prints the statistics the API answers, and
leaves the service running until Ctrl-C (or `stop` is set), then shuts it down cleanly (every
click committed).

`run_demo` blocks; a test runs it in a thread with `ready` and `stop` events.
"""

from app.demo.result import DemoError, DemoResult
from app.demo.runner import run_demo

__all__ = ["DemoError", "DemoResult", "run_demo"]
