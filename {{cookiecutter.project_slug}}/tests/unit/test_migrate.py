"""Alembic's migrations, on SQLite and on a real PostgreSQL: they build the schema the models
declare, and they bring a database of an earlier bake up to date with its history kept."""

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    inspect,
    text,
)
from sqlmodel import SQLModel

from {{ cookiecutter.package_name }}_ui import migrate
from {{ cookiecutter.package_name }}_ui.history import (
    History,
    StoredMessage,
    new_owner_id,
    open_database,
)

from ..support import new_postgres_schema, wait_until

# The tables as bakes made them before owners existed (SQLModel's create_all), with a turn.
TABLES_BEFORE_OWNERS = MetaData()
Table(
    "conversation",
    TABLES_BEFORE_OWNERS,
    Column("id", Integer, primary_key=True),
    *(Column(name, String, nullable=False) for name in ["title", "system_prompt", "model"]),
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
)
Table(
    "message",
    TABLES_BEFORE_OWNERS,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", ForeignKey("conversation.id"), nullable=False, index=True),
    *(Column(name, String, nullable=False) for name in ["role", "content", "status", "error"]),
    Column("details", String, nullable=False),
)


def an_old_turn(connection) -> None:
    tables = TABLES_BEFORE_OWNERS.tables
    conversation, message = tables["conversation"], tables["message"]
    old = {"title": "Old chat", "system_prompt": "", "model": "", "updated_at": datetime.now(UTC)}
    conversation_id = connection.execute(conversation.insert().values(old)).inserted_primary_key[0]
    turn = {"role": "user", "content": "Old question", "status": "done", "error": "", "details": ""}
    connection.execute(message.insert().values(conversation_id=conversation_id, **turn))


HEAD = ScriptDirectory(str(migrate.MIGRATIONS)).get_current_head()
# What each app process does as it starts.
OPEN_DATABASE = """
import sys
from {{ cookiecutter.package_name }}_ui.history import open_database
open_database(sys.argv[1])
"""


@pytest.fixture
def engine(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def differences_from_the_models(engine) -> list:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)


def revision(engine) -> str:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_an_empty_database_gets_the_schema_the_models_declare(engine, database_url):
    open_database(database_url).dispose()
    assert revision(engine) == HEAD
    assert differences_from_the_models(engine) == []


def test_every_migration_can_be_undone_and_redone(engine, database_url):
    open_database(database_url).dispose()
    with engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    open_database(database_url).dispose()
    assert differences_from_the_models(engine) == []


def test_history_from_before_owners_is_kept_and_hidden(engine, database_url):
    TABLES_BEFORE_OWNERS.create_all(engine)
    with engine.begin() as connection:
        an_old_turn(connection)

    database = open_database(database_url)
    visitor = History(new_owner_id(), database)
    assert visitor.conversations() == [] and visitor.get(1) is None  # the old one's id
    conversation_id = visitor.create("Mine").id
    visitor.add_message(StoredMessage(conversation_id=conversation_id, role="user", content="Q"))
    database.dispose()
    open_database(database_url).dispose()  # a second start has nothing left to do

    with engine.connect() as connection:
        rows = connection.execute(text("SELECT owner, title FROM conversation ORDER BY id"))
        assert rows.all() == [("", "Old chat"), (visitor.owner, "Mine")]
        assert connection.execute(text("SELECT count(*) FROM message")).scalar() == 2
    assert revision(engine) == HEAD
    assert differences_from_the_models(engine) == []


def test_tables_created_directly_with_owners_are_taken_as_they_are(engine, database_url):
    """The bakes just before migrations created the tables of revision 0002 without Alembic."""
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), migrate.WITH_OWNERS)
        connection.execute(text("DROP TABLE alembic_version"))
        owned = {"owner": new_owner_id(), "title": "Kept", "system_prompt": "", "model": ""}
        connection.execute(
            text(
                "INSERT INTO conversation (owner, title, system_prompt, model, updated_at) "
                "VALUES (:owner, :title, :system_prompt, :model, CURRENT_TIMESTAMP)"
            ),
            owned,
        )

    open_database(database_url).dispose()
    assert revision(engine) == HEAD
    assert differences_from_the_models(engine) == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT title FROM conversation")).all() == [("Kept",)]


def test_on_sqlite_processes_starting_at_once_all_start(tmp_path):
    """Each app process opens the database as it starts; on SQLite the first to take the write
    lock migrates while the others wait. (Processes: Alembic keeps one context per process.)"""
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    starts = [subprocess.Popen([sys.executable, "-c", OPEN_DATABASE, url]) for _ in range(3)]
    assert [process.wait(timeout=60) for process in starts] == [0, 0, 0]
    assert revision(create_engine(url)) == HEAD


def test_on_postgres_a_process_waits_while_another_migrates(postgres_server):
    url = new_postgres_schema(postgres_server)
    engine = create_engine(url)
    waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    with engine.begin() as migrating:  # as another process would, while it migrates
        migrating.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": migrate._LOCK_KEY})
        starting = subprocess.Popen([sys.executable, "-c", OPEN_DATABASE, url])
        lock_requested = lambda: migrating.execute(waiting).scalar() == 1  # noqa: E731
        wait_until(lock_requested, "the starting process waits for the lock", 30, starting)
        assert starting.poll() is None
    assert starting.wait(timeout=60) == 0
    assert revision(engine) == HEAD
    engine.dispose()
