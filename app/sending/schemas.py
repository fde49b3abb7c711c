from datetime import datetime

from pydantic import Field

from app.core.schemas import InputModel, OutputModel, UtcDatetime


class SendRequest(InputModel):
    scheduled_at: datetime | None = Field(
        default=None, description="Send at this time (ISO 8601 with a zone); now if absent or past."
    )


class DeliveryRead(OutputModel):
    id: int
    amplifier_id: int | None
    email: str | None
    status: str
    attempts: int
    last_error: str | None
    sent_at: UtcDatetime | None
    message_id: str | None = None
