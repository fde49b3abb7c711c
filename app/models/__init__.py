"""Every table, imported here so Alembic and relationships see them all."""

from app.models.amplifier import Amplifier, AmplifierStatus, Frequency
from app.models.api_key import ApiKey, Role
from app.models.bounce import BounceEvent, BounceKind
from app.models.campaign import Campaign, CampaignStatus
from app.models.click import Click, ClickRollup, LinkVisitor, VisitorSalt
from app.models.conversion import ClickId, Conversion
from app.models.delivery import Delivery, DeliveryCount, DeliveryStatus
from app.models.link import Link, LinkKind
from app.models.message import Message
from app.models.organization import Organization
from app.models.stats import (
    AmplifierDay,
    AmplifierTotal,
    CampaignAmplifier,
    CampaignCount,
    CampaignHour,
    CostPerClick,
    Engagement,
    MessageSharer,
    NetworkSharer,
    VariantCount,
)
from app.models.suppression import Suppression
from app.models.webhook import (
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEvent,
    WebhookMessage,
    WebhookMessageStatus,
)

__all__ = [
    "Amplifier",
    "AmplifierDay",
    "AmplifierStatus",
    "AmplifierTotal",
    "ApiKey",
    "BounceEvent",
    "BounceKind",
    "Campaign",
    "CampaignAmplifier",
    "CampaignCount",
    "CampaignHour",
    "CampaignStatus",
    "Click",
    "ClickId",
    "ClickRollup",
    "Conversion",
    "CostPerClick",
    "Delivery",
    "DeliveryCount",
    "DeliveryStatus",
    "Engagement",
    "Frequency",
    "Link",
    "LinkKind",
    "LinkVisitor",
    "Message",
    "MessageSharer",
    "NetworkSharer",
    "Organization",
    "Role",
    "Suppression",
    "VariantCount",
    "VisitorSalt",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookMessage",
    "WebhookMessageStatus",
]
