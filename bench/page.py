"""The page's own path, measured beside the API route on the same server.

Most people use the Reflex page, not the API: its backend reads the API's stream, updates the
chat state and pushes websocket frames. `measure` starts a bake's `prod --backend-only` (for
FastAPI the API is mounted into that process, so its CPU covers both), drives chats through the
websocket with bench/page_client.py and, at the same load, streams from the API route alone.
"""

import json
import os
import subprocess
from itertools import pairwise
from pathlib import Path

from bench.client import STALL_S, Client, Contender, Workload, load, percentile
from tests.support import cpu_seconds, free_port, serving

# An answer of 300 tokens at 30 tokens/s, a realistic model's pace.
PAGE = Workload("page", tokens=300, interval_ms=33)
SMOKE = Workload("page", tokens=60, interval_ms=33)  # the smoke run's: it checks, not measures
SPREAD_S = 1.0  # the questions go out over this long, as people arrive
PAGE_CLIENT = Path(__file__).resolve().parent / "page_client.py"


def measure(
    project: Path, package: str, env: dict, levels: list[int], work: Path, workload: Workload
) -> dict:
    """At each level, that many page chats of `workload` at once, then as many API streams: each
    with the server's CPU per token; for the page, what its websocket carried and when."""
    python = project / ".venv" / "bin" / "python"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = work / "page.db"
    database.unlink(missing_ok=True)
    command = [str(python), "-m", package, "prod", "--backend-only", "--port", str(port)]
    env = {**os.environ, **env, "DATABASE_URL": f"sqlite:///{database}"}
    api = Client(url, Contender("api", [], "/api/health", "/api/chat", "ui"))
    with serving(command, f"{url}/api/health", work, "page", env) as server:

        def page_chats(chats: int, workload: Workload) -> list[dict]:
            arguments = [url, package, "--chats", str(chats), "--tokens", str(workload.tokens)]
            arguments += ["--interval-ms", str(workload.interval_ms), "--spread-s", str(SPREAD_S)]
            done = subprocess.run(
                [str(python), str(PAGE_CLIENT), *arguments],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode:
                raise RuntimeError(f"{PAGE_CLIENT.name} failed:\n{done.stderr[-3000:]}")
            return json.loads(done.stdout)

        page_chats(10, Workload("warm-up", tokens=30, interval_ms=workload.interval_ms))
        results = {}
        for level in levels:
            cpu_before = cpu_seconds(server.process.pid)
            chats = page_chats(level, workload)
            page_cpu_s = cpu_seconds(server.process.pid) - cpu_before
            results[str(level)] = {
                "page": summarize_page(chats, page_cpu_s),
                "api": load(api, server.process.pid, level, workload),
            }
    return results


def summarize_page(chats: list[dict], cpu_s: float) -> dict:
    arrived = [sorted({at for at in chat["arrived"] if at}) for chat in chats]
    tokens = sum(at is not None for chat in chats for at in chat["arrived"])
    latencies = [
        at - sent
        for chat in chats
        for at, sent in zip(chat["arrived"], chat["sent"], strict=True)
        if at and sent
    ]
    first = [times[0] - chat["asked"] for chat, times in zip(chats, arrived, strict=True) if times]
    # the longest a chat waited for anything new, from its question to its saved answer
    silences = [
        max(b - a for a, b in pairwise([chat["asked"], *times, chat["ended"]]))
        for chat, times in zip(chats, arrived, strict=True)
    ]

    def ms(values: list[float], p: float) -> float | None:
        return round(percentile(values, p) * 1000, 1) if values else None

    return {
        "chats": len(chats),
        "complete": sum(all(chat["arrived"]) for chat in chats),  # the others showed an error
        "tokens": tokens,
        "cpu_us_per_token": round(cpu_s / tokens * 1e6) if tokens else None,
        "ws_bytes_per_token": round(sum(chat["bytes"] for chat in chats) / tokens)
        if tokens
        else None,
        "token_to_socket_p50_ms": ms(latencies, 50),
        "token_to_socket_p99_ms": ms(latencies, 99),
        "first_token_p50_ms": ms(first, 50),
        "first_token_max_ms": ms(first, 100),
        "longest_silence_ms": ms(silences, 100),
        "stalls": sum(silence > STALL_S for silence in silences),
    }
