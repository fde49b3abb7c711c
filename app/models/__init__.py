"""Every table, imported here so Alembic and relationships see them all."""

from app.models.amplifier import Amplifier, AmplifierStatus
from app.models.api_key import ApiKey, Role
from app.models.campaign import Campaign, CampaignStatus
from app.models.message import Message
from app.models.organization import Organization
from app.models.suppression import Suppression

__all__ = [
    "Amplifier",
    "AmplifierStatus",
    "ApiKey",
    "Campaign",
    "CampaignStatus",
    "Message",
    "Organization",
    "Role",
    "Suppression",
]
