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

    def text_for(self, network: str) -> str:
        return self.network_text.get(network) or self.text

    def x_texts(self) -> list[tuple[str | None, str]]:
        """The X text of the base message (locale None) and of every translation."""
        texts: list[tuple[str | None, str]] = [(None, self.text_for("x"))]
        for locale, translation in (self.translations or {}).items():
            network_text = translation.get("network_text") or {}
            texts.append((locale, network_text.get("x") or translation.get("text") or self.text))
        return texts
