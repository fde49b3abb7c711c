"""Campaign and message shapes: what the API accepts (strict, bounded) and what it answers."""

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, StrictBool, field_validator

from app import i18n
from app.campaigns.xtext import MAX_WEIGHT
from app.core.schemas import (
    NO_CONTROL_CHARACTERS,
    BodyText,
    HeaderText,
    HttpUrl,
    InputModel,
    Moment,
    Network,
    OutputModel,
    UtcDatetime,
    hide_null,
    refuse_null,
)
from app.models import CampaignStatus

MAX_MESSAGES = 50
MAX_HASHTAGS = 10
MAX_HASHTAG_LENGTH = 100
MAX_AUDIENCE_TAGS = 50
MAX_TEXT_LENGTH = 3_000
MAX_INTRO_LENGTH = 5_000
MAX_URL_LENGTH = 2_048
MAX_TRANSLATIONS = 50
MAX_VARIANTS = 10


def _valid_unicode(value: str) -> str:
    # JSON escapes can carry lone surrogates (\ud800); no database column can store them.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no unpaired surrogates)") from None
    return value


Unicode = AfterValidator(_valid_unicode)


def _no_controls(value: str) -> str:
    # Tags match the roster's tags exactly, which refuse every C0/C1 control (tabs included).
    if any(ord(char) < 32 or 127 <= ord(char) <= 159 for char in value):
        raise ValueError("must not contain control characters")
    return value


def _stripped_not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _hashtag(value: str) -> str:
    tag = value.strip().removeprefix("#")
    if not tag:
        raise ValueError("must not be empty")
    if len(tag) > MAX_HASHTAG_LENGTH:
        raise ValueError(f"must be at most {MAX_HASHTAG_LENGTH} characters")
    # Letters, digits and underscore; combining marks too (after a first letter or digit),
    # since words in scripts such as Devanagari need them.
    for index, char in enumerate(tag):
        if char == "_" or char.isalnum():
            continue
        if index > 0 and unicodedata.category(char).startswith("M"):
            continue
        raise ValueError("must be one word of letters, digits or underscores (with or without #)")
    return tag


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _unique_casefold(values: list[str]) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for value in values:
        if value.casefold() not in seen:
            seen.add(value.casefold())
            kept.append(value)
    return kept


def _without_blank_texts(value: dict[Network, str]) -> dict[Network, str]:
    # An empty per-network text means "no override": the message text is used instead.
    return {network: text for network, text in value.items() if text.strip()}


CampaignName = Annotated[
    HeaderText, Unicode, AfterValidator(_stripped_not_blank), Field(min_length=1, max_length=200)
]
Subject = Annotated[
    HeaderText, Unicode, AfterValidator(_stripped_not_blank), Field(min_length=1, max_length=300)
]
Intro = Annotated[BodyText, Unicode, Field(max_length=MAX_INTRO_LENGTH)]
AudienceTag = Annotated[
    HeaderText,
    Unicode,
    AfterValidator(_no_controls),
    AfterValidator(_stripped_not_blank),
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": NO_CONTROL_CHARACTERS}),
]
Networks = Annotated[
    list[Network],
    Field(min_length=1, max_length=50, description="De-duplicated, order kept."),
    AfterValidator(_unique),
]
MessageText = Annotated[
    BodyText, Unicode, AfterValidator(_not_blank), Field(min_length=1, max_length=MAX_TEXT_LENGTH)
]
NetworkTexts = Annotated[
    dict[Network, Annotated[BodyText, Unicode, Field(max_length=MAX_TEXT_LENGTH)]],
    Field(description="Text per network, used instead of `text` there."),
    AfterValidator(_without_blank_texts),
]
Hashtag = Annotated[str, Field(min_length=1, max_length=MAX_HASHTAG_LENGTH + 1)]
Hashtags = Annotated[
    list[Annotated[Hashtag, AfterValidator(_hashtag)]],
    Field(max_length=MAX_HASHTAGS, description="Words, without or with a leading `#`."),
    AfterValidator(_unique_casefold),
]
Url = Annotated[HttpUrl, Unicode, Field(max_length=MAX_URL_LENGTH)]
Position = Annotated[int, Field(ge=0, le=MAX_MESSAGES - 1, description="0-based.")]


def _locale_tag(value: str) -> str:
    return i18n.normalize_tag(value)


LocaleTag = Annotated[
    str,
    Field(min_length=2, max_length=i18n.MAX_TAG_LENGTH, description="A language tag: de, pt-BR."),
    AfterValidator(_locale_tag),
]


class CampaignTranslation(InputModel):
    """The campaign's subject and intro in one language; an absent one uses the base text."""

    model_config = ConfigDict(json_schema_extra=hide_null("subject", "intro"))

    subject: Subject | None = None
    intro: Intro | None = None

    _no_null = refuse_null("subject", "intro")


class MessageCopy(InputModel):
    """A text of the message with its per-network texts; the X weight rule applies to it as
    to the base text."""

    text: MessageText
    network_text: NetworkTexts = Field(default_factory=dict)


class MessageTranslation(MessageCopy):
    """A message in one language. The X weight rule applies to it as to the base text."""


class MessageVariant(MessageCopy):
    """Another wording of the message, in its base language. The X weight rule applies to it
    as to the base text."""


