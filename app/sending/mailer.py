"""The SMTP transport: one reusable connection per sender task, replies classified, a rate cap."""

import asyncio
import logging
import time
from dataclasses import dataclass

import aiosmtplib

from app.core.config import Settings

logger = logging.getLogger("amplify.mailer")


class SendError(Exception):
    """A mail was not accepted. `transient` ones are retried; others fail the delivery."""

    def __init__(self, message: str, *, transient: bool, bounce: bool = False, code: int = 0):
        super().__init__(message)
        self.transient = transient
        self.bounce = bounce
        self.code = code


class RateLimiter:
    """A token bucket shared by every sender task of the process; rate 0 means no cap."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    tls: str
    user: str | None
    password: str | None
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "SmtpConfig":
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=settings.smtp_tls,
            user=settings.smtp_user,
            password=password,
        )


def _reply_error(exc: aiosmtplib.SMTPResponseException, stage: str) -> SendError:
    code = exc.code
    text = f"{stage}: {code} {exc.message}"[:480]
    if 400 <= code < 500:
        return SendError(text, transient=True, code=code)
    # 5xx to RCPT means this address is bad; 5xx to MAIL/DATA is about the message or sender.
    return SendError(text, transient=False, bounce=stage == "RCPT", code=code)


class _Refused(Exception):
    def __init__(self, stage: str, response: aiosmtplib.SMTPResponse) -> None:
        super().__init__(stage)
        self.stage = stage
        self.response = response


class SmtpConnection:
    """One SMTP session, (re)opened on demand and reused for many messages.

    The envelope goes out as plain MAIL/RCPT commands with addresses already validated at the
    API, which spares the client library's per-mail address parsing. Messages must use CRLF
    line endings (mime.build_digest does)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._client: aiosmtplib.SMTP | None = None
        self.eight_bit = False

    async def open(self) -> None:
        """Connect (and log in) unless connected; raises SendError when the server is away."""
        try:
            await self._connected()
        except aiosmtplib.SMTPAuthenticationError as exc:
            await self.close()
            logger.error("SMTP authentication failed: %s %s", exc.code, exc.message)
            raise SendError(f"AUTH: {exc.code} {exc.message}", transient=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            await self.close()
            raise _reply_error(exc, "CONNECT") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            raise SendError(
                f"connection: {type(exc).__name__}: {exc}"[:480], transient=True
            ) from exc

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        await self.close()
        client = aiosmtplib.SMTP(
            hostname=self.config.host,
            port=self.config.port,
            use_tls=self.config.tls == "tls",
            start_tls=self.config.tls == "starttls",
            username=self.config.user,
            password=self.config.password,
            timeout=self.config.timeout,
        )
        await client.connect()
        if client.is_ehlo_or_helo_needed:
            # Greet now: the library would greet lazily before DATA and reset our envelope.
            await client.ehlo()
        self._client = client
        self.eight_bit = client.supports_extension("8bitmime")
        return client

    async def _transaction(
        self, client: aiosmtplib.SMTP, sender: str, recipient: str, message: bytes, eight_bit: bool
    ) -> None:
        mail_args = [f"FROM:<{sender}>".encode()]
        if eight_bit:
            mail_args.append(b"BODY=8BITMIME")
        response = await client.execute_command(b"MAIL", *mail_args)
        if response.code != 250:
            raise _Refused("MAIL", response)
        response = await client.execute_command(b"RCPT", f"TO:<{recipient}>".encode())
        if response.code not in (250, 251):
            raise _Refused("RCPT", response)
        await self._data(client, message)

    async def _data(self, client: aiosmtplib.SMTP, message: bytes) -> None:
        # `client.data()` runs two regular expressions over every message to fix line endings
        # and stuff dots; our messages already end lines in CRLF, so dot-stuffing is a plain
        # replace. On a 20 KB digest that is most of the client's per-mail cost.
        response = await client.execute_command(b"DATA")
        if response.code != 354:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
        stuffed = message.replace(b"\r\n.", b"\r\n..")
        if stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        protocol = client.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("connection lost")
        protocol.write(stuffed + b".\r\n")
        response = await protocol.read_response(timeout=self.config.timeout)
        if response.code != 250:
            raise aiosmtplib.SMTPDataError(response.code, response.message)

    async def send(
        self, sender: str, recipient: str, message: bytes, *, eight_bit: bool = False
    ) -> None:
        """Send one message; raises SendError with the classified reply."""
        await self.open()
        assert self._client is not None
        client = self._client
        try:
            await self._transaction(client, sender, recipient, message, eight_bit)
        except _Refused as refused:
            await self._reset(client)
            code, text = refused.response.code, refused.response.message
            raise _reply_error(
                aiosmtplib.SMTPResponseException(code, text), refused.stage
            ) from None
        except aiosmtplib.SMTPDataError as exc:
            await self._reset(client)
            raise _reply_error(exc, "DATA") from exc
        except aiosmtplib.SMTPResponseException as exc:
            # 421 and friends: the server is closing or unwilling; reconnect next time.
            await self.close()
            raise _reply_error(exc, "SMTP") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as exc:
            await self.close()
            raise SendError(
                f"connection: {type(exc).__name__}: {exc}"[:480], transient=True
            ) from exc

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        """RSET after a refusal so the session can carry the next mail; a 421 closes it."""
        try:
            response = await client.execute_command(b"RSET")
            if response.code != 250:
                await self.close()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            await self.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await asyncio.wait_for(client.quit(), timeout=2)
        except Exception:
            client.close()
