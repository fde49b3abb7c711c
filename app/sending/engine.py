"""The send engine assembled from its parts, for `amplify serve` and `amplify worker`."""

import asyncio
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import utcnow
from app.core.security import Signer
from app.sending.compose import DigestComposer
from app.sending.deliverability import with_deliverability
from app.sending.mailer import SmtpConfig, SmtpConnection
from app.sending.store import SqlDeliveryStore
from app.sending.worker import Worker, new_worker_id
from app.tracking.retention import purge_clicks_periodically


def build_worker(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    signer: Signer,
    *,
    smtp: SmtpConfig | None = None,
    worker_id: str | None = None,
    now: Callable[[], datetime] = utcnow,
) -> Worker:
    """`now`: the wall clock deciding which held deliveries are due (tests move it)."""
    worker_id = worker_id or new_worker_id()
    store = SqlDeliveryStore(sessionmaker, settings, worker_id, now=now)
    smtp_config = smtp or SmtpConfig.from_settings(settings)
    return Worker(
        settings=settings,
        store=store,
        composer=with_deliverability(
            DigestComposer(
                settings, signer, store.campaign_content, load_impact=store.impact_board
            ),
            settings,
        ),
        transports=lambda: SmtpConnection(smtp_config),
        worker_id=worker_id,
    )


def start_click_retention(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> asyncio.Task[None]:
    """The retention job runs beside every worker (hourly, cheap when there is nothing to do)."""
    return asyncio.create_task(
        purge_clicks_periodically(
            sessionmaker,
            retention_days=settings.click_retention_days,
            attribution_days=settings.attribution_days,
        ),
        name="amplify-click-retention",
    )
