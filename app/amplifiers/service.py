import hashlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVarTuple

import sqlalchemy as sa
from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.amplifiers.importer import ImportRow, ParsedImport
from app.amplifiers.schemas import (
    AmplifierCreate,
    AmplifierUpdate,
    ImportResult,
    ImportRowError,
    email_key,
)
from app.core.db import MAX_ID, analyze, chunks, json_array_contains_any, utcnow
from app.core.errors import Conflict, NotFound
from app.core.pagination import paginate_by_id
from app.core.security import Signer
from app.models import Amplifier, AmplifierStatus, Frequency, Suppression
from app.sending import holds
from app.sending.slots import holds_mail
from app.tracking import counters
from app.webhooks.events import EventType, emit

Ts = TypeVarTuple("Ts")

# Emails per IN (...) query when an import looks up existing rows: well under every
# database's bound-parameter limit.
LOOKUP_CHUNK = 500
MAX_REPORTED_ERRORS = 1000
LIKE_ESCAPE = "\\"
# Ids are 32-bit on PostgreSQL: a larger one cannot exist, and must not reach the driver.


class AmplifierNotFound(NotFound):
    pass


class DuplicateEmail(Conflict):
    pass


class StatusChangeRefused(Conflict):
    pass


class RosterChanged(Conflict):
    pass


def email_hash(key: str) -> str:
    """What a suppression keeps of an address: a hash of its lower-cased form, nothing else."""
    return hashlib.sha256(key.encode()).hexdigest()


def _among(
    stmt: Select[*Ts],
    column: InstrumentedAttribute[str],
    values: Sequence[str],
    dialect: str,
) -> Select[*Ts]:
    """`stmt` restricted to rows whose `column` is one of `values`."""
    if dialect == "postgresql":
        # Joined to unnest() the keys are hashed once. A long IN ($1, $2, …) is compared row
        # by row once PostgreSQL switches the prepared statement to a generic plan, which
        # after a bulk insert (no statistics yet) scans the organization's whole roster.
        keys = (
            func.unnest(sa.bindparam(None, list(values), type_=postgresql.ARRAY(sa.String())))
            .table_valued("key")
            .render_derived(name="keys")
        )
        return stmt.join(keys, column == keys.c.key)
    return stmt.where(column.in_(values))


