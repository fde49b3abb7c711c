"""A real SMTP server (aiosmtpd) for tests: records every accepted mail, and can refuse on cue."""

import asyncio
import socket
from collections import defaultdict, deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    recipient: str
    raw: bytes
    sender: str = ""

    def parsed(self) -> EmailMessage:
        message = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class RecordingHandler:
    """Accepts mail, or answers scripted replies per recipient (consumed in order)."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    data_replies: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    data_delay: float = 0.0  # seconds before answering DATA: a slow relay
    # False: a server without 8BITMIME, so every body goes out quoted-printable.
    eight_bit_mime: bool = True

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.eight_bit_mime:
            return responses
        return [r for r in responses if "8BITMIME" not in r.upper()]

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.attempts[address] += 1
        replies = self.rcpt_replies.get(address)
        if replies:
            return replies.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        recipient = envelope.rcpt_tos[0]
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        replies = self.data_replies.get(recipient)
        if replies:
            return replies.popleft()
        self.received.append(
            Received(recipient, envelope.original_content or b"", envelope.mail_from or "")
        )
        return "250 Message accepted"

    def recipients(self) -> list[str]:
        return [r.recipient for r in self.received]

    def message_ids(self) -> list[str]:
        return [str(r.parsed()["Message-ID"]) for r in self.received]


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.handler = RecordingHandler()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
