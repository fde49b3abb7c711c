from typing import Literal

from pydantic import BaseModel, Field

Interval = Literal["week", "month"]


class EngagementCounts(BaseModel):
    amplifiers: int = Field(description="Active amplifiers at the end of the period.")
    reached: int = Field(description="Amplifiers who were sent at least one digest in it.")
    sharers: int = Field(description="Amplifiers with at least one human share click in it.")
    engagement_index: float = Field(
        description="sharers / reached (0..1, unrounded; 0 when nobody was reached; capped at "
        "1 when earlier digests are shared later)."
    )
    share_clicks: int
    visits: int
    emv: float
    conversions: int


class EngagementPoint(EngagementCounts):
    t: str = Field(description="Start of the period in the requested time zone.")


class Engagement(BaseModel):
    interval: Interval
    tz: str
    points: list[EngagementPoint]


class TagEngagement(EngagementCounts):
    tag: str


class TagEngagementList(BaseModel):
    items: list[TagEngagement]
    next_cursor: str | None = None
