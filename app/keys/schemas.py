from pydantic import Field

from app.core.schemas import HeaderText, InputModel, OutputModel, UtcDatetime
from app.models import Role


class KeyCreate(InputModel):
    role: Role
    name: HeaderText | None = Field(default=None, max_length=200)


class KeyRead(OutputModel):
    id: int
    role: Role
    name: str | None
    key_prefix: str
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None


class KeyCreated(KeyRead):
    key: str = Field(description="The plain key. It is shown this once and never again.")
