"""The embedded model through a bake's own API: how often simple questions come back right, and
how fast 1, 4 and 8 concurrent answers stream.

    uv run python -m bench.local_model PROJECT [--tries 10]

PROJECT is a default (`llm_provider=local`) bake with its virtualenv (`uv sync` run in it). The
script starts its `python -m <package> api` on a loopback port and asks, through `/api/chat`:

- each of QUESTIONS `--tries` times; an answer is right when it contains the expected word and
  no French, German, Spanish or Italian function word (the garbled answers this model gives);
- 1, 4, then 8 concurrent long answers (CONCURRENCY), each read for ANSWER_TOKENS tokens: time
  to first token and tokens per second, per stream and together. The app generates four at
  once (llama.cpp's parallel slots); the others wait for a slot.

Results go to bench/results/local_model.json.
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support import free_port, running, serves, wait_until

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
MODEL = "local/smollm2-135m-instruct"
QUESTIONS = {
    "What is the capital of France?": "Paris",
    "What is the capital of Germany?": "Berlin",
    "What is the capital of Italy?": "Rome",
    "What is the capital of Spain?": "Madrid",
    "What is the capital of Japan?": "Tokyo",
    "Who wrote Romeo and Juliet?": "Shakespeare",
    "What is the largest planet in the solar system?": "Jupiter",
    "How many days are in a week?": "seven|7",
    "What color is the sky on a clear day?": "blue",
    "What is 2 + 2?": r"\b4\b|four",
    "Which ocean is the largest?": "Pacific",
    "What language is spoken in Brazil?": "Portuguese",
}
FOREIGN_WORDS = re.compile(r"\b(le|la|les|des|est|une|du|der|die|das|und|ist|il|el|los)\b", re.I)
LONG_ANSWER = "Write a long story about a river, with at least ten paragraphs."
ANSWER_TOKENS = 200
CONCURRENCY = (1, 4, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--out", type=Path, default=TEMPLATE_DIR / "bench" / "results")
    options = parser.parse_args()

    with running_api(options.project) as api:
        results = asyncio.run(measure(api, options.tries))
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "local_model.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


async def measure(api: str, tries: int) -> dict:
    async with httpx.AsyncClient(base_url=api, timeout=120) as client:
        await stream(client, "Hello", tokens=5)  # loads the model
        answers = {}
        for question, expected in QUESTIONS.items():
            texts = [await stream(client, question) for _ in range(tries)]
            english = [not FOREIGN_WORDS.search(text) for text in texts]
            right = [
                in_english and bool(re.search(expected, text, re.I))
                for in_english, text in zip(english, texts, strict=True)
            ]
            answers[question] = {
                "right": sum(right),
                "english": sum(english),
                "tries": tries,
                "misses": [text[:100] for text, ok in zip(texts, right, strict=True) if not ok][:3],
            }
        load = {f"{streams}_at_once": await throughput(client, streams) for streams in CONCURRENCY}
    return {"answers": answers, **load}


async def throughput(client: httpx.AsyncClient, streams: int) -> dict:
    started = time.monotonic()
    timings = await asyncio.gather(*(timed_stream(client, started) for _ in range(streams)))
    elapsed = max(last for _, last in timings)
    return {
        "ttft_ms": [round(first * 1000) for first, _ in timings],
        "tokens_per_s_each": round(statistics.mean(ANSWER_TOKENS / last for _, last in timings)),
        "tokens_per_s_together": round(streams * ANSWER_TOKENS / elapsed),
    }


async def timed_stream(client: httpx.AsyncClient, started: float) -> tuple[float, float]:
    """Seconds from `started` to the first and to the ANSWER_TOKENS-th token."""
    arrivals = []
    body = {"model": MODEL, "messages": [{"role": "user", "content": LONG_ANSWER}]}
    async with client.stream("POST", "/api/chat", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if '"type":"text-delta"' in line:
                arrivals.append(time.monotonic() - started)
                if len(arrivals) == ANSWER_TOKENS:
                    break
    return arrivals[0], arrivals[-1]


async def stream(client: httpx.AsyncClient, question: str, tokens: int = 0) -> str:
    """The answer's text (its first `tokens` deltas, if given)."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": question}]}
    deltas = []
    async with client.stream("POST", "/api/chat", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if '"type":"text-delta"' in line:
                deltas.append(json.loads(line.removeprefix("data: "))["delta"])
                if len(deltas) == tokens:
                    break
    return "".join(deltas)


@contextmanager
def running_api(project: Path) -> Iterator[str]:
    """`python -m <package> api` of the bake, on a free loopback port; yields its URL once
    LiteLLM has loaded, stops it at the end."""
    project = project.resolve()
    package = tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"]
    port = free_port()
    command = [str(project / ".venv" / "bin" / "python"), "-m", package.replace("-", "_")]
    command += ["api", "--host", "127.0.0.1", "--port", str(port)]
    # One client here stands for as many visitors: the per-client limits must not count it.
    limits = {"RATE_LIMIT": "100000/minute", "MAX_STREAMS_PER_CLIENT": "100"}
    env = {**os.environ, "LLM_MODEL": MODEL, **limits}
    url = f"http://127.0.0.1:{port}"
    work = TEMPLATE_DIR / "bench" / ".work"
    work.mkdir(parents=True, exist_ok=True)
    with running(command, project, work / "local-model-api.log", env) as api:
        health, loaded = f"{url}/api/health", lambda r: r.json()["llm"] == "ready"
        wait_until(lambda: serves(health, loaded), "the API has loaded LiteLLM", 120, api.process)
        yield url


if __name__ == "__main__":
    main()
