"""Cold start and time to first delta of a baked project's API, through its fake upstream.

Run with the bake's own Python, from anywhere:

    <bake>/.venv/bin/python bench/first_delta.py <bake> [--requests 31]

It starts the bake's loopback fake provider and `python -m <package> api`, times the start until
`/api/health` answers 200, then times `POST /api/chat` (model `openai/fake-fast`) until the first
`text-delta` arrives, and prints one JSON line. The first request, which warms LiteLLM's client,
is reported apart from the median of the others.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bake", type=Path)
    parser.add_argument("--requests", type=int, default=31)
    args = parser.parse_args()
    sys.path.insert(0, str(args.bake))
    from tests.fake_upstream import FakeUpstream, free_port

    package = next(p.parent.name for p in args.bake.glob("*/chat.py"))
    framework = next(args.bake.glob(f"{package}/api/*_app.py")).stem.removesuffix("_app")
    upstream = FakeUpstream().start()
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.endswith("_API_KEY")}
    env |= {
        "OPENAI_API_KEY": "sk-bench",
        "LLM_MODEL": "openai/fake-fast",
        "LLM_API_BASE": upstream.base_url,
        "RATE_LIMIT": "100000/minute",
    }
    started = time.perf_counter()
    api = subprocess.Popen(
        [sys.executable, "-m", package, "api", "--port", str(port)],
        cwd=args.bake.parent,  # away from the bake's .env
        env={**env, "PYTHONPATH": str(args.bake)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        cold_start_s = wait_for_health(url) and time.perf_counter() - started
        with httpx.Client(base_url=url, timeout=30) as client:  # one connection, as a browser
            delays = [first_delta_ms(client) for _ in range(args.requests)]
    finally:
        api.terminate()
        api.wait(timeout=15)
        upstream.stop()
    print(
        json.dumps(
            {
                "framework": framework,
                "cold_start_s": round(cold_start_s, 2),
                "first_request_first_delta_ms": round(delays[0], 1),
                "median_first_delta_ms": round(statistics.median(delays[1:]), 1),
            }
        )
    )


def wait_for_health(url: str) -> bool:
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=30).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.02)


def first_delta_ms(client: httpx.Client) -> float:
    body = {"messages": [{"role": "user", "content": "Hello?"}]}
    started = time.perf_counter()
    with client.stream("POST", "/api/chat", json=body) as response:
        lines = response.iter_lines()
        elapsed = next((time.perf_counter() - started) for line in lines if "text-delta" in line)
        for _ in lines:  # read to the end, as a client does
            pass
    return elapsed * 1000


if __name__ == "__main__":
    main()
