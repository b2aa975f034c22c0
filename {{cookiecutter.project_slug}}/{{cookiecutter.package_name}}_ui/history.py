"""Conversations and their messages, kept in the app's database (`DATABASE_URL`).

SQLite by default; any SQLAlchemy URL works (Postgres: `postgresql+psycopg://…`). The tables
are created on first use; once the schema must change under live data, put Alembic in front.
"""

from datetime import UTC, datetime
from functools import cache

from sqlalchemy import Engine
from sqlmodel import Field, Session, SQLModel, col, create_engine, delete, select

from {{ cookiecutter.package_name }}.settings import get_settings

NEW_TITLE = "New chat"


def _now() -> datetime:
    return datetime.now(UTC)


class Conversation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
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
    details: str = ""


@cache
def engine() -> Engine:
    url = get_settings().database_url
    # Reflex runs handlers on several threads; SQLite's default forbids sharing a connection.
    connect_args = {"check_same_thread": False} if url.startswith("sqlite") else {}
    engine = create_engine(url, connect_args=connect_args)
    SQLModel.metadata.create_all(engine)
    return engine


def conversations() -> list[Conversation]:
    """All conversations, the most recently active first."""
    with Session(engine()) as session:
        statement = select(Conversation).order_by(col(Conversation.updated_at).desc())
        return list(session.exec(statement))


def get_conversation(conversation_id: int) -> Conversation | None:
    with Session(engine()) as session:
        return session.get(Conversation, conversation_id)


def create_conversation(title: str, system_prompt: str = "", model: str = "") -> Conversation:
    conversation = Conversation(title=title, system_prompt=system_prompt, model=model)
    with Session(engine()) as session:
        session.add(conversation)
        session.commit()
        session.refresh(conversation)
    return conversation


def update_conversation(conversation_id: int, **fields: str) -> None:
    with Session(engine()) as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            return
        conversation.sqlmodel_update({**fields, "updated_at": _now()})
        session.add(conversation)
        session.commit()


def delete_conversation(conversation_id: int) -> None:
    with Session(engine()) as session:
        in_it = col(StoredMessage.conversation_id) == conversation_id
        session.exec(delete(StoredMessage).where(in_it))
        session.exec(delete(Conversation).where(col(Conversation.id) == conversation_id))
        session.commit()


def messages(conversation_id: int) -> list[StoredMessage]:
    with Session(engine()) as session:
        statement = (
            select(StoredMessage)
            .where(StoredMessage.conversation_id == conversation_id)
            .order_by(col(StoredMessage.id))
        )
        return list(session.exec(statement))


def add_message(message: StoredMessage) -> StoredMessage:
    """Save a message (filling in its id); its conversation moves to the top of the list."""
    with Session(engine()) as session:
        if conversation := session.get(Conversation, message.conversation_id):
            conversation.updated_at = _now()
            session.add(conversation)
        session.add(message)
        session.commit()
        session.refresh(message)
    return message


def update_message(message_id: int, content: str) -> None:
    with Session(engine()) as session:
        message = session.get(StoredMessage, message_id)
        if message is not None:
            message.content = content
            session.add(message)
            session.commit()


def delete_messages_after(conversation_id: int, message_id: int) -> None:
    """Forget what followed a message (its answer and later turns), to ask it again."""
    with Session(engine()) as session:
        session.exec(
            delete(StoredMessage).where(
                col(StoredMessage.conversation_id) == conversation_id,
                col(StoredMessage.id) > message_id,
            )
        )
        session.commit()
