"""The history's tables, brought to the newest schema by Alembic when the app opens its
database: a new database gets every migration, an older one the ones it lacks."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent / "migrations"
# Bakes made before migrations created the tables directly; such a database is stamped with the
# revision whose schema it has, then upgraded from there.
BEFORE_OWNERS, WITH_OWNERS = "0001", "0002"


def upgrade(engine: Engine) -> None:
    """Migrate to the newest revision, one process at a time: each app process opens the
    database as it starts, and those that wait find the work done."""
    # An in-memory SQLite database lives in the engine's one connection: nobody to wait for.
    in_memory = engine.url.database in (None, "", ":memory:")
    sqlite_file = engine.dialect.name == "sqlite" and not in_memory
    exclusive = _sqlite_write_transaction if sqlite_file else _locked_transaction
    with exclusive(engine) as connection:
        config = alembic_config(connection)
        if revision := _unversioned_schema(connection):
            command.stamp(config, revision)
        command.upgrade(config, "head")


@contextmanager
def _locked_transaction(engine: Engine) -> Iterator[Connection]:
    """PostgreSQL's DDL is transactional; an advisory lock makes the others wait. (Other
    databases get a plain transaction: start one process first there.)"""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        yield connection


# Any fixed number: the lock's name among the database's advisory locks.
_LOCK_KEY = 0x5354524D


@contextmanager
def _sqlite_write_transaction(engine: Engine) -> Iterator[Connection]:
    """pysqlite commits before each DDL statement on its own; with that off, BEGIN IMMEDIATE
    takes the database's write lock for the whole migration (SQLAlchemy's pysqlite recipe)."""
    migrating = create_engine(engine.url, poolclass=NullPool, connect_args={"timeout": 60})
    event.listen(migrating, "connect", _without_implicit_transactions)
    event.listen(migrating, "begin", _begin_immediate)
    try:
        with migrating.begin() as connection:
            yield connection
    finally:
        migrating.dispose()


def _without_implicit_transactions(connection, _record) -> None:
    connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _unversioned_schema(connection: Connection) -> str | None:
    """The revision of a database whose tables predate migrations; None for any other."""
    schema = inspect(connection)
    tables = schema.get_table_names()
    if "conversation" not in tables or "alembic_version" in tables:
        return None
    columns = {column["name"] for column in schema.get_columns("conversation")}
    return WITH_OWNERS if "owner" in columns else BEFORE_OWNERS
