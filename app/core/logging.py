"""Logging: one JSON object per line when stderr is not a terminal (log shippers), readable
lines on a terminal; every line of a request carries its request id. Nothing logs client
addresses (uvicorn's access log is off), and API keys are masked should one ever reach a message.
"""

import logging
import re
import sys
from contextvars import ContextVar
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

_SECRETS = re.compile(r"(amp_)[A-Za-z0-9_\-]{8,}|(Bearer\s+)\S+", re.IGNORECASE)


def _mask(text: str) -> str:
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


class _RequestContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.__dict__.pop("color_message", None)  # uvicorn's terminal-colored duplicate
        if isinstance(record.msg, str) and not record.args:
            record.msg = _mask(record.msg)
        elif record.args:
            record.msg = _mask(record.getMessage())
            record.args = None
        return True


def log_handler(stream: TextIO, *, json_lines: bool) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    handler.addFilter(_RequestContext())
    return handler


def configure_logging(*, level: str = "INFO", json_lines: bool | None = None) -> None:
    """Configure the root logger once per process (uvicorn's loggers propagate to it)."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = log_handler(sys.stderr, json_lines=json_lines)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # uvicorn's access log writes every client's address, and uvicorn turns it on whenever
    # that logger has a handler anywhere up the tree (root's included): cut it off.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
