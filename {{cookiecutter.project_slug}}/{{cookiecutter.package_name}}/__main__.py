"""Command line: `python -m {{ cookiecutter.package_name }} api|dev|prod|page-headers`.

`api` serves the HTTP API alone. `dev` and `prod` run the Reflex UI with the API, as
`{{ "ui_beside" if cookiecutter.framework == "flask" else "ui_mounted" }}.py` says. `page-headers` prints the security headers of the exported page
for nginx (the Dockerfile writes them into its image).
"""

import argparse
from pathlib import Path

# Not the API itself: the framework loads only where it serves (`api`, or Reflex's backend).
from .{{ "ui_beside" if cookiecutter.framework == "flask" else "ui_mounted" }} import UI_COMMANDS, UI_OPTIONS, run_ui


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package_name }}")
    parser.set_defaults(backend_only=False)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (text, port) in {"api": ("serve the API alone", 8000), **UI_COMMANDS}.items():
        command = commands.add_parser(name, help=text)
        command.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to accept other hosts")
        command.add_argument("--port", type=int, default=port)
    commands.choices["api"].add_argument("--reload", action="store_true")
    commands.choices["prod"].add_argument(
        "--backend-only",
        action="store_true",
        help="the UI's backend and the API only; nginx serves the exported page (Dockerfile)",
    )
    for name in UI_COMMANDS:
        for flag, options in UI_OPTIONS.items():
            commands.choices[name].add_argument(flag, **options)
    page_headers = commands.add_parser(
        "page-headers", help="print the exported page's security headers as nginx add_header lines"
    )
    page_headers.add_argument("--page-dir", type=Path, default=Path(".web/build/client"))
    args = parser.parse_args(argv)

    if args.command == "page-headers":
        from .security import nginx_page_headers
        from .settings import get_settings

        print(nginx_page_headers(get_settings(), args.page_dir), end="")
    elif args.command == "api":
        from .api import serve

        serve(args.host, args.port, args.reload)
    else:
        run_ui(args)


if __name__ == "__main__":
    main()
