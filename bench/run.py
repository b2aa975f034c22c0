"""Side by side, in one run: the raw relay, this template's route per framework, LiteLLM's proxy.

    uv run python bench/run.py            # every contender: about 4 minutes on 2 cores
    uv run python bench/run.py --smoke    # the raw relay and FastAPI, small: under 2 minutes

It bakes each framework (provider `openai`) into bench/.work/ with its own virtualenv, installs
the LiteLLM proxy into another, starts the loopback provider (bench/upstream.py), then starts each
contender in turn and measures, with the same client:

- cold start: process start until its health route answers 200;
- added time to first token: its median TTFT minus that of calling the provider directly;
- cancel propagation: client hang-up until the provider sees its connection close (p50, p99);
- at each concurrency level (streams of TOKENS tokens, INTERVAL_MS apart): the server's CPU
  time per streamed token (from /proc), tokens per second per core, the client's inter-token
  delay (p50, p99), and stalls (a stream silent for over STALL_S);
- peak RSS of the server's processes.

It writes bench/results/results.json, results.md (ratios to the raw relay) and tokens.png.
Numbers on a shared 2-core machine are only comparable within one run.
"""

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import httpx

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
FRAMEWORKS = ["fastapi", "litestar", "starlette", "django", "flask"]
LITELLM_PROXY = "litellm[proxy]<=1.109.1"  # 1.109.1 itself does not resolve (FACTS.md)
MASTER_KEY = "sk-bench-master-key-0123456789"
TOKENS, INTERVAL_MS, STALL_S = 50, 50, 1.0


@dataclass
class Contender:
    name: str
    command: list[str]
    health: str
    chat: str  # the path streams are POSTed to
    wire: str  # "ui": AI SDK UI message stream; "openai": chat completion chunks
    env: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    port: int = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="raw relay and FastAPI, small")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--levels", default="1,10,100,500", help="concurrent streams")
    parser.add_argument("--no-proxy", action="store_true", help="skip the LiteLLM proxy")
    parser.add_argument("--out", type=Path, default=TEMPLATE_DIR / "bench" / "results")
    args = parser.parse_args()
    frameworks = ["fastapi"] if args.smoke else args.frameworks.split(",")
    levels = [1, 10] if args.smoke else [int(level) for level in args.levels.split(",")]
    work = TEMPLATE_DIR / "bench" / ".work"
    raise_open_files_limit()

    bakes = {framework: bake(framework, work) for framework in frameworks}
    python = next(iter(bakes.values())) / ".venv" / "bin" / "python"  # starlette, uvicorn, httpx
    proxy_python = None if args.smoke or args.no_proxy else install_proxy(work)

    upstream_port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    upstream_command = [str(python), str(TEMPLATE_DIR / "bench" / "upstream.py")]
    with running([*upstream_command, "--port", str(upstream_port)], work, f"{upstream_url}/closed"):
        contenders = [raw_relay(python, upstream_url)]
        contenders += [template_route(name, path, upstream_url) for name, path in bakes.items()]
        if proxy_python:
            contenders.append(litellm_proxy(proxy_python, upstream_url, work))
        results = {
            "tokens_per_stream": TOKENS,
            "interval_ms": INTERVAL_MS,
            "levels": levels,
            "direct_ttft_ms": asyncio.run(direct_ttft_ms(upstream_url)),
            "contenders": {},
        }
        for contender in contenders:
            print(f"measuring {contender.name}", flush=True)
            results["contenders"][contender.name] = measure(contender, upstream_url, levels, work)
    report(results, args.out)


