"""What the page's handlers share, built once per process from the settings: the UI's
composition root.

Reflex creates the states itself, so they cannot be handed what they depend on; they ask
`services()`. Tests hand in their own with `use(Services(Settings(...)))`.
"""

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy import Engine

from {{ cookiecutter.package_name }} import mcp_tools, telemetry
from {{ cookiecutter.package_name }}.chat import Chat
from {{ cookiecutter.package_name }}.settings import Settings, get_settings

from .gate import Gate
from .history import open_database


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # One gate per process: its count of wrong tries is shared by every visitor.
        self.gate = Gate(settings)
        # The page's own chat core: its visitors' limits and answers, apart from the API's.
        self.chat = Chat(settings)
        self._database: Engine | None = None
        self._opening = threading.Lock()

    @property
    def database(self) -> Engine:
        """Opened (and migrated) on first use, not when the page is compiled; tried again on
        the next use if the database failed."""
        with self._opening:
            if self._database is None:
                self._database = open_database(self.settings.database_url)
            return self._database


_current: Services | None = None
_building = threading.Lock()


def services() -> Services:
    global _current
    with _building:
        if _current is None:
            _current = Services(get_settings())
        return _current


def open_history() -> None:
    """A start-up task: the migrations run (or fail) before the first visitor, not in the
    first handler that reads the history."""
    services().database  # noqa: B018 (the property opens it)


@asynccontextmanager
async def connections_ended_at_exit() -> AsyncIterator[None]:
    """A lifespan task: the backend's server (granian, uvicorn) ends the process with the
    signal it was sent, so `atexit` would never end the MCP servers' sessions, nor send the
    last telemetry."""
    yield
    await asyncio.to_thread(mcp_tools.close_all)
    await asyncio.to_thread(telemetry.flush_all)


@contextmanager
def use(replacement: Services) -> Iterator[Services]:
    """`services()` answers `replacement` within the block (tests)."""
    global _current
    previous, _current = _current, replacement
    try:
        yield replacement
    finally:
        _current = previous
