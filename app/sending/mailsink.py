"""`amplify mailsink`: a local SMTP server that stores every mail as an .eml file."""

import asyncio
import logging
import secrets
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

logger = logging.getLogger("amplify.mailsink")


class OutboxHandler:
    """Writes each accepted mail to `<dir>/<time>-<random>.eml`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = 0

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}.eml"
        path = self.directory / name
        await asyncio.to_thread(path.write_bytes, content)
        self.count += 1
        logger.info("stored mail for %s as %s", ",".join(envelope.rcpt_tos), name)
        return "250 Message accepted for delivery"


def start_mailsink(host: str, port: int, directory: Path) -> Controller:
    controller = Controller(
        OutboxHandler(directory), hostname=host, port=port, data_size_limit=10 * 1024 * 1024
    )
    controller.start()
    return controller
