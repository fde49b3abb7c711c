"""Campaign and message rules: tenancy, the editing state machine, order, the X length rule."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.campaigns import xtext
from app.campaigns.schemas import (
    MAX_MESSAGES,
    CampaignCreate,
    CampaignTranslation,
    CampaignUpdate,
    MessageCopy,
    MessageCreate,
    MessageIn,
    MessageTranslation,
    MessageUpdate,
)
from app.core.db import MAX_ID, utcnow
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.pagination import decode_cursor, encode_cursor
from app.core.security import Signer
from app.models import Campaign, CampaignStatus, Message

# Ids are 32-bit integer columns: a larger id cannot exist, and PostgreSQL would refuse to compare.

# Fields that stay editable after the send snapshot was taken (they only label the digest).
ALWAYS_EDITABLE = frozenset({"name", "subject", "intro", "translations", "expires_at"})
# Statuses whose campaign can no longer be changed or deleted at all.
LOCKED = frozenset({CampaignStatus.SENDING, CampaignStatus.SENT})
UNDELETABLE = LOCKED | {CampaignStatus.PAUSED}


class CampaignNotFound(NotFound):
    pass


class MessageNotFound(NotFound):
    pass


class CampaignLocked(Conflict):
    """The campaign's status forbids this change."""


class XTextTooLong(InvalidInput):
    pass


class TooManyMessages(InvalidInput):
    pass


class InvalidPosition(InvalidInput):
    pass


# --- reading ---------------------------------------------------------------------------------


def _campaign_query(
    *, organization_id: int, campaign_id: int, with_messages: bool
) -> Select[Campaign]:
    stmt = select(Campaign).where(
        Campaign.id == campaign_id, Campaign.organization_id == organization_id
    )
    if with_messages:
        stmt = stmt.options(selectinload(Campaign.messages))
    return stmt


async def get(
    session: AsyncSession, *, organization_id: int, campaign_id: int, with_messages: bool = True
) -> Campaign:
    """The organization's campaign (messages loaded, in order), or CampaignNotFound."""
    if not 0 < campaign_id <= MAX_ID:
        raise CampaignNotFound(f"Campaign {campaign_id} does not exist.")
    campaign = await session.scalar(
        _campaign_query(
            organization_id=organization_id, campaign_id=campaign_id, with_messages=with_messages
        )
    )
    if campaign is None:
        raise CampaignNotFound(f"Campaign {campaign_id} does not exist.")
    return campaign


async def get_for_update(
    session: AsyncSession, *, organization_id: int, campaign_id: int, with_messages: bool = True
) -> Campaign:
    """Like `get`, but the campaign row stays locked until the transaction ends (PostgreSQL).

    Every change goes through this lock, so a status check and the write it guards cannot
    interleave with a concurrent send or edit. On SQLite the whole database is locked instead.
    """
    if not 0 < campaign_id <= MAX_ID:
        raise CampaignNotFound(f"Campaign {campaign_id} does not exist.")
    stmt = _campaign_query(
        organization_id=organization_id, campaign_id=campaign_id, with_messages=with_messages
    )
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt = stmt.with_for_update(of=Campaign)
    elif dialect == "sqlite":
        # SQLite has no FOR UPDATE, and pysqlite opens a transaction only at the first write, so
        # reads before it may be stale by the time we write. Writing first (a no-op) takes the
        # database's write lock now: the reads below see the latest state, and no other writer
        # can interleave until this transaction ends.
        await session.execute(
            sa.update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.organization_id == organization_id)
            .values(updated_at=Campaign.updated_at)
            .execution_options(synchronize_session=False)
        )
    # Values read before the lock was granted may be stale: refresh them from the locked row.
    campaign = await session.scalar(stmt.execution_options(populate_existing=True))
    if campaign is None:
        raise CampaignNotFound(f"Campaign {campaign_id} does not exist.")
    return campaign


