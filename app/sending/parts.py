"""What the send engine is built from: the values it passes around and the small interfaces
of the parts it is given (a store of deliveries, a composer of mail, a transport).

`Worker` depends on these alone, so its rules (leases, retries, pauses, shutdown) can be run
against an in-memory store, and signing or another transport is one more part, not an edit.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, Protocol

from app.core.db import utcnow


class Claim(NamedTuple):
    """A delivery this worker just leased."""

    delivery_id: int
    campaign_id: int
    amplifier_id: int | None
    attempts: int
    combined: bool = False  # one of an amplifier's held deliveries released together


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery with what its mail needs."""

    delivery_id: int
    campaign_id: int
    amplifier_id: int | None
    attempts: int
    email: str | None
    name: str | None
    amplifier_status: str | None
    share_urls: dict[tuple[int, str], str]
    networks: tuple[str, ...]
    locale: str = "en"
    # message id → the copy variant this amplifier got (absent: the base text)
    variants: dict[int, int] = field(default_factory=dict)
    combined: bool = False  # one of the deliveries of a combined digest
    # A combined digest: the jobs of all the deliveries its one mail carries (this job is the
    # first of them).
    parts: tuple["Job", ...] = ()

    @property
    def deliveries(self) -> tuple["Job", ...]:
        """The jobs whose deliveries this mail carries: its parts, or itself."""
        return self.parts or (self,)


class OutcomeStatus(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASE = "release"  # not sent: handed back for another claim


@dataclass(frozen=True, slots=True)
class Outcome:
    job: Job
    status: OutcomeStatus
    error: str | None = None
    message_id: str | None = None
    bounce: bool = False
    retry_at: datetime | None = None  # RETRY: not before then
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class CampaignState:
    """What decides whether a campaign's jobs still go out, and whether its mail is stale."""

    status: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ComposedMail:
    raw: bytes
    message_id: str
    envelope_from: str


class DeliveryStore(Protocol):
    """Claims deliveries under a lease and records what became of them."""

    async def promote_scheduled(self) -> int:
        """Start the scheduled campaigns whose time has come."""
        ...

    async def claim(self, limit: int) -> list[Claim]:
        """Lease the due deliveries of up to `limit` mails no live worker holds (a combined
        digest is one mail carrying several deliveries)."""
        ...

    async def load_jobs(self, claims: Sequence[Claim]) -> list[Job]: ...

    async def campaign_states(self, campaign_ids: Iterable[int]) -> dict[int, CampaignState]: ...

    async def renew_leases(self, delivery_ids: Sequence[int]) -> set[int]:
        """Extend the leases this worker still holds among `delivery_ids`; returns those."""
        ...

    async def release(self, delivery_ids: Sequence[int]) -> None:
        """Hand back leases of deliveries this worker will not send."""
        ...

    async def apply(self, outcomes: Sequence[Outcome]) -> int:
        """Write outcomes; returns how many were ignored because the lease was lost."""
        ...

    async def finish_done(self) -> None:
        """Mark campaigns with nothing left to send as sent."""
        ...


class Composer(Protocol):
    """Turns a job into the bytes of its mail; `states` holds the state of the campaign of
    each delivery the mail carries (campaign id → state)."""

    async def compose(
        self, job: Job, *, states: Mapping[int, CampaignState], eight_bit: bool
    ) -> ComposedMail: ...


class Transport(Protocol):
    """One connection to a mail server, reused for many messages. `send` raises
    `mailer.SendError` with the server's reply classified."""

    eight_bit: bool

    async def open(self) -> None: ...

    async def send(
        self, sender: str, recipient: str, message: bytes, *, eight_bit: bool = False
    ) -> None: ...

    async def close(self) -> None: ...
