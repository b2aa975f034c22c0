"""What the page's handlers share, built once per process from the settings: the UI's
composition root.

Reflex creates the states itself, so they cannot be handed what they depend on; they ask
`services()`. Tests hand in their own with `use(Services(Settings(...)))`.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

from sqlalchemy import Engine

from {{ cookiecutter.package_name }}.settings import Settings, get_settings

from .gate import Gate
from .history import open_database


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # One gate per process: its count of wrong tries is shared by every visitor.
        self.gate = Gate(settings)

    @cached_property
    def database(self) -> Engine:
        """Opened (and migrated) on first use, not when the page is compiled."""
        return open_database(self.settings.database_url)


_current: Services | None = None


def services() -> Services:
    global _current
    if _current is None:
        _current = Services(get_settings())
    return _current


@contextmanager
def use(replacement: Services) -> Iterator[Services]:
    """`services()` answers `replacement` within the block (tests)."""
    global _current
    previous, _current = _current, replacement
    try:
        yield replacement
    finally:
        _current = previous