def list_query(*, organization_id: int, status: CampaignStatus | None) -> Select[Campaign]:
    """The organization's campaigns, optionally of one status, with their messages."""
    stmt = (
        select(Campaign)
        .where(Campaign.organization_id == organization_id)
        .options(selectinload(Campaign.messages))
    )
    if status is not None:
        stmt = stmt.where(Campaign.status == status)
    return stmt


def find_message(campaign: Campaign, message_id: int) -> Message:
    """One of the campaign's (loaded) messages, or MessageNotFound."""
    for message in campaign.messages:
        if message.id == message_id:
            return message
    raise MessageNotFound(f"Message {message_id} does not exist in campaign {campaign.id}.")


async def list_messages(
    session: AsyncSession,
    *,
    organization_id: int,
    campaign_id: int,
    signer: Signer,
    limit: int,
    cursor: str | None,
) -> tuple[list[Message], str | None]:
    """A page of the campaign's messages in position order, and the next page's cursor."""
    campaign = await get(session, organization_id=organization_id, campaign_id=campaign_id)
    after = decode_cursor(signer, cursor, "messages")
    if after is not None and (not isinstance(after, int) or isinstance(after, bool)):
        raise InvalidInput("The cursor is not valid for this list.")
    rest = [m for m in _ordered(campaign) if after is None or m.position > after]
    if len(rest) <= limit:
        return rest, None
    page = rest[:limit]
    return page, encode_cursor(signer, page[-1].position, "messages")


async def get_message(
    session: AsyncSession, *, organization_id: int, campaign_id: int, message_id: int
) -> Message:
    campaign = await get(session, organization_id=organization_id, campaign_id=campaign_id)
    return find_message(campaign, message_id)


# --- the X rule --------------------------------------------------------------------------------


def x_text_errors(
    networks: Sequence[str],
    messages: Iterable[tuple[int, Message]],
    *,
    loc: Callable[[int], list[str]],
) -> list[dict[str, Any]]:
    """One error per message whose X post is too heavy, when the campaign shares to X.

    `messages` pairs each message with its index (position); `loc` names where the error points.
    """
    if "x" not in networks:
        return []
    errors: list[dict[str, Any]] = []
    for index, message in messages:
        for path, where, text in message.x_texts():
            weight = xtext.post_weight(text, message.hashtags)
            if weight > xtext.MAX_WEIGHT:
                errors.append(
                    {
                        "loc": loc(index) + path,
                        "msg": f"message {index}{where}: the X post weighs {weight}, more than "
                        f"{xtext.MAX_WEIGHT} (text, ' #tag' per hashtag, a space and the link "
                        f"counted as {xtext.URL_WEIGHT})",
                    }
                )
    return errors


def _check_x(
    networks: Sequence[str],
    messages: Iterable[tuple[int, Message]],
    *,
    loc: Callable[[int], list[str]],
) -> None:
    errors = x_text_errors(networks, messages, loc=loc)
    if errors:
        detail = "; ".join(error["msg"] for error in errors)
        raise XTextTooLong(f"Too long for X: {detail}.", errors=errors)


def _in_messages(index: int) -> list[str]:
    return ["body", "messages", str(index)]


def _at(*loc: str) -> Callable[[int], list[str]]:
    return lambda _index: list(loc)


# --- campaigns ---------------------------------------------------------------------------------


def _new_message(data: MessageIn, *, position: int) -> Message:
    return Message(
        position=position,
        text=data.text,
        url=data.url,
        network_text=dict(data.network_text),
        hashtags=list(data.hashtags),
        image_url=data.image_url,
        translations=_message_translations(data.translations),
        variants=[_stored_copy(v) for v in data.variants],
    )


def _stored_copy(copy: MessageCopy) -> dict[str, Any]:
    return {"text": copy.text, "network_text": {str(n): v for n, v in copy.network_text.items()}}


def _message_translations(translations: Mapping[str, MessageTranslation]) -> dict[str, Any]:
    return {locale: _stored_copy(t) for locale, t in translations.items()}


