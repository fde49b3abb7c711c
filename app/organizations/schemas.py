"""The organization's sending settings as the API reads and writes them."""

from pydantic import ConfigDict, StrictBool

from app.core.schemas import InputModel, OutputModel, hide_null


class SendingSettingsRead(OutputModel):
    show_impact: bool
    public_leaderboard: bool


class SendingSettingsUpdate(InputModel):
    """Only the fields given change."""

    model_config = ConfigDict(json_schema_extra=hide_null("show_impact", "public_leaderboard"))

    show_impact: StrictBool | None = None
    public_leaderboard: StrictBool | None = None
