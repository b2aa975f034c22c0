"""Bake-time rules shared by both hooks: validate the answers, then shape the baked project.

Kept as an importable module (the hooks themselves are rendered into temp files and run as
subprocesses) so the rules are unit-tested directly by the template's own tests.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

from providers import PROVIDERS

CHOICE_VARIABLES = ("framework", "llm_provider", "python_version")

SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE = re.compile(r"^[a-z][a-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MODEL = re.compile(r"^\S+$")

# Names the baked package would shadow: its own dependencies and its own top-level folders.
TAKEN_PACKAGE_NAMES = frozenset(
    {
        "api",
        "django",
        "fastapi",
        "flask",
        "httpx",
        "hupper",
        "litellm",
        "litestar",
        "openai",
        "pydantic",
        "pydantic_settings",
        "reflex",
        "rxconfig",
        "starlette",
        "tests",
        "uvicorn",
        "waitress",
        "werkzeug",
    }
)


def load_choices(repo_dir: str | Path) -> dict[str, list[str]]:
    """The allowed values of every choice variable, read from the template's cookiecutter.json."""
    spec = json.loads((Path(repo_dir) / "cookiecutter.json").read_text(encoding="utf-8"))
    return {name: spec[name] for name in CHOICE_VARIABLES}


def validate(answers: dict[str, str], choices: dict[str, list[str]]) -> list[str]:
    """Every problem with the answers, each naming the variable and what it accepts."""
    problems = []
    if not answers["project_name"].strip():
        problems.append("project_name must not be empty.")
    if not SLUG.match(answers["project_slug"]):
        problems.append(
            f"project_slug {answers['project_slug']!r} must be lowercase letters, digits and "
            "single hyphens, starting with a letter (e.g. 'stream-chat')."
        )
    problems.extend(_package_name_problems(answers["package_name"]))
    if not EMAIL.match(answers["author_email"]):
        problems.append(f"author_email {answers['author_email']!r} is not an email address.")
    if not MODEL.match(answers["default_model"]):
        problems.append(
            f"default_model {answers['default_model']!r} must be a LiteLLM model string "
            "such as 'openai/gpt-4.1-mini' (no spaces)."
        )
    for name, allowed in choices.items():
        if answers[name] not in allowed:
            problems.append(f"{name} {answers[name]!r} is not one of: {', '.join(allowed)}.")
    return problems


def _package_name_problems(name: str) -> list[str]:
    if not PACKAGE.match(name):
        return [
            f"package_name {name!r} must be lowercase letters, digits and underscores, "
            "starting with a letter (e.g. 'stream_chat')."
        ]
    if keyword.iskeyword(name) or name in sys.stdlib_module_names or name in TAKEN_PACKAGE_NAMES:
        return [f"package_name {name!r} would shadow a Python or dependency module; pick another."]
    return []


def prune_unselected_adapters(project_dir: Path, package_name: str, framework: str) -> None:
    """Keep only the chosen framework's adapter (`api/<framework>_app.py`), its server module
    and how `dev`/`prod` run beside the UI: `wsgi.py` and `ui_beside.py` for Flask, `asgi.py` and
    `ui_mounted.py` for every other framework."""
    api = project_dir / package_name / "api"
    for adapter in api.glob("*_app.py"):
        if adapter.name != f"{framework}_app.py":
            adapter.unlink()
    unused_server, unused_ui = ("asgi", "mounted") if framework == "flask" else ("wsgi", "beside")
    (api / f"{unused_server}.py").unlink()
    (project_dir / package_name / f"ui_{unused_ui}.py").unlink()
    if framework != "fastapi":  # the only adapter that publishes an OpenAPI document
        (project_dir / "tests" / "test_openapi.py").unlink()


# The providers whose wire format the bake's tests/fake_upstream.py speaks, so that the baked
# default model can be tested end to end (the embedded model has tests/test_local_model.py).
SPOKEN_BY_THE_FAKE_UPSTREAM = ("openai", "anthropic", "gemini", "ollama")


def prune_unselected_provider(project_dir: Path, package_name: str, provider: str) -> None:
    """The embedded model's modules only ship with the `local` provider (its dependencies,
    llama.cpp and 98 MB of weights, are only installed there); the default model's test only
    with a provider the fake upstream speaks."""
    if provider != "local":
        (project_dir / package_name / "local_model.py").unlink()
        (project_dir / package_name / "local_weights.py").unlink()
        for test_module in ("test_local_model.py", "test_local_weights.py", "fake_hub.py"):
            (project_dir / "tests" / test_module).unlink()
    if provider not in SPOKEN_BY_THE_FAKE_UPSTREAM:
        (project_dir / "tests" / "test_default_model.py").unlink()


def write_env_file(project_dir: Path) -> None:
    """Start `.env` from `.env.example`; an existing `.env` is never overwritten."""
    env_file = project_dir / ".env"
    if not env_file.exists():
        shutil.copyfile(project_dir / ".env.example", env_file)


def cd_path(project_dir: Path, start_dir: str) -> str:
    """The baked folder as the user's `cd` wants it: relative to the folder cookiecutter was
    run from when it lies inside it (`-o out` gives `out/stream-chat`), else absolute."""
    try:
        relative = os.path.relpath(project_dir, start_dir)
    except ValueError:  # another drive, on Windows
        relative = os.pardir
    inside = relative != os.pardir and not relative.startswith(os.pardir + os.sep)
    return shlex.quote(relative if inside else str(project_dir))


def next_steps(answers: dict[str, str], cd: str) -> str:
    """The exact commands a new user runs after the bake; `cd` is the baked folder's path."""
    provider = PROVIDERS[answers["llm_provider"]]
    variables = [variable.name for variable in provider.env]
    setup = (
        f"set {', '.join(variables)} in .env"
        if variables
        else "no key needed: the embedded model answers offline"
    )
    package, slug = answers["package_name"], answers["project_slug"]
    without_uv = (
        "pip would compile llama.cpp here; README.md says what to run instead"
        if provider.without_dependencies
        else "python -m venv .venv && .venv/bin/pip install -e . && "
        f".venv/bin/python -m {package} dev"
    )
    return (
        f"\nBaked {answers['project_name']} into {cd}\n\n"
        "Next steps:\n"
        f"  cd {cd}\n"
        f"  {setup}\n"
        f"  uv run python -m {package} dev    # the app on http://localhost:3000\n"
        "  uv run pytest                       # the project's own tests\n"
        f'  git init && git add -A && git commit -m "Bake {slug}"    # with the uv.lock uv wrote\n'
        "  docker compose up --build           # deployed behind nginx on http://localhost:8080\n"
        f"(without uv: {without_uv})\n"
    )
