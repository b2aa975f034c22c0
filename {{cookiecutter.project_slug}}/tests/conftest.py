"""Real servers on loopback: the fake provider, and the API started with its own CLI."""

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from .fake_upstream import SCRIPTS, FakeUpstream
from .support import (
    PostgresServer,
    free_port,
    new_postgres_schema,
    postgres_bin_dir,
    serves,
    stop_process_group,
    wait_until,
)

DEFAULT_MODEL = "openai/fake-fast"
# The model this project was baked with, allowed too.
BAKED_MODEL = "{{ cookiecutter.default_model }}"
# LiteLLM's prefix of each provider family the fake upstream speaks.
FAMILIES = ["openai", "anthropic", "gemini", "ollama_chat"]
# A model of another provider whose key the test server lacks (missing configuration).
UNCONFIGURED_MODEL = "mistral/mistral-small-latest"
# What a test server allows. The page's tests add BAKED_MODEL: in a local bake, a server that
# offers the embedded model loads it at start-up, which the other servers have no use for.
TEST_MODELS = [f"{family}/{name}" for family in FAMILIES for name in SCRIPTS] + [UNCONFIGURED_MODEL]
FAKE_KEY = "sk-fake-test-key-0123456789"
METRICS_TOKEN = "test-metrics-token"
# Long enough for a page to reload, short enough to wait for in a test.
RESUME_GRACE_S = 3.0
# The API's suites are load from one client: every request comes from 127.0.0.1, hundreds a
# minute, so an API server started for them lifts its per-client limits. The limits themselves
# are tested in test_limits.py (and in unit/test_access.py); the page runs with the defaults.
ONE_CLIENT_LOAD = {"rate_limit": "100000/minute", "max_streams_per_client": "1000"}
PROJECT_DIR = Path(__file__).resolve().parent.parent
# The logs of the servers running now, shown with a test that fails while they run.
RUNNING_SERVER_LOGS: list[Path] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (`CI=true`, as GitHub Actions sets it) a test skipped for a missing tool fails:
    a green CI run has run every test."""
    report = (yield).get_result()
    if report.skipped and not hasattr(report, "wasxfail") and os.environ.get("CI") == "true":
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, which CI does not allow: {reason}"
    if report.failed:
        for log in RUNNING_SERVER_LOGS:
            report.sections.append((f"end of {log}", log.read_text()[-4000:]))


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A PostgreSQL server for the session (Debian's `postgresql` package); its URL."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("needs PostgreSQL's server programs (apt install postgresql)")
    with PostgresServer(bin_dir) as server:
        yield server.url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """A new, empty database: a SQLite file, or a schema on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'chat.db'}"
    return new_postgres_schema(request.getfixturevalue("postgres_server"))


@pytest.fixture(scope="session")
def upstream():
    server = FakeUpstream(also_fast=BAKED_MODEL.split("/", 1)[1]).start()
    yield server
    server.stop()


class ApiServer(NamedTuple):
    url: str
    process: subprocess.Popen
    log: Path

    def access_log(self) -> list[dict]:
        """The access-log entries (one JSON line per stream) written so far."""
        marker = ".access "
        lines = self.log.read_text().splitlines()
        return [json.loads(line.split(marker, 1)[1]) for line in lines if marker in line]

    def wait_for_access_log(self, **fields) -> dict:
        """The newest access-log entry with these fields, once written (after the stream ends)."""

        def entry() -> dict | None:
            matching = (e for e in reversed(self.access_log()) if fields.items() <= e.items())
            return next(matching, None)

        return wait_until(entry, f"an access-log entry with {fields}")


@pytest.fixture(scope="session")
def api_server(upstream, tmp_path_factory):
    """`python -m {{ cookiecutter.package_name }} api`, pointed at the fake upstream, serving
    its metrics."""
    folder = tmp_path_factory.mktemp("api")
    with running_api(upstream, folder, metrics_token=METRICS_TOKEN) as server:
        yield server


@pytest.fixture(scope="session")
def api(api_server):
    """The base URL of the session's API server."""
    return api_server.url


