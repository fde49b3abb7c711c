"""Statistics answers (see the README's Statistics section for every definition)."""

from typing import Literal

from pydantic import BaseModel, Field

from app.core.schemas import InputModel, UtcDatetime


class MessageNetworkCounts(BaseModel):
    share_clicks: int = 0
    sharers: int = 0
    visits: int = 0
    unique_visitors: int = 0
    bot_clicks: int = 0
    conversions: int = 0
    conversion_value: float = Field(default=0.0, description="In the organization's currency.")


class NetworkCounts(MessageNetworkCounts):
    emv: float = 0.0


class MessageCounts(MessageNetworkCounts):
    message_id: int
    position: int


class CampaignStats(BaseModel):
    campaign_id: int
    recipients: int
    sent: int
    failed: int
    bounced: int = Field(default=0, description="Deliveries a bounce came back for after sending.")
    complaints: int = Field(default=0, description="Spam complaints about this campaign's mail.")
    held: int = Field(
        default=0,
        description="Deliveries waiting for their amplifier's slot (daily/weekly, a pause, the "
        "weekly cap).",
    )
    share_clicks: int
    sharers: int
    share_rate: float = Field(description="sharers / sent, 0..1, unrounded.")
    visits: int
    unique_visitors: int
    bot_clicks: int
    potential_reach: int
    emv: float
    conversions: int = 0
    conversion_value: float = 0.0
    currency: str = Field(description="Of `emv` and `conversion_value`.")
    by_network: dict[str, NetworkCounts]
    by_message: list[MessageCounts]
    updated_at: UtcDatetime


class AmplifierNetworkCounts(BaseModel):
    share_clicks: int = 0
    visits: int = 0
    unique_visitors: int = 0
    conversions: int = 0
    conversion_value: float = Field(default=0.0, description="In the organization's currency.")


class CampaignAmplifierStats(BaseModel):
    amplifier_id: int
    email: str
    name: str | None
    share_clicks: int
    visits: int
    unique_visitors: int
    bot_clicks: int
    points: int
    conversions: int = 0
    conversion_value: float = 0.0
    by_network: dict[str, AmplifierNetworkCounts]


class CampaignAmplifierPage(BaseModel):
    items: list[CampaignAmplifierStats]
    next_cursor: str | None


class VariantStats(BaseModel):
    """One copy variant of a message: who got it and what it brought."""

    variant: int = Field(description="0 is the message's base text; 1, 2 … its `variants`.")
    text: str
    recipients: int = Field(description="Amplifiers the send dealt this variant to.")
    sharers: int
    share_rate: float = Field(description="sharers / recipients, 0..1, unrounded.")
    share_clicks: int
    visits: int
    unique_visitors: int
    visits_per_share: float = Field(description="visits / share_clicks, unrounded (0 if none).")
    conversions: int = Field(description="Conversions reported against this variant's clicks.")
    conversion_value: float


class MessageStats(BaseModel):
    message_id: int
    campaign_id: int
    share_clicks: int
    sharers: int
    visits: int
    unique_visitors: int
    bot_clicks: int
    conversions: int = 0
    conversion_value: float = 0.0
    by_network: dict[str, MessageNetworkCounts]
    by_variant: list[VariantStats] = Field(
        description="Per copy variant, in variant order (one entry for a message without variants)."
    )


class AmplifierCampaignCounts(BaseModel):
    campaign_id: int
    name: str
    share_clicks: int
    visits: int
    unique_visitors: int
    points: int
    conversions: int = 0
    conversion_value: float = 0.0


class AmplifierStats(BaseModel):
    amplifier_id: int
    share_clicks: int
    visits: int
    unique_visitors: int
    bot_clicks: int
    points: int
    conversions: int = 0
    conversion_value: float = 0.0
    by_network: dict[str, AmplifierNetworkCounts]
    by_campaign: list[AmplifierCampaignCounts]


Interval = Literal["hour", "day"]
Metric = Literal[
    "visits", "share_clicks", "unique_visitors", "bot_clicks", "conversions", "conversion_value"
]


class TimePoint(BaseModel):
    t: str = Field(description="Bucket start, ISO 8601 in the requested zone.")
    value: int | float = Field(description="A count; an amount for `conversion_value`.")


class Timeseries(BaseModel):
    interval: Interval
    metric: Metric
    tz: str
    points: list[TimePoint]


class LeaderboardEntry(BaseModel):
    amplifier_id: int
    name: str | None
    email: str
    points: int
    share_clicks: int
    visits: int
    unique_visitors: int
    conversions: int = 0
    conversion_value: float = 0.0


class LeaderboardPage(BaseModel):
    items: list[LeaderboardEntry]
    next_cursor: str | None


class CpcRead(BaseModel):
    amount: float
    currency: str


class CpcIn(InputModel):
    amount: float = Field(ge=0, le=1_000_000)
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD.")