VARIANTS_DOC = (
    f"Up to {MAX_VARIANTS} other wordings; the base text is variant 0, these are 1, 2 … Each "
    "recipient gets one variant per message, assigned evenly at send time. A translation for "
    "the amplifier's language is shown instead of any variant."
)
MessageVariants = Annotated[
    list[MessageVariant], Field(max_length=MAX_VARIANTS, description=VARIANTS_DOC)
]


TRANSLATIONS_DOC = (
    "Per language tag; each amplifier gets the best match for its `locale` (pt-BR, then pt), "
    "else the base text."
)
CampaignTranslations = Annotated[
    dict[LocaleTag, CampaignTranslation],
    Field(max_length=MAX_TRANSLATIONS, description=TRANSLATIONS_DOC),
]
MessageTranslations = Annotated[
    dict[LocaleTag, MessageTranslation],
    Field(max_length=MAX_TRANSLATIONS, description=TRANSLATIONS_DOC),
]


class AudienceIn(InputModel):
    tags: Annotated[list[AudienceTag], AfterValidator(_unique)] = Field(
        default_factory=list,
        max_length=MAX_AUDIENCE_TAGS,
        description="Amplifiers with ANY of these tags; empty means every active amplifier.",
    )


X_RULE = (
    f"When the campaign uses `x`, the X text (`network_text.x` or `text`, then ` #tag` per "
    f"hashtag, a space and the link counted as 23) must weigh at most {MAX_WEIGHT}."
)


class MessageIn(InputModel):
    text: MessageText = Field(description=X_RULE)
    url: Url = Field(description="Absolute http(s) URL the message promotes.")
    network_text: NetworkTexts = Field(default_factory=dict)
    hashtags: Hashtags = Field(default_factory=list)
    image_url: Url | None = None
    translations: MessageTranslations = Field(default_factory=dict)
    variants: MessageVariants = Field(default_factory=list)


class MessageCreate(MessageIn):
    position: Position | None = Field(
        default=None, description="Insert at this 0-based position; appended when absent."
    )


_MESSAGE_KEPT_UNLESS_GIVEN = (
    "text",
    "url",
    "network_text",
    "hashtags",
    "position",
    "translations",
    "variants",
)


class MessageUpdate(InputModel):
    """Every field optional; `position` moves the message and renumbers the others."""

    # Absent means "keep"; `null` is refused except for image_url, where it removes the image.
    model_config = ConfigDict(json_schema_extra=hide_null(*_MESSAGE_KEPT_UNLESS_GIVEN))

    text: MessageText | None = None
    url: Url | None = None
    network_text: NetworkTexts | None = None
    hashtags: Hashtags | None = None
    image_url: Url | None = None
    position: Position | None = None
    translations: MessageTranslations | None = None
    variants: MessageVariants | None = None

    _no_null = refuse_null(*_MESSAGE_KEPT_UNLESS_GIVEN)


class CampaignCreate(InputModel):
    name: CampaignName
    subject: Subject
    intro: Intro = ""
    audience: AudienceIn = Field(default_factory=AudienceIn)
    networks: Networks
    utm: StrictBool = True
    attribution: StrictBool = Field(
        default=True,
        description="Human visits carry a click id (`amp_cid`) to report conversions against.",
    )
    messages: list[MessageIn] = Field(default_factory=list, max_length=MAX_MESSAGES)
    translations: CampaignTranslations = Field(default_factory=dict)
    expires_at: Moment | None = Field(
        default=None,
        description='Held deliveries still unsent then are cancelled (`last_error` "expired").',
    )


# Absent means "keep"; `null` is refused (expires_at takes null: it then never expires).
_CAMPAIGN_KEPT_UNLESS_GIVEN = (
    "name",
    "subject",
    "intro",
    "audience",
    "networks",
    "utm",
    "attribution",
    "translations",
)


class CampaignUpdate(InputModel):
    """Every field optional. Outside `draft` only name, subject and intro may change."""

    model_config = ConfigDict(json_schema_extra=hide_null(*_CAMPAIGN_KEPT_UNLESS_GIVEN))

    name: CampaignName | None = None
    subject: Subject | None = None
    intro: Intro | None = None
    audience: AudienceIn | None = None
    networks: Networks | None = None
    utm: StrictBool | None = None
    attribution: StrictBool | None = None
    translations: CampaignTranslations | None = None
    expires_at: Moment | None = Field(default=None, description="null: never expires.")

    _no_null = refuse_null(*_CAMPAIGN_KEPT_UNLESS_GIVEN)


class VariantRead(OutputModel):
    text: str
    network_text: dict[str, str]


class MessageRead(OutputModel):
    id: int
    campaign_id: int
    text: str
    url: str
    network_text: dict[str, str]
    hashtags: list[str]
    image_url: str | None
    position: int
    translations: dict[str, dict[str, Any]]
    variants: list[VariantRead]


class AudienceRead(OutputModel):
    tags: list[str]


class CampaignRead(OutputModel):
    id: int
    name: str
    subject: str
    intro: str
    audience: AudienceRead
    networks: list[Network]
    utm: bool
    attribution: bool
    status: CampaignStatus
    scheduled_at: UtcDatetime | None
    sent_at: UtcDatetime | None
    expires_at: UtcDatetime | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    messages: list[MessageRead]
    translations: dict[str, dict[str, str]]

    @field_validator("audience", mode="before")
    @classmethod
    def _audience_always_has_tags(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {"tags": list(value.get("tags") or [])}
        return value
