from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_campaign_position", "campaign_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(String(2048))
    network_text: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    hashtags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    image_url: Mapped[str | None] = mapped_column(String(2048))
    # locale tag → {"text", "network_text"?}
    translations: Mapped[dict[str, dict[str, Any]]] = mapped_column(
        JSONType, default=dict, server_default=sql_text("'{}'")
    )
    # Variants 1, 2 … of the text, each {"text", "network_text"}; the base text is variant 0.
    variants: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONType, default=list, server_default=sql_text("'[]'")
    )

    def text_for(self, network: str) -> str:
        return self.network_text.get(network) or self.text

    def x_texts(self) -> list[tuple[list[str], str, str]]:
        """Every text that may be posted to X: (where it is in the message, how to name it,
        the X text) for the base text, each translation and each variant."""
        texts: list[tuple[list[str], str, str]] = [([], "", self.text_for("x"))]
        for locale, translation in (self.translations or {}).items():
            network_text = translation.get("network_text") or {}
            text = network_text.get("x") or translation.get("text") or self.text
            texts.append((["translations", locale], f" ({locale} translation)", text))
        for index, variant in enumerate(self.variants or []):
            text = (variant.get("network_text") or {}).get("x") or variant["text"]
            texts.append((["variants", str(index)], f" (variant {index + 1})", text))
        return texts
