"""Side by side, in one run: the raw relay, this template's route per framework, LiteLLM's proxy.

    uv run python -m bench.run            # every contender: about 4 minutes on 2 cores
    uv run python -m bench.run --smoke    # the raw relay and FastAPI, small: under 2 minutes

It bakes each framework (provider `openai`) into bench/.work/ with its own virtualenv, installs
the LiteLLM proxy into another, starts the loopback provider (bench/upstream.py), then starts each
contender in turn and measures, with the same client (bench/client.py):

- cold start: process start until its health route answers 200;
- added time to first token: its median TTFT minus that of calling the provider directly, and
  the same split in two: until the request reaches the provider, and from the provider's first
  token to the client;
- cancel propagation: client hang-up until the provider sees its connection close (p50, p99);
- stop (the template's routes): `DELETE /api/chat/{id}/stream` on a resumable answer until the
  provider sees its connection close (p50, p99 of 50), a second client attached;
- two workloads (bench/client.py), each after a round of it as warm-up: paced (PACED, at each
  concurrency level) and burst (BURST_STREAMS streams of BURST): the server's CPU time per
  streamed token (from /proc), tokens per second per core, the client's inter-token delay
  (p50, p99), and stalls (a stream silent for over STALL_S);
- peak RSS of the server's processes;
- the page's own path (bench/page.py), on the FastAPI bake: page chats through Reflex's
  websocket at each of `--page-levels`, then API streams at the same load on the same server.

It writes bench/results/results.json, results.md (ratios to the raw relay) and tokens.png
(bench/report.py).
Numbers on a shared 2-core machine are only comparable within one run.
"""

import argparse
import asyncio
import functools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench import page
from bench.client import (
    BURST,
    BURST_STREAMS,
    PACED,
    Client,
    Contender,
    direct_ttft_ms,
    load,
)
from bench.report import report
from tests.support import free_port, peak_rss_kib, serving

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
FRAMEWORKS = ["fastapi", "litestar", "starlette", "django", "flask"]
# 1.109.1 pins a litellm-proxy-extras release that is not on PyPI; this resolves to 1.108.7.
LITELLM_PROXY = "litellm[proxy]<=1.109.1"
MASTER_KEY = "sk-bench-master-key-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="raw relay and FastAPI, small")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--levels", default="1,10,100,500", help="concurrent streams")
    parser.add_argument("--no-proxy", action="store_true", help="skip the LiteLLM proxy")
    parser.add_argument("--page-levels", default="10,25,50,100", help="page chats at once")
    parser.add_argument("--out", type=Path, default=TEMPLATE_DIR / "bench" / "results")
    args = parser.parse_args()
    frameworks = ["fastapi"] if args.smoke else args.frameworks.split(",")
    levels = [1, 10] if args.smoke else [int(level) for level in args.levels.split(",")]
    page_levels = [5] if args.smoke else [int(level) for level in args.page_levels.split(",")]
    page_workload = page.SMOKE if args.smoke else page.PAGE
    work = TEMPLATE_DIR / "bench" / ".work"
    raise_open_files_limit()

    bakes = {framework: bake(framework, work) for framework in frameworks}
    python = next(iter(bakes.values())) / ".venv" / "bin" / "python"  # starlette, uvicorn, httpx
    proxy_python = None if args.smoke or args.no_proxy else install_proxy(work)

    upstream_port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    upstream_command = [str(python), str(TEMPLATE_DIR / "bench" / "upstream.py")]
    upstream_command += ["--port", str(upstream_port)]
    with serving(upstream_command, f"{upstream_url}/closed", work, "upstream"):
        contenders = [raw_relay(python, upstream_url)]
        contenders += [template_route(name, path, upstream_url) for name, path in bakes.items()]
        if proxy_python:
            contenders.append(litellm_proxy(proxy_python, upstream_url, work))
        results = {
            "workloads": {
                workload.name: {"tokens": workload.tokens, "interval_ms": workload.interval_ms}
                for workload in (PACED, BURST, page_workload)
            },
            "burst_streams": BURST_STREAMS,
            "levels": levels,
            "direct_ttft_ms": asyncio.run(direct_ttft_ms(upstream_url)),
            "contenders": {},
        }
        for contender in contenders:
            print(f"measuring {contender.name}", flush=True)
            results["contenders"][contender.name] = measure(contender, upstream_url, levels, work)
        if project := bakes.get("fastapi"):
            print("measuring the page (fastapi)", flush=True)
            env = bake_env(upstream_url)
            results["page"] = page.measure(
                project, package_of(project), env, page_levels, work, page_workload
            )
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
    python = project / ".venv" / "bin" / "python"
    command = [str(python), "-m", package_of(project), "api", "--port", str(port)]
    return Contender(
        framework,
        command,
        "/api/health",
        "/api/chat",
        "ui",
        bake_env(upstream_url),
        port=port,
        resumable=True,
    )


def package_of(project: Path) -> str:
    return next(path.parent.name for path in project.glob("*/chat.py"))


def bake_env(upstream_url: str) -> dict:
    """A bake's settings for the benchmark: the loopback provider, and no limits per client or
    per address: this is load from one client, which makes every request (each page chat is a
    visitor of its own, and all of them come from 127.0.0.1)."""
    return {
        "OPENAI_API_KEY": "sk-bench",
        "LLM_MODEL": "openai/bench",
        "LLM_API_BASE": upstream_url,
        "RATE_LIMIT": "100000000/minute",
        "MAX_STREAMS_PER_CLIENT": "100000",
        "PAGE_RATE_LIMIT_PER_ADDRESS": "100000000/minute",
        "PAGE_MAX_STREAMS_PER_ADDRESS": "100000",
    }


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
    with serving(
        contender.command, f"{url}{contender.health}", work, contender.name, env
    ) as server:
        cold_start_s = time.monotonic() - started
        client = Client(url, contender)
        asyncio.run(client.warm_up())
        result = {
            "cold_start_s": round(cold_start_s, 2),
            "ttft_ms": asyncio.run(client.ttft_ms(upstream_url)),
            "cancel_ms": asyncio.run(client.cancel_ms(upstream_url)),
        }
        if contender.resumable:
            result["stop_ms"] = asyncio.run(client.stop_ms(upstream_url))
        run = functools.partial(load, client, server.process.pid)
        run(BURST_STREAMS, BURST)  # warm-up
        result["burst"] = run(BURST_STREAMS, BURST)
        run(min(max(levels), 100), PACED)  # warm-up
        result["levels"] = {str(level): run(level, PACED) for level in levels}
        result["peak_rss_mib"] = round(peak_rss_kib(server.process.pid) / 1024)
    result["stop_s"] = server.stop_s
    return result


if __name__ == "__main__":
    main()
