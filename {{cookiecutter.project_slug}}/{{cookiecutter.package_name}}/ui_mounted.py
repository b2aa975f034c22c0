"""`dev` and `prod` with an ASGI API: the UI's app mounts it into Reflex's backend
(`api.mount_into_reflex`), so page and API share one port."""

import argparse
import os

from .reflex_run import reflex_command

UI_COMMANDS = {
    "dev": ("UI + API on one port, reloading on code changes", 3000),
    "prod": ("UI + API on one port, production build", 3000),
}
UI_OPTIONS: dict[str, dict] = {}


def run_ui(args: argparse.Namespace) -> None:
    """Become `reflex run`."""
    os.execvpe(*reflex_command(args))