@contextmanager
def running_api(
    upstream: FakeUpstream,
    cwd: Path,
    unset: tuple[str, ...] = (),
    ready: bool = True,
    terminal: bool = False,
    **settings: str,
):
    """Start the API with its own CLI (in `cwd`, away from the project's own .env), with
    `settings` on top of the tests' own and without the variables in `unset`; its output goes
    to `cwd/api.log`. Yield it once healthy (and `ready`); stop it at the end."""
    port = free_port()
    arguments = ["api", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    settings = ONE_CLIENT_LOAD | settings
    with running_app(arguments, url, upstream, cwd, unset, ready, terminal, **settings) as server:
        yield server


@contextmanager
def running_app(
    arguments: list[str],
    api_url: str,
    upstream: FakeUpstream,
    cwd: Path,
    unset: tuple[str, ...] = (),
    ready: bool = True,
    terminal: bool = False,
    **settings: str,
):
    """`python -m {{ cookiecutter.package_name }} <arguments>`, pointed at the fake upstream,
    until the API at `api_url` is healthy (and `ready`); stopped, with any children, at the end,
    when it must exit within 10 s of SIGTERM. With `terminal`, its output goes through a
    pseudo-terminal into the log, which then holds what a person at a terminal sees (Reflex
    draws its spinners and progress bars only there)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_API_KEY") and not key.startswith("LLM_")
    }
    env |= {
        "OPENAI_API_KEY": FAKE_KEY,
        "ANTHROPIC_API_KEY": FAKE_KEY,
        "GEMINI_API_KEY": FAKE_KEY,
        "LLM_MODEL": DEFAULT_MODEL,
        "LLM_MODELS": ",".join(TEST_MODELS),
        "LLM_API_BASE": upstream.base_url,
        "SSE_HEARTBEAT_S": "0.5",
        "LLM_TIMEOUT_S": "3",
        "MAX_REQUEST_BYTES": "20000",
        "TOOLS": "calculate,current_time",
        "RESUME_GRACE_S": str(RESUME_GRACE_S),
        **{name.upper(): value for name, value in settings.items()},
    }
    for name in unset:
        del env[name]
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", *arguments]
    with output_into(cwd / "api.log", terminal) as output:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # As if started in the background, the harshest usual start: SIGINT ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    server = ApiServer(api_url, process, cwd / "api.log")
    RUNNING_SERVER_LOGS.append(server.log)
    try:
        wait_until_healthy(server, ready)
        yield server
    finally:
        RUNNING_SERVER_LOGS.remove(server.log)
        exited = stop_process_group(process)
    assert exited, f"`{' '.join(arguments)}` was still running 10 s after SIGTERM"


@contextmanager
def output_into(log: Path, terminal: bool):
    """A file descriptor for a process's output that ends up in `log`: the file itself, or a
    pseudo-terminal copied into it until the last process holding it has closed it."""
    if not terminal:
        with log.open("wb") as file:
            yield file.fileno()
        return
    controller, output = pty.openpty()
    # 40 rows of 120 columns: a new pseudo-terminal has none, and progress bars take its width.
    fcntl.ioctl(output, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))

    def copy() -> None:
        with log.open("wb") as file, suppress(OSError):  # EIO once every writer has gone
            while data := os.read(controller, 65536):
                file.write(data)
                file.flush()
        os.close(controller)

    threading.Thread(target=copy, name="terminal-output", daemon=True).start()
    try:
        yield output
    finally:
        os.close(output)  # the process has its own copy


def wait_until_healthy(server: ApiServer, ready: bool = True, timeout_s: float = 90) -> None:
    """Until `/api/health` answers; with `ready`, until LiteLLM has loaded too, so that what
    the tests time never includes its import."""

    def loaded(health: httpx.Response) -> bool:
        return not ready or health.json()["llm"] == "ready"

    health = f"{server.url}/api/health"
    try:
        wait_until(lambda: serves(health, loaded), "the API is healthy", timeout_s, server.process)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{server.log.read_text()[-3000:]}") from None
