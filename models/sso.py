"""SAML single sign-on: the identity provider's configuration and the message ids the service
provider must remember between requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class SsoConfig(Base):
    """One row (id 1): the institution's identity provider, this site's SP key pair (the private
    key as a ``SecretBox`` token) and how IdP attributes become accounts."""

    __tablename__ = "sso_config"
    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    institution_name: Mapped[str] = mapped_column(String(120), default="")
    idp_metadata_url: Mapped[str] = mapped_column(String(500), default="")
    idp_entity_id: Mapped[str] = mapped_column(String(500), default="")
    idp_sso_url: Mapped[str] = mapped_column(String(500), default="")
    idp_slo_url: Mapped[str] = mapped_column(String(500), default="")
    idp_cert: Mapped[str] = mapped_column(Text, default="")
    idp_cert_next: Mapped[str] = mapped_column(Text, default="")  # rollover: both are trusted
    sp_cert: Mapped[str] = mapped_column(Text, default="")
    sp_private_key: Mapped[str] = mapped_column(Text, default="")  # encrypted
    clock_skew_seconds: Mapped[int] = mapped_column(Integer, default=120)
    jit_create: Mapped[bool] = mapped_column(default=True)
    sync_every_login: Mapped[bool] = mapped_column(default=True)
    attr_email: Mapped[str] = mapped_column(String(200), default="")
    attr_first_name: Mapped[str] = mapped_column(String(200), default="")
    attr_last_name: Mapped[str] = mapped_column(String(200), default="")
    attr_external_id: Mapped[str] = mapped_column(String(200), default="")
    attr_user_type: Mapped[str] = mapped_column(String(200), default="")
    user_type_map: Mapped[str] = mapped_column(Text, default="")  # "attribute value = user type code" lines
    attr_special: Mapped[str] = mapped_column(String(200), default="")
    special_values: Mapped[str] = mapped_column(Text, default="")  # one value a line: any of them = special
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SamlMessageId(Base):
    """An AuthnRequest id this site sent (``kind`` "request"), or an assertion id it accepted
    ("assertion"), kept until it expires. The session cookie cannot carry request ids: it is
    SameSite=Lax and the IdP answers with a cross-site POST. Accepted assertion ids are what
    refuses a replayed response."""

    __tablename__ = "saml_message_ids"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
