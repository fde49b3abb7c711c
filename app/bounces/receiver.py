"""`amplify bounces`: an SMTP receiver (aiosmtpd) for the bounce address.

Every mail is accepted with 250 once it is read, whatever it holds: a refusal would make the
reporting server bounce the bounce. Nothing is ever sent from here, so there is no loop to start.
Mail it cannot parse or map is logged and counted (`amplify_bounces_total`), never raised."""

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bounces import service
from app.bounces.reports import parse_inbound
from app.bounces.verp import ReturnPaths
from app.core.db import utcnow
from app.core.metrics import BOUNCES

logger = logging.getLogger("amplify.bounces")


class BounceHandler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        return_paths: ReturnPaths | None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.return_paths = return_paths

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        recipients = [str(r) for r in envelope.rcpt_tos]
        outcome = await self.process(raw, recipients)
        BOUNCES.labels(outcome).inc()
        return "250 OK"

    async def process(self, raw: bytes, recipients: list[str]) -> str:
        """The outcome label: hard, soft, complaint, duplicate, unmapped, unparsed or error."""
        try:
            report = parse_inbound(raw, recipients=recipients, return_paths=self.return_paths)
        except Exception:
            logger.exception("an inbound mail could not be parsed (%s bytes)", len(raw))
            return "error"
        if report is None:
            logger.info("inbound mail is no bounce or complaint we understand; dropped")
            return "unparsed"
        try:
            async with self.sessionmaker.begin() as session:
                recorded = await service.record(session, report, now=utcnow())
        except Exception:
            logger.exception("recording a %s bounce failed", report.kind)
            return "error"
        if recorded == service.Recorded.UNMAPPED:
            logger.warning(
                "a %s report names no delivery we know (message id %s); dropped",
                report.kind,
                report.message_id,
            )
            return "unmapped"
        if recorded == service.Recorded.DUPLICATE:
            return "duplicate"
        logger.info("%s bounce recorded for message %s", report.kind, report.message_id)
        return report.kind.value


async def start_receiver(
    handler: BounceHandler, *, host: str, port: int, max_bytes: int
) -> asyncio.Server:
    """Listen in the running loop (so the handler shares the loop's database engine)."""
    loop = asyncio.get_running_loop()

    def protocol() -> Any:
        return SMTP(
            handler,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            hostname="amplify-bounces",
            ident="Amplify bounce receiver",
        )

    return await loop.create_server(protocol, host=host, port=port)
