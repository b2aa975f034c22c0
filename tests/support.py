"""What the template's tests and the benchmark share: free ports, waiting for a condition,
servers that are always stopped (and how long they took to stop), and what /proc says of a
process tree."""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    condition: Callable[[], T],
    what: str,
    timeout_s: float = 10,
    process: subprocess.Popen | None = None,
    interval_s: float = 0.05,
) -> T:
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


def serves(
    url: str, until: Callable[[httpx.Response], bool] = lambda response: True
) -> httpx.Response | None:
    """GET `url`: the response if it is a 200 that satisfies `until`, else None."""
    try:
        response = httpx.get(url, timeout=10)
    except httpx.TransportError:
        return None
    return response if response.status_code == 200 and until(response) else None


@dataclass
class Server:
    process: subprocess.Popen
    stop_s: float | None = None  # from the stop signal until it exited; None if it was killed


@contextmanager
def running(
    command: list[str],
    cwd: Path,
    log: Path,
    env: dict | None = None,
    stop_signal: int = signal.SIGTERM,
) -> Iterator[Server]:
    """`command` in its own process group, its output in `log`. At the end, `stop_signal` to
    the group; whatever has not exited 30 s later is killed. The log's tail is printed when the
    block fails."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(process)
    try:
        yield server
    except BaseException:
        print(f"{command[:3]} wrote:\n{log.read_text()[-4000:]}")
        raise
    finally:
        signalled = time.monotonic()
        with suppress(ProcessLookupError):
            os.killpg(process.pid, stop_signal)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
            server.stop_s = round(time.monotonic() - signalled, 2)
        with suppress(ProcessLookupError):  # children that outlived it
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def serving(
    command: list[str], health_url: str, cwd: Path, name: str, env: dict | None = None
) -> Iterator[Server]:
    """`running(command)` from when `health_url` answers 200; its log in `cwd` (a directory away
    from any project's .env)."""
    log = cwd / f"{name.replace(' ', '-')}.log"
    with running(command, cwd, log, env) as server:
        up = f"{name} is up; see {log}"
        wait_until(lambda: serves(health_url), up, 120, server.process, 0.02)  # cold start
        yield server


def process_tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(p for child in children for p in process_tree(int(child)))]


def cpu_seconds(pid: int) -> float:
    """User plus system time of `pid` and its children so far."""
    ticks = 0
    for process in process_tree(pid):
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int:
    """The peak resident memory of `pid` and its children, summed."""
    total = 0
    for process in process_tree(pid):
        for line in Path(f"/proc/{process}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total
