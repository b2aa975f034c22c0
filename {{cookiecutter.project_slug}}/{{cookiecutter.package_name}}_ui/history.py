"""Conversations and their messages, kept in the app's database (`DATABASE_URL`), each visitor's
apart from everyone else's.

Every conversation belongs to an owner: a random id the visitor's browser keeps in a cookie.
`History(owner)` is the only way in, and each of its queries filters by that owner, so a
conversation id named by another visitor reads as "not found" and changes nothing.

SQLite by default; any SQLAlchemy URL works (Postgres: `postgresql+psycopg://…`). The tables
are Alembic's (`migrations/`), brought up to date when the app opens the database.
"""

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, LargeBinary
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import defer
from sqlmodel import Field, Session, SQLModel, col, create_engine, delete, select

from {{ cookiecutter.package_name }}_ui import migrate

NEW_TITLE = "New chat"
# How long a file attached to a question never sent is kept.
UNSENT_KEPT = timedelta(days=1)
# `secrets.token_urlsafe(32)`: 256 random bits, which nobody guesses.
_OWNER_ID = re.compile(r"[A-Za-z0-9_-]{43}")


class HistoryUnavailable(Exception):
    """The database failed (down, read-only, full): nothing was read or saved."""


def _summary(error: SQLAlchemyError) -> str:
    """The database's own words, without the statement SQLAlchemy appends."""
    return f"{type(error).__name__}: {str(error).splitlines()[0]}"


def _now() -> datetime:
    return datetime.now(UTC)


def new_owner_id() -> str:
    return secrets.token_urlsafe(32)


def is_owner_id(value: str) -> bool:
    return bool(_OWNER_ID.fullmatch(value))


class Conversation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # Conversations saved before owners existed have "" (nobody's): no visitor sees them.
    owner: str = Field(default="", index=True)
    title: str = NEW_TITLE
    system_prompt: str = ""
    model: str = ""
    updated_at: datetime = Field(default_factory=_now, index=True)


class StoredMessage(SQLModel, table=True):
    """A question or an answer; answers keep how they ended (done, stopped, error)."""

    __tablename__ = "message"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    role: str
    content: str
    status: str = "done"
    error: str = ""
    action: str = "retry"  # offered beside the error: retry | edit | new_chat | configure
    details: str = ""
    tools: str = "[]"  # the answer's tool calls, as JSON (the fields of `client.ToolCall`)


class StoredAttachment(SQLModel, table=True):
    """A file sent with a question (see `attachments`); until it is sent, it has no message."""

    __tablename__ = "attachment"

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    filename: str
    media_type: str  # as its content shows it to be
    size: int
    data: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(default_factory=_now)


def open_database(url: str) -> Engine:
    """An engine on `url`, with the tables migrated to the newest schema."""
    # Reflex runs handlers on several threads; SQLite's default forbids sharing a connection.
    connect_args = {"check_same_thread": False} if url.startswith("sqlite") else {}
    # A pooled connection is tested before use, so that a restarted database costs no failure.
    engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True)
    try:
        migrate.upgrade(engine)
    except SQLAlchemyError as exc:
        raise HistoryUnavailable(_summary(exc)) from exc
    return engine


