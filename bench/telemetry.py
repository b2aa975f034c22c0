"""What telemetry costs: the server's CPU per streamed token on the FastAPI route with metrics
(`METRICS_TOKEN`) and traces and metrics sent over OTLP (to a loopback collector) on, beside
off, beside the raw relay, in one run.

    uv run python -m bench.telemetry    # about 4 minutes on 2 cores

Each contender streams the burst workload (bench/client.py) after a round of it as warm-up,
`ROUNDS` times, off and on taking turns so that a slower minute of the shared machine falls on
both; the figure is the median. It writes bench/results/telemetry.json.
"""

import argparse
import asyncio
import json
import os
import statistics
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from bench.client import BURST, BURST_STREAMS, Client, Contender, load
from bench.run import TEMPLATE_DIR, bake, raise_open_files_limit, raw_relay, template_route
from tests.support import free_port, serving

ROUNDS = 9
METRICS_TOKEN = "bench-metrics-token"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--out", type=Path, default=TEMPLATE_DIR / "bench" / "results")
    args = parser.parse_args()
    work = TEMPLATE_DIR / "bench" / ".work"
    raise_open_files_limit()
    project = bake("fastapi", work)
    python = project / ".venv" / "bin" / "python"

    upstream_port, collector_port = free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    collector_url = f"http://127.0.0.1:{collector_port}"
    bench = TEMPLATE_DIR / "bench"
    upstream = [str(python), str(bench / "upstream.py"), "--port", str(upstream_port)]
    collector = [str(python), str(bench / "collector.py"), "--port", str(collector_port)]
    with (
        serving(upstream, f"{upstream_url}/closed", work, "upstream"),
        serving(collector, f"{collector_url}/received", work, "collector"),
    ):
        off = template_route("fastapi", project, upstream_url)
        on = template_route("fastapi", project, upstream_url)
        # The SDK's own intervals: spans sent every 5 s, metrics every 60 s.
        on.env.update(
            {"METRICS_TOKEN": METRICS_TOKEN, "OTEL_EXPORTER_OTLP_ENDPOINT": collector_url}
        )
        contenders = {"raw relay": raw_relay(python, upstream_url), "off": off, "on": on}
        rounds: dict[str, list[int]] = {name: [] for name in contenders}
        with serving_all(contenders, work) as servers:
            for _ in range(args.rounds):
                for name, (client, pid) in servers.items():
                    measured = load(client, pid, BURST_STREAMS, BURST)
                    rounds[name].append(measured["cpu_us_per_token"])
            scraped = httpx.get(
                f"http://127.0.0.1:{on.port}/api/metrics",
                headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            ).text
        received = httpx.get(f"{collector_url}/received").json()
    cpu = {name: statistics.median(values) for name, values in rounds.items()}
    results = {
        "workload": {"streams": BURST_STREAMS, "tokens": BURST.tokens, "rounds": args.rounds},
        "cpu_us_per_token": cpu,
        "rounds_us_per_token": rounds,
        "on_over_off": round(cpu["on"] / cpu["off"], 3),
        "off_over_raw_relay": round(cpu["off"] / cpu["raw relay"], 2),
        "collector_received": received,
        "metrics_scraped_lines": len(scraped.splitlines()),
    }
    args.out.mkdir(exist_ok=True)
    (args.out / "telemetry.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


@contextmanager
def serving_all(contenders: dict[str, Contender], work: Path) -> Iterator[dict]:
    """Every contender running and warmed up (a round of the workload each): by name, its
    client and its process id."""
    with ExitStack() as stack:
        servers = {}
        for name, contender in contenders.items():
            url = f"http://127.0.0.1:{contender.port}"
            env = {**os.environ, **contender.env}
            health = f"{url}{contender.health}"
            server = stack.enter_context(serving(contender.command, health, work, name, env))
            client = Client(url, contender)
            asyncio.run(client.warm_up())
            load(client, server.process.pid, BURST_STREAMS, BURST)
            servers[name] = (client, server.process.pid)
        yield servers


if __name__ == "__main__":
    main()
