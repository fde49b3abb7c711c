"""The organization's sending settings as the API reads and writes them."""

from pydantic import StrictBool

from app.core.schemas import InputModel, OutputModel


class SendingSettingsRead(OutputModel):
    show_impact: bool
    public_leaderboard: bool


class SendingSettingsUpdate(InputModel):
    """Only the fields given change."""

    show_impact: StrictBool | None = None
    public_leaderboard: StrictBool | None = None
