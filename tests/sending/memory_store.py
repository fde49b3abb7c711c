"""An in-memory `parts.DeliveryStore` with the SQL store's lease rules, shared by several
workers: the engine's rules run against it without a database."""

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.core.db import utcnow
from app.sending.parts import CampaignState, Claim, Job, Outcome, OutcomeStatus
from app.sending.render import CampaignContent, MessageContent

CAMPAIGN_ID = 1
VERSION = datetime(2026, 1, 1, tzinfo=UTC)
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
CONTENT = CampaignContent(
    organization_name="Acme",
    name="Launch",
    subject="Share our launch",
    intro="Hello",
    messages=[
        MessageContent(
            id=1, position=0, text="We launched", url="https://acme.test/", image_url=None
        )
    ],
)


@dataclass
class Row:
    delivery_id: int
    status: str = "pending"
    owner: str | None = None
    expires: float = 0.0
    attempts: int = 0
    message_id: str | None = None
    not_before: datetime = LONG_AGO
    errors: list[str] = field(default_factory=list)


@dataclass
class MemoryQueue:
    """The deliveries, as the database would hold them."""

    lease_seconds: float
    clock: Callable[[], float] = time.monotonic
    rows: dict[int, Row] = field(default_factory=dict)
    renewals: Counter[str] = field(default_factory=Counter)
    ignored: int = 0
    fail_renewals_of: set[str] = field(default_factory=set)

    def add(self, count: int) -> None:
        for delivery_id in range(1, count + 1):
            self.rows[delivery_id] = Row(delivery_id)

    def store(self, worker_id: str) -> "MemoryStore":
        return MemoryStore(self, worker_id)


class MemoryStore:
    def __init__(self, queue: MemoryQueue, worker_id: str) -> None:
        self.queue = queue
        self.worker_id = worker_id

    def _mine(self, delivery_id: int) -> Row | None:
        row = self.queue.rows.get(delivery_id)
        if row is None or row.status != "pending" or row.owner != self.worker_id:
            return None
        return row

    async def promote_scheduled(self) -> int:
        return 0

    async def claim(self, limit: int) -> list[Claim]:
        now = self.queue.clock()
        due = [
            row
            for row in self.queue.rows.values()
            if row.status == "pending"
            and (row.owner is None or row.expires < now)
            and row.not_before <= utcnow()
        ][:limit]
        for row in due:
            row.owner, row.expires = self.worker_id, now + self.queue.lease_seconds
            row.attempts += 1
        return [Claim(row.delivery_id, CAMPAIGN_ID, row.delivery_id, row.attempts) for row in due]

    async def load_jobs(self, claims: Sequence[Claim]) -> list[Job]:
        return [
            Job(
                delivery_id=claim.delivery_id,
                campaign_id=claim.campaign_id,
                amplifier_id=claim.amplifier_id,
                attempts=claim.attempts,
                email=f"amp{claim.delivery_id}@example.com",
                name=f"Amp {claim.delivery_id}",
                amplifier_status="active",
                share_urls={(1, "x"): f"https://amplify.test/r/code{claim.delivery_id}"},
                networks=("x",),
            )
            for claim in claims
        ]

    async def campaign_content(self, campaign_id: int) -> tuple[datetime, CampaignContent]:
        return VERSION, CONTENT

    async def campaign_states(self, campaign_ids: Iterable[int]) -> dict[int, CampaignState]:
        return {CAMPAIGN_ID: CampaignState("sending", VERSION)}

    async def renew_leases(self, delivery_ids: Sequence[int]) -> set[int]:
        if self.worker_id in self.queue.fail_renewals_of:
            raise ConnectionError("database unreachable")
        self.queue.renewals[self.worker_id] += 1
        kept = set()
        for delivery_id in delivery_ids:
            row = self._mine(delivery_id)
            if row is not None:
                row.expires = self.queue.clock() + self.queue.lease_seconds
                kept.add(delivery_id)
        return kept

    async def release(self, delivery_ids: Sequence[int]) -> None:
        for delivery_id in delivery_ids:
            row = self._mine(delivery_id)
            if row is not None:
                row.owner, row.attempts = None, row.attempts - 1

    async def apply(self, outcomes: Sequence[Outcome]) -> int:
        ignored = 0
        for outcome in outcomes:
            row = self.queue.rows[outcome.job.delivery_id]
            if row.status != "pending" or (
                outcome.status != OutcomeStatus.SENT and row.owner != self.worker_id
            ):
                ignored += 1
                continue
            if outcome.status == OutcomeStatus.RELEASE:
                await self.release([row.delivery_id])
                continue
            row.owner = None
            if outcome.error:
                row.errors.append(outcome.error)
            if outcome.status == OutcomeStatus.RETRY:
                assert outcome.retry_at is not None
                row.not_before = outcome.retry_at
            if outcome.status == OutcomeStatus.SENT:
                row.status, row.message_id = "sent", outcome.message_id
            elif outcome.status != OutcomeStatus.RETRY:
                row.status = outcome.status.value
        self.queue.ignored += ignored
        return ignored

    async def finish_done(self) -> None:
        return None
