"""Campaign answers kept per app behind the version of their inputs (see AnswerCache, on
`app.state.answers`): the API, its SSE stream and the dashboard's charts all read them here, so
a change is aggregated once however many of them ask."""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.stats import service
from app.stats.caching import AnswerCache
from app.stats.schemas import CampaignStats


def get_answers(request: Request) -> AnswerCache:
    answers: AnswerCache = request.app.state.answers
    return answers


async def cached(
    answers: AnswerCache,
    session: AsyncSession,
    organization_id: int,
    campaign_id: int,
    question: tuple[Any, ...],
    compute: Callable[[], Awaitable[bytes]],
) -> bytes:
    """The stored answer to `question` while the campaign's inputs are unchanged, else a fresh
    one (raises CampaignNotFound for another organization's campaign)."""
    version = await service.campaign_version(
        session, organization_id=organization_id, campaign_id=campaign_id
    )
    key = (organization_id, campaign_id, *question)
    body = answers.get(key, version)
    if body is None:
        body = await compute()
        answers.put(key, version, body)
    return body


async def campaign_stats_body(
    answers: AnswerCache, session: AsyncSession, organization_id: int, campaign_id: int
) -> bytes:
    async def compute() -> bytes:
        answer = await service.campaign_stats(
            session, organization_id=organization_id, campaign_id=campaign_id
        )
        return answer.model_dump_json().encode()

    return await cached(answers, session, organization_id, campaign_id, ("stats",), compute)


async def campaign_stats(
    answers: AnswerCache, session: AsyncSession, *, organization_id: int, campaign_id: int
) -> CampaignStats:
    body = await campaign_stats_body(answers, session, organization_id, campaign_id)
    return CampaignStats.model_validate_json(body)
