"""The demo's output: progress lines and the summary it prints when ready."""

import sys
import time
from collections.abc import Callable
from typing import Any

import typer

from app.demo.result import DemoResult

PROGRESS_SECONDS = 0.5  # how often a progress line is printed when stdout is not a terminal
TOP_AMPLIFIERS = 5
Echo = Callable[[str], None]


class Console:
    """Lines to `echo`; progress overwrites one terminal line, else a line every half second."""

    def __init__(self, echo: Echo | None) -> None:
        self.live = echo is None and sys.stdout.isatty()
        self.echo: Echo = echo or typer.echo
        self._last = 0.0
        self._open = False  # a live progress line waits for its end

    def line(self, text: str = "") -> None:
        if self._open:
            typer.echo("")
            self._open = False
        self.echo(text)

    def progress(self, label: str, done: int, total: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < (0.1 if self.live else PROGRESS_SECONDS):
            return
        self._last = now
        text = f"  {label} {done}/{total}"
        if self.live:
            typer.echo(f"\r{text}", nl=final)
            self._open = not final
        else:
            self.echo(text)


def _money(amount: float) -> str:
    return f"{amount:,.2f}"


def summary_lines(stats: dict[str, Any], top: list[dict[str, Any]], name: str) -> list[str]:
    """The summary table: per network, the top amplifiers, EMV and bot clicks."""
    currency = stats["currency"]
    emv_head = f"EMV ({currency})"
    lines = [
        f"Campaign {name!r}: {stats['sent']}/{stats['recipients']} digests sent, "
        f"{stats['sharers']} sharers ({stats['share_rate']:.0%}), potential reach "
        f"{stats['potential_reach']:,}",
        "",
        f"{'network':<14}{'share clicks':>14}{'visits':>10}{'unique visitors':>17}{emv_head:>14}",
    ]
    for network, counts in stats["by_network"].items():
        lines.append(
            f"{network:<14}{counts['share_clicks']:>14,}{counts['visits']:>10,}"
            f"{counts['unique_visitors']:>17,}{_money(counts['emv']):>14}"
        )
    lines.append(
        f"{'all networks':<14}{stats['share_clicks']:>14,}{stats['visits']:>10,}"
        f"{stats['unique_visitors']:>17,}{_money(stats['emv']):>14}"
    )
    lines += ["", f"{'top amplifiers':<26}{'points':>8}{'share clicks':>14}{'visits':>10}"]
    for row in top:
        who = row["name"] or row["email"]
        who = who if len(who) <= 24 else who[:23] + "…"
        lines.append(f"{who:<26}{row['points']:>8,}{row['share_clicks']:>14,}{row['visits']:>10,}")
    lines += [
        "",
        f"Campaign EMV: {currency} {_money(stats['emv'])}",
        f"Bot clicks: {stats['bot_clicks']:,} (link previews and a mail-scanner burst; flagged, "
        "never counted above)",
    ]
    return lines


def show_ready(console: Console, result: DemoResult) -> None:
    console.line()
    for line in result.summary:
        console.line(line)
    console.line()
    rows = [
        ("Dashboard", f"{result.base_url}/dashboard  (sign in with the viewer key)"),
        ("API docs", f"{result.base_url}/docs"),
        ("Viewer key", result.viewer_key),
        ("Admin key", result.admin_key),
        ("Outbox", f"{result.outbox}  ({result.mails} mails)"),
        ("Database", shown_database(result.database_url)),
    ]
    for label, value in rows:
        console.line(f"{label + ':':<12}{value}")
    console.line()
    console.line(f"Ready in {result.ready_seconds:.1f} s. Press Ctrl-C to stop.")


def shown_database(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"{parsed.database} (SQLite, recreated by every demo run)"
    return parsed.render_as_string(hide_password=True)
