from typing import Annotated

from pydantic import AfterValidator, Field

from app.core.schemas import BodyText, InputModel, OutputModel, UtcDatetime
from app.webhooks.events import EventType
from app.webhooks.targets import MAX_URL_LENGTH


def _distinct(values: list[EventType]) -> list[EventType]:
    return list(dict.fromkeys(values))


EventTypes = Annotated[list[EventType], AfterValidator(_distinct)]


class WebhookCreate(InputModel):
    url: str = Field(max_length=MAX_URL_LENGTH, description="An http(s) URL on a public host.")
    events: EventTypes = Field(min_length=1, max_length=len(EventType))
    description: BodyText | None = Field(default=None, max_length=500)


class WebhookUpdate(InputModel):
    url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    events: EventTypes | None = Field(default=None, min_length=1, max_length=len(EventType))
    description: BodyText | None = Field(default=None, max_length=500)
    enabled: bool | None = Field(
        default=None, description="`true` re-enables an endpoint disabled after failing."
    )


class WebhookRead(OutputModel):
    id: int
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    created_at: UtcDatetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="The signing secret (`whsec_…`). It is shown this once and never again."
    )


class WebhookAttemptRead(OutputModel):
    id: int
    event_id: str = Field(description="The `webhook-id` header of the message.")
    type: str
    status_code: int | None
    error: str | None
    attempt: int
    at: UtcDatetime
    next_at: UtcDatetime | None


class WebhookTestSent(OutputModel):
    endpoint_id: int
    type: str