class History:
    """One owner's conversations and messages; nothing of anyone else's is reachable. Every
    method raises `HistoryUnavailable` when the database fails."""

    def __init__(self, owner: str, database: Engine) -> None:
        if not is_owner_id(owner):
            raise ValueError("an owner id is 43 URL-safe characters (new_owner_id())")
        self.owner = owner
        self._engine = database

    def conversations(self) -> list[Conversation]:
        """The owner's conversations, the most recently active first."""
        with self._session() as session:
            statement = (
                select(Conversation)
                .where(Conversation.owner == self.owner)
                .order_by(col(Conversation.updated_at).desc())
            )
            return list(session.exec(statement))

    def get(self, conversation_id: int) -> Conversation | None:
        with self._session() as session:
            return self._owned(session, conversation_id)

    def create(self, title: str, system_prompt: str = "", model: str = "") -> Conversation:
        conversation = Conversation(
            owner=self.owner, title=title, system_prompt=system_prompt, model=model
        )
        with self._session() as session:
            session.add(conversation)
            session.commit()
            session.refresh(conversation)
        return conversation

    def update(self, conversation_id: int, **fields: str) -> None:
        with self._session() as session:
            if conversation := self._owned(session, conversation_id):
                conversation.sqlmodel_update({**fields, "updated_at": _now()})
                session.add(conversation)
                session.commit()

    def delete(self, conversation_id: int) -> None:
        with self._session() as session:
            if conversation := self._owned(session, conversation_id):
                in_it = col(StoredMessage.conversation_id) == conversation_id
                self._delete_attachments(session, in_it)
                session.exec(delete(StoredMessage).where(in_it))
                session.delete(conversation)
                session.commit()

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        with self._session() as session:
            if self._owned(session, conversation_id) is None:
                return []
            statement = (
                select(StoredMessage)
                .where(StoredMessage.conversation_id == conversation_id)
                .order_by(col(StoredMessage.id))
            )
            return list(session.exec(statement))

    def add_message(self, message: StoredMessage) -> StoredMessage | None:
        """Save a message (filling in its id), None if its conversation is not the owner's;
        the conversation moves to the top of the list."""
        with self._session() as session:
            conversation = self._owned(session, message.conversation_id)
            if conversation is None:
                return None
            conversation.updated_at = _now()
            session.add(conversation)
            session.add(message)
            session.commit()
            session.refresh(message)
        return message

    def update_message(self, conversation_id: int, message_id: int, content: str) -> None:
        with self._session() as session:
            if self._owned(session, conversation_id) is None:
                return
            message = session.get(StoredMessage, message_id)
            if message is not None and message.conversation_id == conversation_id:
                message.content = content
                session.add(message)
                session.commit()

    def update_answer(self, answer: StoredMessage) -> None:
        """Save an answer over its earlier state (it went on after the visitor's decision)."""
        with self._session() as session:
            if self._owned(session, answer.conversation_id) is None:
                return
            stored = session.get(StoredMessage, answer.id)
            if stored is not None and stored.conversation_id == answer.conversation_id:
                for field in ("content", "status", "error", "action", "details", "tools"):
                    setattr(stored, field, getattr(answer, field))
                session.add(stored)
                session.commit()

    def delete_messages_after(self, conversation_id: int, message_id: int) -> None:
        """Forget what followed a message (its answer and later turns), to ask it again."""
        with self._session() as session:
            if self._owned(session, conversation_id) is None:
                return
            after = (col(StoredMessage.conversation_id) == conversation_id) & (
                col(StoredMessage.id) > message_id
            )
            self._delete_attachments(session, after)
            session.exec(delete(StoredMessage).where(after))
            session.commit()

    def add_attachment(self, filename: str, media_type: str, data: bytes) -> StoredAttachment:
        """Keep a file for the question being written; `attach` gives it to the question. Files
        left unsent for a day (their tab closed), anyone's, go."""
        attachment = StoredAttachment(
            owner=self.owner, filename=filename, media_type=media_type, size=len(data), data=data
        )
        with self._session() as session:
            session.exec(
                delete(StoredAttachment).where(
                    col(StoredAttachment.message_id).is_(None),
                    col(StoredAttachment.created_at) < _now() - UNSENT_KEPT,
                )
            )
            session.add(attachment)
            session.commit()
            session.refresh(attachment)
        return attachment

    def discard_attachment(self, attachment_id: int) -> None:
        """Forget a file not sent yet."""
        with self._session() as session:
            session.exec(
                delete(StoredAttachment).where(
                    col(StoredAttachment.id) == attachment_id,
                    col(StoredAttachment.owner) == self.owner,
                    col(StoredAttachment.message_id).is_(None),
                )
            )
            session.commit()

    def attach(self, message_id: int, attachment_ids: list[int]) -> list[StoredAttachment]:
        """Give the owner's files not sent yet to their question; those it took (another tab
        may have sent or removed some)."""
        with self._session() as session:
            unsent = select(StoredAttachment).where(
                col(StoredAttachment.id).in_(attachment_ids),
                col(StoredAttachment.owner) == self.owner,
                col(StoredAttachment.message_id).is_(None),
            )
            taken = list(session.exec(unsent.options(defer(StoredAttachment.data))))  # type: ignore[arg-type]
            for attachment in taken:
                attachment.message_id = message_id
                session.add(attachment)
            session.commit()
            for attachment in taken:
                session.refresh(attachment, ["id", "filename", "media_type", "size", "message_id"])
        return taken

    def attachments(
        self, message_ids: list[int], with_data: bool = False
    ) -> list[StoredAttachment]:
        """The files of these messages, in the order they were added; their bytes if asked."""
        return self._attachments(col(StoredAttachment.message_id).in_(message_ids), with_data)

    def unsent_attachments(self) -> list[StoredAttachment]:
        """The files attached to a question not sent yet."""
        return self._attachments(col(StoredAttachment.message_id).is_(None), with_data=False)

    def _attachments(self, which, with_data: bool) -> list[StoredAttachment]:
        statement = (
            select(StoredAttachment)
            .where(col(StoredAttachment.owner) == self.owner, which)
            .order_by(col(StoredAttachment.id))
        )
        if not with_data:
            statement = statement.options(defer(StoredAttachment.data))  # type: ignore[arg-type]
        with self._session() as session:
            return list(session.exec(statement))

    def attachment(self, attachment_id: int) -> StoredAttachment | None:
        """One of the owner's files, with its bytes; None for anyone else's."""
        with self._session() as session:
            attachment = session.get(StoredAttachment, attachment_id)
            return attachment if attachment and attachment.owner == self.owner else None

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with Session(self._engine) as session:
                yield session
        except SQLAlchemyError as exc:
            raise HistoryUnavailable(_summary(exc)) from exc

    @staticmethod
    def _delete_attachments(session: Session, of_messages) -> None:
        """The files of the messages `of_messages` selects (before they are deleted)."""
        messages = select(StoredMessage.id).where(of_messages)
        session.exec(delete(StoredAttachment).where(col(StoredAttachment.message_id).in_(messages)))

    def _owned(self, session: Session, conversation_id: int) -> Conversation | None:
        statement = select(Conversation).where(
            Conversation.id == conversation_id, Conversation.owner == self.owner
        )
        return session.exec(statement).first()