def _campaign_translations(
    translations: Mapping[str, CampaignTranslation],
) -> dict[str, dict[str, str]]:
    return {
        locale: t.model_dump(exclude_none=True)
        for locale, t in translations.items()
        if t.subject is not None or t.intro is not None
    }


async def create(session: AsyncSession, *, organization_id: int, data: CampaignCreate) -> Campaign:
    """A draft campaign with its messages, flushed (ids assigned), not committed."""
    messages = [_new_message(m, position=i) for i, m in enumerate(data.messages)]
    _check_x(data.networks, enumerate(messages), loc=_in_messages)
    now = utcnow()
    campaign = Campaign(
        organization_id=organization_id,
        name=data.name,
        subject=data.subject,
        intro=data.intro,
        audience={"tags": list(data.audience.tags)},
        networks=list(data.networks),
        utm=data.utm,
        attribution=data.attribution,
        translations=_campaign_translations(data.translations),
        expires_at=data.expires_at,
        status=CampaignStatus.DRAFT,
        created_at=now,
        updated_at=now,
        messages=messages,
    )
    session.add(campaign)
    await session.flush()
    return campaign


def _changes(data: CampaignUpdate) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for field in data.model_fields_set:
        value = getattr(data, field)
        if field == "audience":
            value = {"tags": list(value.tags)}
        elif field == "translations":
            value = _campaign_translations(value)
        changes[field] = value
    return changes


def _current(campaign: Campaign, field: str) -> Any:
    if field == "audience":
        return {"tags": list((campaign.audience or {}).get("tags") or [])}
    return getattr(campaign, field)


async def update(
    session: AsyncSession, *, organization_id: int, campaign_id: int, data: CampaignUpdate
) -> Campaign:
    """Apply the fields given; what may change depends on the campaign's status."""
    campaign = await get_for_update(
        session, organization_id=organization_id, campaign_id=campaign_id
    )
    if campaign.status in LOCKED:
        raise CampaignLocked(f"Campaign {campaign_id} is {campaign.status}; it cannot be changed.")
    changes = {
        field: value
        for field, value in _changes(data).items()
        if value != _current(campaign, field)
    }
    frozen = sorted(set(changes) - ALWAYS_EDITABLE)
    if frozen and campaign.status != CampaignStatus.DRAFT:
        raise CampaignLocked(
            f"Campaign {campaign_id} is {campaign.status}: its audience, networks, utm, "
            f"attribution and "
            f"messages were fixed when sending was prepared; only name, subject and intro may "
            f"change (not {', '.join(frozen)}).",
            errors=[{"loc": ["body", field], "msg": "cannot change any more"} for field in frozen],
        )
    if "networks" in changes:
        _check_x(changes["networks"], enumerate(_ordered(campaign)), loc=_at("body", "networks"))
    for field, value in changes.items():
        setattr(campaign, field, value)
    if changes:
        campaign.updated_at = utcnow()
        await session.flush()
    return campaign


async def delete(session: AsyncSession, *, organization_id: int, campaign_id: int) -> None:
    """Delete a campaign that is not being or has not been sent; its messages go with it."""
    campaign = await get_for_update(
        session, organization_id=organization_id, campaign_id=campaign_id, with_messages=False
    )
    if campaign.status in UNDELETABLE:
        raise CampaignLocked(
            f"Campaign {campaign_id} is {campaign.status}; it cannot be deleted "
            "(cancel it first if it is paused)."
            if campaign.status == CampaignStatus.PAUSED
            else f"Campaign {campaign_id} is {campaign.status}; it cannot be deleted."
        )
    # The database cascades to messages (and anything else the campaign owns).
    await session.delete(campaign)
    await session.flush()


# --- messages ----------------------------------------------------------------------------------


def _ordered(campaign: Campaign) -> list[Message]:
    return sorted(campaign.messages, key=lambda m: (m.position, m.id or 0))


