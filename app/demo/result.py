"""What a demo run ends with, and the one error it shows without a traceback."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.demo.clicks import ClickTally


class DemoError(Exception):
    """The demo cannot go on; the message says why (shown without a traceback)."""


@dataclass
class DemoResult:
    host: str
    port: int
    base_url: str
    database_url: str
    outbox: Path
    campaign_id: int | None = None
    admin_key: str = ""
    viewer_key: str = ""
    mails: int = 0
    tally: ClickTally = field(default_factory=ClickTally)
    stats: dict[str, Any] = field(default_factory=dict)
    top: list[dict[str, Any]] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    ready_seconds: float | None = None
    interrupted: bool = False  # stopped before it was ready
