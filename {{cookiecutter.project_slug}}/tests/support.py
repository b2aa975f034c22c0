"""What the end-to-end tests share: free ports, waiting for a condition, processes that are
always stopped, and what /proc says of a process."""

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import httpx


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


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the process (started with `start_new_session=True`) and its children; kill
    whatever is left when it has exited or after 10 s, so that no test leaves a server behind."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


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