def _like_pattern(text: str) -> str:
    escaped = (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


async def _suppression(
    session: AsyncSession, *, organization_id: int, key: str
) -> Suppression | None:
    return await session.scalar(
        select(Suppression).where(
            Suppression.organization_id == organization_id,
            Suppression.email_hash == email_hash(key),
        )
    )


async def _email_taken(
    session: AsyncSession, *, organization_id: int, key: str, except_id: int | None = None
) -> bool:
    stmt = select(Amplifier.id).where(
        Amplifier.organization_id == organization_id, Amplifier.email_key == key
    )
    if except_id is not None:
        stmt = stmt.where(Amplifier.id != except_id)
    return await session.scalar(stmt) is not None


def _duplicate(email: str) -> DuplicateEmail:
    return DuplicateEmail(f"An amplifier with the email {email!r} already exists.")


async def get(session: AsyncSession, *, organization_id: int, amplifier_id: int) -> Amplifier:
    if not 1 <= amplifier_id <= MAX_ID:
        raise AmplifierNotFound(f"Amplifier {amplifier_id} does not exist.")
    amplifier = await session.scalar(
        select(Amplifier).where(
            Amplifier.id == amplifier_id, Amplifier.organization_id == organization_id
        )
    )
    if amplifier is None:
        raise AmplifierNotFound(f"Amplifier {amplifier_id} does not exist.")
    return amplifier


async def list_(
    session: AsyncSession,
    *,
    organization_id: int,
    signer: Signer,
    limit: int,
    cursor: str | None,
    tags: Sequence[str] = (),
    status: AmplifierStatus | None = None,
    q: str | None = None,
) -> tuple[Sequence[Amplifier], str | None]:
    """A page of the roster in id order; `tags` matches amplifiers with any of them."""
    stmt = select(Amplifier).where(Amplifier.organization_id == organization_id)
    if tags:
        dialect = session.get_bind().dialect.name
        stmt = stmt.where(json_array_contains_any(Amplifier.tags, list(tags), dialect))
    if status is not None:
        stmt = stmt.where(Amplifier.status == status)
    if q:
        pattern = _like_pattern(q)
        stmt = stmt.where(
            or_(
                Amplifier.email.ilike(pattern, escape=LIKE_ESCAPE),
                Amplifier.name.ilike(pattern, escape=LIKE_ESCAPE),
            )
        )
    return await paginate_by_id(
        session,
        stmt,
        Amplifier.id,
        signer=signer,
        purpose="amplifiers",
        limit=limit,
        cursor=cursor,
    )


async def create(
    session: AsyncSession, *, organization_id: int, data: AmplifierCreate
) -> Amplifier:
    """A new amplifier; a suppressed address comes back with its suppression's status."""
    key = email_key(data.email)
    if await _email_taken(session, organization_id=organization_id, key=key):
        raise _duplicate(data.email)
    suppression = await _suppression(session, organization_id=organization_id, key=key)
    now = utcnow()
    amplifier = Amplifier(
        organization_id=organization_id,
        email=data.email,
        email_key=key,
        name=data.name,
        tags=list(data.tags),
        networks=list(data.networks),
        audience=dict(data.audience),
        locale=data.locale,
        frequency=data.frequency.value,
        paused_until=data.paused_until,
        timezone=data.timezone,
        status=suppression.reason if suppression else AmplifierStatus.ACTIVE.value,
        created_at=now,
        updated_at=now,
    )
    session.add(amplifier)
    try:
        await session.flush()
    except IntegrityError:
        raise _duplicate(data.email) from None
    return amplifier


async def update(
    session: AsyncSession,
    *,
    organization_id: int,
    amplifier_id: int,
    data: AmplifierUpdate,
    now: datetime | None = None,
) -> Amplifier:
    """Apply the given fields. Only the amplifier can leave `unsubscribed`; an editor may
    clear a bounce."""
    amplifier = await get(session, organization_id=organization_id, amplifier_id=amplifier_id)
    given = data.model_fields_set
    await set_preferences(
        session,
        amplifier,
        changes={field: getattr(data, field) for field in PREFERENCE_FIELDS & given},
        now=now or utcnow(),
    )
    old_key = amplifier.email_key
    if "email" in given and data.email is not None:
        key = email_key(data.email)
        taken = await _email_taken(
            session, organization_id=organization_id, key=key, except_id=amplifier.id
        )
        if taken:
            raise _duplicate(data.email)
        amplifier.email = data.email
        amplifier.email_key = key
    for field in ("name", "tags", "networks", "audience", "locale"):
        if field in given:
            setattr(amplifier, field, getattr(data, field))

    status = AmplifierStatus(amplifier.status)
    wanted = data.status if "status" in given else None
    if wanted is not None and wanted != status:
        if status == AmplifierStatus.UNSUBSCRIBED:
            raise StatusChangeRefused(
                "This amplifier unsubscribed; only the amplifier can subscribe again."
            )
        status = wanted
        if status == AmplifierStatus.UNSUBSCRIBED:
            await report_unsubscribed(session, amplifier, reason="api")
    if amplifier.email_key != old_key or (
        wanted == AmplifierStatus.ACTIVE and status == AmplifierStatus.ACTIVE
    ):
        status = await _apply_suppression(
            session,
            organization_id=organization_id,
            key=amplifier.email_key,
            status=status,
            reactivate=wanted == AmplifierStatus.ACTIVE,
        )
    if amplifier.status != status.value:
        amplifier.status_reason = None  # the reason was for the status being left
    amplifier.status = status.value

    if session.is_modified(amplifier):
        amplifier.updated_at = utcnow()
    try:
        await session.flush()
    except IntegrityError:
        raise _duplicate(amplifier.email) from None
    if "audience" in given:
        await counters.audience_changed(session, {amplifier.id: amplifier.audience})
    return amplifier


PREFERENCE_FIELDS = frozenset({"frequency", "paused_until", "timezone"})


async def set_preferences(
    session: AsyncSession, amplifier: Amplifier, *, changes: dict[str, Any], now: datetime
) -> None:
    """Change how often the amplifier hears from us. Back to `each`, or a pause ended: the
    held deliveries go out at once (together)."""
    was_held = holds_mail(amplifier.frequency, amplifier.paused_until, now)
    for field, value in changes.items():
        setattr(amplifier, field, value.value if isinstance(value, Frequency) else value)
    still_held = holds_mail(amplifier.frequency, amplifier.paused_until, now)
    if session.is_modified(amplifier):
        amplifier.updated_at = now  # written by the caller's flush or commit
    if was_held and not still_held:
        await holds.make_due(session, amplifier_ids=[amplifier.id], now=now)


async def _apply_suppression(
    session: AsyncSession,
    *,
    organization_id: int,
    key: str,
    status: AmplifierStatus,
    reactivate: bool,
) -> AmplifierStatus:
    """The status an address may have given its suppression entry.

    An unsubscribe is final for an API key. A bounce an editor explicitly reactivates is
    forgotten; otherwise a suppressed address never becomes active through an email change."""
    suppression = await _suppression(session, organization_id=organization_id, key=key)
    if suppression is None:
        return status
    reason = AmplifierStatus(suppression.reason)
    if reason == AmplifierStatus.UNSUBSCRIBED:
        if reactivate:
            raise StatusChangeRefused(
                "This address unsubscribed; only the amplifier can subscribe again."
            )
        return reason
    if reactivate:
        await session.delete(suppression)
        return AmplifierStatus.ACTIVE
    return reason if status == AmplifierStatus.ACTIVE else status


async def delete(session: AsyncSession, *, organization_id: int, amplifier_id: int) -> None:
    """Remove the amplifier's personal data; an inactive address stays suppressed by hash."""
    amplifier = await get(session, organization_id=organization_id, amplifier_id=amplifier_id)
    if amplifier.status != AmplifierStatus.ACTIVE:
        await suppress(
            session,
            organization_id=organization_id,
            email=amplifier.email,
            reason=AmplifierStatus(amplifier.status),
        )
    await holds.cancel_held(session, amplifier_id=amplifier_id, reason="amplifier deleted")
    await session.delete(amplifier)
    await session.flush()
    await counters.audience_changed(session, {amplifier_id: {}})


async def suppress(
    session: AsyncSession, *, organization_id: int, email: str, reason: AmplifierStatus
) -> None:
    """Record that an address must not be mailed again; an unsubscribe is never downgraded."""
    if reason == AmplifierStatus.ACTIVE:
        raise ValueError("an active address is not suppressed")
    key = email_key(email)
    existing = await _suppression(session, organization_id=organization_id, key=key)
    if existing is None:
        session.add(
            Suppression(
                organization_id=organization_id,
                email_hash=email_hash(key),
                reason=reason.value,
                created_at=utcnow(),
            )
        )
    elif existing.reason != AmplifierStatus.UNSUBSCRIBED:
        existing.reason = reason.value
    await session.flush()


async def set_status(
    session: AsyncSession, *, amplifier_id: int, status: AmplifierStatus
) -> Amplifier | None:
    """For the worker (bounces) and the amplifier's own pages (unsubscribe, resubscribe):
    no role or tenancy check and no rule against resubscribing, since the mail server or the
    amplifier is the one asking. A bounce never overrides an unsubscribe; becoming active
    again forgets a suppression of the address. None when the amplifier no longer exists."""
    amplifier = await session.get(Amplifier, amplifier_id)
    if amplifier is None:
        return None
    keep_unsubscribed = (
        amplifier.status == AmplifierStatus.UNSUBSCRIBED and status == AmplifierStatus.BOUNCED
    )
    if amplifier.status != status and not keep_unsubscribed:
        if status == AmplifierStatus.ACTIVE:
            await session.execute(
                sa.delete(Suppression).where(
                    Suppression.organization_id == amplifier.organization_id,
                    Suppression.email_hash == email_hash(amplifier.email_key),
                )
            )
        amplifier.status = status.value
        amplifier.status_reason = None
        amplifier.updated_at = utcnow()
        if status == AmplifierStatus.UNSUBSCRIBED:
            await report_unsubscribed(session, amplifier)
        await session.flush()
    return amplifier


async def report_unsubscribed(
    session: AsyncSession, amplifier: Amplifier, *, reason: str = "unsubscribe"
) -> None:
    """The amplifier.unsubscribed webhook event, in the transaction that unsubscribes."""
    await emit(
        session,
        organization_id=amplifier.organization_id,
        type=EventType.AMPLIFIER_UNSUBSCRIBED,
        data={
            "amplifier_id": amplifier.id,
            "email": amplifier.email,
            "name": amplifier.name,
            "reason": reason,
        },
    )


# Import


def _changes(current: Row[Any], item: ImportRow) -> dict[str, Any]:
    """Columns of an existing amplifier that the row changes; status is never among them."""
    data, given = item.data, item.fields
    changes: dict[str, Any] = {}
    if data.email != current.email:
        changes["email"] = data.email
    for field in ("name", "tags", "networks", "locale", "frequency", "timezone", "paused_until"):
        if field in given and getattr(data, field) != getattr(current, field):
            changes[field] = getattr(data, field)
    if "audience" in given:
        audience = {
            network: value
            for network, value in (current.audience or {}).items()
            if network not in item.audience_networks
        }
        audience.update(data.audience)
        if audience != current.audience:
            changes["audience"] = audience
    return changes


async def import_rows(
    session: AsyncSession, *, organization_id: int, parsed: ParsedImport
) -> ImportResult:
    """Upsert parsed rows by email in the caller's transaction, with bulk statements.

    New addresses are created (suppressed ones with the suppression's status); existing ones
    get the row's fields when they differ; status is never changed by an import."""
    items = parsed.rows
    keys = [email_key(item.data.email) for item in items]

    dialect = session.get_bind().dialect.name
    existing: dict[str, Row[Any]] = {}
    for chunk in chunks(keys, LOOKUP_CHUNK):
        stmt = select(
            Amplifier.id,
            Amplifier.email_key,
            Amplifier.email,
            Amplifier.name,
            Amplifier.tags,
            Amplifier.networks,
            Amplifier.audience,
            Amplifier.locale,
            Amplifier.frequency,
            Amplifier.timezone,
            Amplifier.paused_until,
        ).where(Amplifier.organization_id == organization_id)
        result = await session.execute(_among(stmt, Amplifier.email_key, chunk, dialect))
        existing.update((row.email_key, row) for row in result)

    hashes = {email_hash(key): key for key in keys if key not in existing}
    suppressed: dict[str, str] = {}
    for hash_chunk in chunks(list(hashes), LOOKUP_CHUNK):
        stmt = select(Suppression.email_hash, Suppression.reason).where(
            Suppression.organization_id == organization_id
        )
        result = await session.execute(_among(stmt, Suppression.email_hash, hash_chunk, dialect))
        suppressed.update((hashes[row.email_hash], row.reason) for row in result)

    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: defaultdict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    unchanged = 0
    released: list[int] = []  # held mail that the row's preferences let go at once
    for item, key in zip(items, keys, strict=True):
        current = existing.get(key)
        if current is None:
            data = item.data
            inserts.append(
                {
                    "organization_id": organization_id,
                    "email": data.email,
                    "email_key": key,
                    "name": data.name,
                    "tags": data.tags,
                    "networks": data.networks,
                    "audience": data.audience,
                    "locale": data.locale,
                    "frequency": data.frequency.value,
                    "paused_until": data.paused_until,
                    "timezone": data.timezone,
                    "status": suppressed.get(key, AmplifierStatus.ACTIVE.value),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            continue
        changes = _changes(current, item)
        if not changes:
            unchanged += 1
            continue
        if holds_mail(current.frequency, current.paused_until, now) and not holds_mail(
            changes.get("frequency", current.frequency),
            changes.get("paused_until", current.paused_until),
            now,
        ):
            released.append(current.id)
        changes["id"] = current.id
        changes["updated_at"] = now
        # executemany needs the same columns in every parameter set.
        updates[frozenset(changes)].append(changes)

    try:
        if inserts:
            await session.execute(sa.insert(Amplifier), inserts)
        for parameters in updates.values():
            await session.execute(sa.update(Amplifier), parameters)
    except IntegrityError:
        raise RosterChanged(
            "The roster changed while this file was imported; import it again."
        ) from None
    await analyze(await session.connection(), ("amplifiers",), rows=len(inserts))
    await holds.make_due(session, amplifier_ids=released, now=now)
    await counters.audience_changed(
        session,
        {p["id"]: p["audience"] for group in updates.values() for p in group if "audience" in p},
    )

    errors = parsed.errors
    return ImportResult(
        created=len(inserts),
        updated=sum(len(p) for p in updates.values()),
        skipped=len(errors),
        unchanged=unchanged,
        errors=[ImportRowError(row=e.row, error=e.error) for e in errors[:MAX_REPORTED_ERRORS]],
        errors_truncated=len(errors) > MAX_REPORTED_ERRORS,
    )
