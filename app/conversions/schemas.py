"""Conversions reported against click ids (API.md, "Conversion attribution")."""

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from app.amplifiers.schemas import ImportRowError
from app.core.schemas import HeaderText, InputModel, Moment, Network, OutputModel, UtcDatetime

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR.")]
EventName = Annotated[
    HeaderText,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    Field(description="What happened: signup, purchase … (1–64 characters)."),
]
ExternalId = Annotated[
    HeaderText,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    Field(description="Your id for it (order number …): the same one again is not counted twice."),
]
MAX_VALUE = 1_000_000_000_000


class ConversionCreate(InputModel):
    click_id: str = Field(
        max_length=64, description="The `amp_cid` the landing page received, unchanged."
    )
    event: EventName
    value: float | None = Field(
        default=None, ge=0, le=MAX_VALUE, description="In the organization's currency."
    )
    currency: Currency | None = Field(
        default=None, description="Must be the organization's currency when given."
    )
    external_id: ExternalId | None = None
    occurred_at: Moment | None = Field(
        default=None, description="When it happened (ISO 8601 with a zone); now if absent."
    )


class ConversionRead(OutputModel):
    id: int
    click_id: str
    event: str
    value: float | None
    currency: str
    external_id: str | None
    occurred_at: UtcDatetime
    campaign_id: int
    message_id: int
    amplifier_id: int | None
    network: Network
    created_at: UtcDatetime


class ConversionImportResult(BaseModel):
    created: int
    duplicates: int = Field(description="Rows whose `external_id` was already recorded.")
    skipped: int = Field(description="Rows reported in `errors` and not imported.")
    errors: list[ImportRowError]
    errors_truncated: bool = Field(
        default=False, description="True when more bad rows exist than `errors` lists."
    )