def _renumber(campaign: Campaign, ordered: list[Message]) -> None:
    """Positions 0..n-1 in the given order, and the loaded collection in that order too."""
    for position, message in enumerate(ordered):
        if message.position != position:
            message.position = position
    campaign.messages.sort(key=lambda m: m.position)
    campaign.updated_at = utcnow()


def _ensure_draft(campaign: Campaign, action: str) -> None:
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignLocked(
            f"Campaign {campaign.id} is {campaign.status}: messages can only be {action} "
            "while it is a draft."
        )


def _check_position(position: int, *, highest: int) -> None:
    if position > highest:
        raise InvalidPosition(
            f"Position {position} is out of range: it must be between 0 and {highest}.",
            errors=[{"loc": ["body", "position"], "msg": f"must be between 0 and {highest}"}],
        )


async def add_message(
    session: AsyncSession, *, organization_id: int, campaign_id: int, data: MessageCreate
) -> Message:
    """Append a message to a draft, or insert it at `data.position` (the rest move down)."""
    campaign = await get_for_update(
        session, organization_id=organization_id, campaign_id=campaign_id
    )
    _ensure_draft(campaign, "added")
    ordered = _ordered(campaign)
    if len(ordered) >= MAX_MESSAGES:
        raise TooManyMessages(
            f"Campaign {campaign_id} already has {MAX_MESSAGES} messages, the most allowed.",
            errors=[{"loc": ["body"], "msg": f"at most {MAX_MESSAGES} messages per campaign"}],
        )
    position = len(ordered) if data.position is None else data.position
    _check_position(position, highest=len(ordered))
    message = _new_message(data, position=position)
    _check_x(campaign.networks, [(position, message)], loc=_at("body"))
    ordered.insert(position, message)
    campaign.messages.append(message)
    _renumber(campaign, ordered)
    await session.flush()
    return message


async def update_message(
    session: AsyncSession,
    *,
    organization_id: int,
    campaign_id: int,
    message_id: int,
    data: MessageUpdate,
) -> Message:
    """Change a draft's message; a new `position` moves it and renumbers the others."""
    campaign = await get_for_update(
        session, organization_id=organization_id, campaign_id=campaign_id
    )
    message = find_message(campaign, message_id)
    _ensure_draft(campaign, "changed")
    ordered = _ordered(campaign)
    position = ordered.index(message) if data.position is None else data.position
    _check_position(position, highest=len(ordered) - 1)
    text = message.text if data.text is None else data.text
    network_text = (
        message.network_text
        if data.network_text is None
        else {str(network): value for network, value in data.network_text.items()}
    )
    hashtags = message.hashtags if data.hashtags is None else list(data.hashtags)
    translations = (
        message.translations
        if data.translations is None
        else _message_translations(data.translations)
    )
    variants = (
        message.variants
        if data.variants is None
        else [_stored_copy(variant) for variant in data.variants]
    )
    # Check what the message would become before touching it.
    after = Message(
        text=text,
        network_text=network_text,
        hashtags=hashtags,
        translations=translations,
        variants=variants,
    )
    _check_x(campaign.networks, [(position, after)], loc=_at("body"))
    message.text, message.network_text, message.hashtags = text, network_text, hashtags
    message.translations, message.variants = translations, variants
    if data.url is not None:
        message.url = data.url
    if "image_url" in data.model_fields_set:
        message.image_url = data.image_url
    ordered.remove(message)
    ordered.insert(position, message)
    _renumber(campaign, ordered)
    await session.flush()
    return message


async def delete_message(
    session: AsyncSession, *, organization_id: int, campaign_id: int, message_id: int
) -> None:
    """Remove a draft's message; the ones after it move up."""
    campaign = await get_for_update(
        session, organization_id=organization_id, campaign_id=campaign_id
    )
    message = find_message(campaign, message_id)
    _ensure_draft(campaign, "deleted")
    ordered = _ordered(campaign)
    ordered.remove(message)
    campaign.messages.remove(message)
    await session.delete(message)
    _renumber(campaign, ordered)
    await session.flush()