def raise_open_files_limit() -> None:
    """500 streams hold 1,000 sockets in a relay; the usual soft limit is 1,024."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def bake(framework: str, work: Path) -> Path:
    """A bake of `framework` with the openai provider, installed into its own virtualenv."""
    from cookiecutter.main import cookiecutter

    output = work / framework
    context = {"framework": framework, "llm_provider": "openai"}
    project = Path(
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            output_dir=str(output),
            extra_context=context,
            overwrite_if_exists=True,
        )
    )
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", "--quiet", "--allow-existing", ".venv"], cwd=project, check=True)
    # The dev group brings starlette and uvicorn, which the provider and the raw relay run on.
    install = [
        *uv,
        "pip",
        "install",
        "--quiet",
        "--compile-bytecode",
        "--python",
        ".venv/bin/python",
    ]
    subprocess.run([*install, "-e", ".", "--group", "dev"], cwd=project, check=True)
    return project


def install_proxy(work: Path) -> Path:
    venv = work / "litellm-proxy"
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", "--quiet", "--allow-existing", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [*uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python)]
    subprocess.run([*install, LITELLM_PROXY], check=True)
    return python


def raw_relay(python: Path, upstream_url: str) -> Contender:
    port = free_port()
    relay = str(TEMPLATE_DIR / "bench" / "raw_relay.py")
    command = [str(python), relay, "--port", str(port), "--upstream", upstream_url]
    return Contender("raw relay", command, "/api/health", "/api/chat", "ui", port=port)


def template_route(framework: str, project: Path, upstream_url: str) -> Contender:
    port = free_port()
    package = next(path.parent.name for path in project.glob("*/chat.py"))
    python = project / ".venv" / "bin" / "python"
    command = [str(python), "-m", package, "api", "--port", str(port)]
    env = {
        "OPENAI_API_KEY": "sk-bench",
        "LLM_MODEL": "openai/bench",
        "LLM_API_BASE": upstream_url,
        "RATE_LIMIT": "100000000/minute",
        "MAX_STREAMS_PER_CLIENT": "100000",
    }
    return Contender(framework, command, "/api/health", "/api/chat", "ui", env, port=port)


def litellm_proxy(python: Path, upstream_url: str, work: Path) -> Contender:
    port = free_port()
    config = work / "litellm-proxy.yaml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "model_list": [
                    {
                        "model_name": "bench",
                        "litellm_params": {
                            "model": "openai/bench",
                            "api_base": upstream_url,
                            "api_key": "sk-bench",
                        },
                    }
                ],
                "general_settings": {"master_key": MASTER_KEY},
            }
        )
    )
    command = [str(python.parent / "litellm"), "--config", str(config), "--port", str(port)]
    env = {"LITELLM_MASTER_KEY": MASTER_KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    return Contender(
        "LiteLLM proxy",
        command,
        "/health/liveliness",
        "/chat/completions",
        "openai",
        env,
        headers,
        port=port,
    )


def measure(contender: Contender, upstream_url: str, levels: list[int], work: Path) -> dict:
    url = f"http://127.0.0.1:{contender.port}"
    env = {**os.environ, **contender.env}
    started = time.monotonic()
    with running(contender.command, work, f"{url}{contender.health}", env) as server:
        cold_start_s = time.monotonic() - started
        client = Client(url, contender)
        asyncio.run(client.warm_up())
        result = {
            "cold_start_s": round(cold_start_s, 2),
            "ttft_ms": asyncio.run(client.ttft_ms()),
            "cancel_ms": asyncio.run(client.cancel_ms(upstream_url)),
            "levels": {},
        }
        for level in levels:
            client.errors.clear()
            cpu_before = cpu_seconds(server.process.pid)
            streams, wall_s = asyncio.run(client.concurrent(level))
            cpu_s = cpu_seconds(server.process.pid) - cpu_before
            result["levels"][str(level)] = summarize(streams, wall_s, cpu_s, client.errors)
        result["peak_rss_mib"] = round(peak_rss_kib(server.process.pid) / 1024)
    result["stop_s"] = server.stop_s
    return result


def summarize(streams: list[list[float]], wall_s: float, cpu_s: float, errors: list[str]) -> dict:
    tokens = sum(len(arrivals) for arrivals in streams)
    gaps = [gap for arrivals in streams for gap in gaps_of(arrivals)]
    return {
        "streams": len(streams),
        "complete": sum(len(arrivals) == TOKENS for arrivals in streams),
        "tokens": tokens,
        "wall_s": round(wall_s, 2),
        "cpu_s": round(cpu_s, 2),
        "cpu_us_per_token": round(cpu_s / tokens * 1e6) if tokens else None,
        "tokens_per_s": round(tokens / wall_s),
        "tokens_per_cpu_s": round(tokens / cpu_s) if cpu_s else None,
        "gap_p50_ms": round(percentile(gaps, 50) * 1000, 1),
        "gap_p99_ms": round(percentile(gaps, 99) * 1000, 1),
        "stalls": sum(any(gap > STALL_S for gap in gaps_of(a)) for a in streams),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:3],
    }


def gaps_of(arrivals: list[float]) -> list[float]:
    return [b - a for a, b in pairwise(arrivals)]


class Client:
    """One client for every contender: POSTs a stream, notes when each token arrives."""

    def __init__(self, url: str, contender: Contender):
        self.url = url
        self.contender = contender
        self.count = 0
        self.errors: list[str] = []  # refused requests: status and the start of the body

    def request(self, tokens: int, interval_ms: int) -> tuple[str, dict]:
        self.count += 1
        stream_id = f"{self.contender.name.replace(' ', '-')}-{self.count}"
        body = {"messages": [{"role": "user", "content": f"{stream_id} {tokens} {interval_ms}"}]}
        if self.contender.wire == "openai":
            body |= {"model": "bench", "stream": True}
        return stream_id, body

    async def stream(
        self, http: httpx.AsyncClient, tokens: int, interval_ms: int, stop_after: int | None = None
    ) -> tuple[str, float, list[float]]:
        """Stream one answer; (its id, when it was sent, when each token arrived). With
        `stop_after`, hang up after that many tokens; the last entry is then the hang-up."""
        stream_id, body = self.request(tokens, interval_ms)
        sent = time.monotonic()
        arrivals: list[float] = []
        async with http.stream(
            "POST", self.contender.chat, json=body, headers=self.contender.headers
        ) as response:
            if response.status_code != 200:
                self.errors.append(f"{response.status_code} {(await response.aread())[:200]!r}")
                return stream_id, sent, arrivals
            async for line in response.aiter_lines():
                if is_token(line, self.contender.wire):
                    arrivals.append(time.monotonic())
                    if len(arrivals) == stop_after:
                        break
        if stop_after:
            arrivals.append(time.monotonic())
        return stream_id, sent, arrivals

    def http(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        return httpx.AsyncClient(base_url=self.url, timeout=300, limits=limits)

    async def warm_up(self) -> None:
        async with self.http() as http:
            for _ in range(3):
                await self.stream(http, 3, 1)

    async def ttft_ms(self, requests: int = 20) -> float:
        async with self.http() as http:
            ttfts = []
            for _ in range(requests):
                _, sent, arrivals = await self.stream(http, 3, 1)
                ttfts.append(arrivals[0] - sent)
        return round(statistics.median(ttfts) * 1000, 2)

    async def cancel_ms(self, upstream_url: str, requests: int = 20) -> dict:
        hung_up = {}
        async with self.http() as http:
            for _ in range(requests):
                stream_id, _, arrivals = await self.stream(http, 1000, 10, stop_after=3)
                hung_up[stream_id] = arrivals[-1]
        closed = await wait_for_closes(upstream_url, set(hung_up))
        delays = [closed[sid]["at"] - hung_up[sid] for sid in hung_up if sid in closed]
        return {
            "p50": round(percentile(delays, 50) * 1000, 1) if delays else None,
            "p99": round(percentile(delays, 99) * 1000, 1) if delays else None,
            "never_closed": len(hung_up) - len(delays),
            "finished_anyway": sum(closed[sid]["finished"] for sid in hung_up if sid in closed),
        }

    async def concurrent(self, level: int) -> tuple[list[list[float]], float]:
        async with self.http() as http:
            started = time.monotonic()
            streams = await asyncio.gather(
                *(self.stream(http, TOKENS, INTERVAL_MS) for _ in range(level))
            )
            return [arrivals for _, _, arrivals in streams], time.monotonic() - started


def is_token(line: str, wire: str) -> bool:
    if wire == "ui":
        return line.startswith('data: {"type":"text-delta"')
    if not line.startswith("data: {"):
        return False
    choices = json.loads(line[6:]).get("choices") or [{}]
    return bool(choices[0].get("delta", {}).get("content"))


async def direct_ttft_ms(upstream_url: str, requests: int = 20) -> float:
    """The provider's own time to first token, for the contenders' added latency."""
    direct = Contender("direct", [], "", "/v1/chat/completions", "openai")
    return await Client(upstream_url, direct).ttft_ms(requests)


async def wait_for_closes(upstream_url: str, ids: set[str], timeout_s: float = 10) -> dict:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as http:
        while True:
            closed = (await http.get(f"{upstream_url}/closed")).json()
            if ids <= closed.keys() or time.monotonic() > deadline:
                return closed
            await asyncio.sleep(0.1)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class Server:
    process: subprocess.Popen
    stop_s: float | None = None  # SIGTERM until it exited; None if it had to be killed


@contextmanager
def running(command: list[str], cwd: Path, health_url: str, env: dict | None = None) -> Iterator:
    """Start `command` (in `cwd`, away from any project's .env) until `health_url` answers
    200; at the end, SIGTERM it and its children, and time how long they take to exit."""
    log = (cwd / "server.log").open("a")
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = Server(process)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[:3]} did not start; see {cwd / 'server.log'}")
            try:
                if httpx.get(health_url, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.02)
        yield server
    finally:
        signalled = time.monotonic()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
            server.stop_s = round(time.monotonic() - signalled, 2)
        except subprocess.TimeoutExpired:
            pass
        with suppress(ProcessLookupError):  # whatever is left of it
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()


def process_tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(p for child in children for p in process_tree(int(child)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its children (from /proc)."""
    ticks = 0
    for process in process_tree(pid):
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int:
    total = 0
    for process in process_tree(pid):
        for line in Path(f"/proc/{process}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    plot(results, out / "tokens.png")
    print((out / "results.md").read_text())


def markdown(results: dict) -> str:
    contenders = results["contenders"]
    raw = contenders["raw relay"]
    top = str(max(results["levels"]))
    busy = str(max((level for level in results["levels"] if level <= 100), default=top))

    def ratio(value, base) -> str:
        return f"{value} ({value / base:.1f}x)" if value and base else str(value)

    lines = [
        f"Streams of {results['tokens_per_stream']} tokens, {results['interval_ms']} ms apart; "
        f"the provider's own time to first token: {results['direct_ttft_ms']} ms.",
        "",
        f"| contender | CPU µs/token @{busy} (vs raw) | tokens/s per core @{busy} | "
        f"inter-token p50 / p99 ms @{top} | stalls, errors @{top} | added TTFT ms | "
        "cancel p50 / p99 ms | cold start s | SIGTERM to exit s | peak RSS MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in contenders.items():
        at_busy, at_top = result["levels"][busy], result["levels"][top]
        cancel = result["cancel_ms"]
        lines.append(
            f"| {name} "
            f"| {ratio(at_busy['cpu_us_per_token'], raw['levels'][busy]['cpu_us_per_token'])} "
            f"| {at_busy['tokens_per_cpu_s']} "
            f"| {at_top['gap_p50_ms']} / {at_top['gap_p99_ms']} "
            f"| {at_top['stalls']}, {at_top['errors']} of {at_top['streams']} "
            f"| {round(result['ttft_ms'] - results['direct_ttft_ms'], 2)} "
            f"| {cancel['p50']} / {cancel['p99']} "
            f"| {result['cold_start_s']} "
            f"| {result['stop_s'] if result['stop_s'] is not None else 'killed after 30'} "
            f"| {result['peak_rss_mib']} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    for name, result in results["contenders"].items():
        levels = [int(level) for level in result["levels"]]
        rates = [level["tokens_per_s"] for level in result["levels"].values()]
        axes.plot(levels, rates, marker="o", label=name)
    axes.set_xscale("log")
    axes.set_xlabel("concurrent streams")
    axes.set_ylabel("tokens/s delivered (all streams)")
    axes.set_title(f"{TOKENS}-token streams, one token every {INTERVAL_MS} ms per stream")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
