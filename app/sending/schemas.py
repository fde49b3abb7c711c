from pydantic import Field

from app.core.schemas import InputModel, Moment, OutputModel, UtcDatetime


class SendRequest(InputModel):
    scheduled_at: Moment | None = Field(
        default=None,
        description="Send at this time (ISO 8601 with a zone, 1970–9999); now if absent or past.",
    )


class DeliveryRead(OutputModel):
    id: int
    amplifier_id: int | None
    email: str | None
    status: str = Field(
        description="`pending`, `held` (waiting for the amplifier's slot), `sent`, `failed`, "
        "`cancelled`, `bounced`."
    )
    attempts: int
    last_error: str | None
    sent_at: UtcDatetime | None
    due_at: UtcDatetime | None = Field(
        default=None,
        description="Set when the delivery was held: the slot it goes out at (combined digest).",
    )
    message_id: str | None = None
