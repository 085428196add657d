"""Files customers send (portal uploads, mail attachments, raw mails): content-addressed bytes plus a row per use."""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Column, LargeBinary, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from registry.types import UTCDateTime, utcnow

# Types a browser or mail client declares when it does not know; the file name is a better guess then.
VAGUE_TYPES = frozenset({"", "application/octet-stream", "text/plain", "binary/octet-stream"})


class StoredFile(SQLModel, table=True):
    """The bytes of a file, kept once per SHA-256 in the registry so every web process can serve them."""

    __tablename__ = "stored_file"

    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Attachment(SQLModel, table=True):
    """A file a customer sent with a message, on the portal or by mail."""

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    concern_id: str | None = Field(default=None, foreign_key="concern.id", index=True, max_length=20)
    interaction_id: int | None = Field(default=None, foreign_key="interaction.id", index=True)
    raw_mail_id: int | None = Field(default=None, foreign_key="raw_mail.id", index=True)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=150)
    size: int
    sha256: str = Field(foreign_key="stored_file.sha256", max_length=64)
    channel: str = Field(max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UploadRefused(ValueError):
    """A file the desk does not take; the message says which file and why."""


def safe_filename(name: str | None, fallback: str = "attachment") -> str:
    """The last path component, printable characters only, at most 200 characters."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = "".join(c for c in name if c.isprintable() and c not in '"<>|*?:').strip(" .")
    return name[:200] or fallback


def check_upload(filename: str, declared_type: str | None, size: int, *, max_bytes: int,
                 allowed_types: frozenset[str], forbidden_extensions: frozenset[str]) -> tuple[str, str]:
    """The safe name and content type of an acceptable upload, or `UploadRefused` with the reason."""
    name = safe_filename(filename)
    declared = (declared_type or "").split(";")[0].strip().lower()
    content_type = declared
    if declared in VAGUE_TYPES:
        content_type = mimetypes.guess_type(name)[0] or declared or "application/octet-stream"
    extension = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    if extension in forbidden_extensions:
        raise UploadRefused(f"{name}: files of type {extension} are not accepted")
    if content_type not in allowed_types:
        raise UploadRefused(f"{name}: files of type {content_type} are not accepted")
    if size > max_bytes:
        raise UploadRefused(f"{name}: the file has {size:,} bytes; the limit is {max_bytes:,}")
    if size == 0:
        raise UploadRefused(f"{name}: the file is empty")
    return name, content_type


def store_file(*, session: Session, data: bytes) -> str:
    """Keep `data` once and return its SHA-256; storing the same bytes again is harmless."""
    digest = hashlib.sha256(data).hexdigest()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # ON CONFLICT DO NOTHING: two deliveries of the same file racing each other stay one row.
    session.execute(insert(StoredFile.__table__).values(sha256=digest, size=len(data), data=data,
                                                        created_at=utcnow()).on_conflict_do_nothing())
    return digest


def file_data(*, session: Session, sha256: str) -> bytes:
    """The bytes stored under `sha256`."""
    row = session.get(StoredFile, sha256)
    if row is None:
        raise LookupError(f"no stored file {sha256}")
    return row.data


def add_attachment(*, session: Session, data: bytes, filename: str, content_type: str, channel: str,
                   customer_id: int | None = None, concern_id: str | None = None, interaction_id: int | None = None,
                   raw_mail_id: int | None = None) -> Attachment:
    """Store a file and record where it came from."""
    row = Attachment(customer_id=customer_id, concern_id=concern_id, interaction_id=interaction_id,
                     raw_mail_id=raw_mail_id, filename=safe_filename(filename), content_type=content_type,
                     size=len(data), sha256=store_file(session=session, data=data), channel=channel)
    session.add(row)
    session.flush()
    return row


def link_attachments(*, session: Session, ids: Iterable[int], customer_id: int, concern_id: str,
                     interaction_id: int | None) -> None:
    """File attachments stored before their message existed under that message."""
    ids = list(ids)
    if ids:
        session.execute(update(Attachment).where(col(Attachment.id).in_(ids)).values(
            customer_id=customer_id, concern_id=concern_id, interaction_id=interaction_id))


def attachments_by_interaction(*, session: Session, concern_ids: Iterable[str]) -> dict[int, list[Attachment]]:
    """The attachments of these concerns, grouped by the message they came with."""
    concern_ids = list(concern_ids)
    grouped: dict[int, list[Attachment]] = {}
    if not concern_ids:
        return grouped
    rows = session.exec(select(Attachment).where(col(Attachment.concern_id).in_(concern_ids)).order_by(Attachment.id))
    for row in rows:
        if row.interaction_id is not None:
            grouped.setdefault(row.interaction_id, []).append(row)
    return grouped


def attachments_of_raw_mail(*, session: Session, raw_mail_id: int) -> list[Attachment]:
    """The files that came with one raw mail."""
    return list(session.exec(select(Attachment).where(Attachment.raw_mail_id == raw_mail_id).order_by(Attachment.id)))
