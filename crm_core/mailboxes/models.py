"""Mailbox: an IMAP folder the platform reads inbound support mail from."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, Timestamped, check_one_of, intpk, str40, str80, str255
from crm_core.encryption.types import EncryptedText


class MailboxSecurity(enum.StrEnum):
    PLAIN = "plain"
    STARTTLS = "starttls"
    TLS = "tls"


class Mailbox(Timestamped, Base):
    """One IMAP folder to poll, how far polling got, and who polls it now (the lease)."""

    __tablename__ = "mailboxes"
    __table_args__ = (
        check_one_of("security", MailboxSecurity),
        CheckConstraint("port BETWEEN 1 AND 65535", name="port_range"),
        CheckConstraint("last_uid >= 0", name="last_uid_not_negative"),
    )

    id: Mapped[intpk]
    name: Mapped[str80] = mapped_column(unique=True)
    # Its messages become inbox events of this source, so the source cannot be
    # deleted while the mailbox exists.
    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="RESTRICT"), index=True, info={"erd_label": "reads_for"}
    )
    host: Mapped[str255]
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str40] = mapped_column(default=MailboxSecurity.TLS)
    username: Mapped[str255]
    # IMAP LOGIN needs the secret itself, so it cannot be hashed: it is encrypted at
    # rest instead (crm_core.encryption). Never log or show it.
    password: Mapped[str] = mapped_column(EncryptedText())
    folder: Mapped[str255] = mapped_column(default="INBOX")
    # Where handled messages go; NULL leaves them in ``folder``, flagged \Seen.
    move_to: Mapped[str255 | None]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # UIDs are only meaningful with the UIDVALIDITY they were read under (RFC 9051 2.3.1.1);
    # both are unsigned 32-bit numbers, hence BIGINT.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_polled_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # One poller per mailbox: whoever holds an unexpired lease (see services.acquire_lease).
    lease_owner: Mapped[str255 | None]
    lease_expires_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        # Written out so that the password can never reach a log through repr().
        return (
            f"<Mailbox id={self.id!r} name={self.name!r} "
            f"{self.security} {self.username}@{self.host}:{self.port}/{self.folder}>"
        )
