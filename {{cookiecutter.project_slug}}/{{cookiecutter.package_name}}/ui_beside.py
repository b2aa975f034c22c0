"""`dev` and `prod` with a WSGI API: it cannot be mounted into Reflex's ASGI backend without
losing client disconnects (which its clients' cancel relies on), so it runs on its own server
beside the UI. The page itself asks the chat core in its own process."""

import argparse
import signal
import subprocess
import sys
from typing import Any

from .reflex_run import reflex_command

UI_COMMANDS = {
    "dev": ("UI (reloading on code changes) with the API beside it", 3000),
    "prod": ("UI (production build) with the API beside it", 3000),
}
UI_OPTIONS: dict[str, dict[str, Any]] = {
    "--api-port": {"type": int, "default": 8000, "help": "the API's own port"}
}


def run_ui(args: argparse.Namespace) -> None:
    """Start the API server and the UI; stop both when either ends."""
    api_command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "api"]
    api_command += ["--host", args.host, "--port", str(args.api_port)]
    if args.command == "dev":
        api_command.append("--reload")
    _, ui_command, env = reflex_command(args)
    with subprocess.Popen(api_command) as api, subprocess.Popen(ui_command, env=env) as ui:
        try:
            ui.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the whole process group, so both servers are stopping on their own.
            # Ignore further SIGINTs (a second Ctrl-C, or the copy `uv run` forwards) meanwhile.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            for process in (ui, api):
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    break
            raise SystemExit(130) from None
        finally:
            for process in (ui, api):
                if process.poll() is None:
                    process.terminate()
