"""The one client every contender is measured with: it POSTs streams and notes when each token
arrives; and the figures made of those arrivals."""

import asyncio
import json
import statistics
import time
import uuid
from dataclasses import dataclass, field
from itertools import pairwise

import httpx

from tests.support import cpu_seconds

STALL_S = 1.0


@dataclass(frozen=True)
class Workload:
    """Streams of `tokens` tokens, one every `interval_ms` from the provider."""

    name: str
    tokens: int
    interval_ms: int


# A model's pace, at 1 to 500 streams at once; and a fast model's, 20 streams at once, where
# the per-token work dominates everything else.
PACED = Workload("paced", tokens=50, interval_ms=50)
BURST = Workload("burst", tokens=300, interval_ms=2)
BURST_STREAMS = 20


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
    resumable: bool = False  # has the template's resumable answers


def summarize(
    streams: list[list[float]], workload: Workload, wall_s: float, cpu_s: float, errors: list[str]
) -> dict:
    tokens = sum(len(arrivals) for arrivals in streams)
    gaps = [gap for arrivals in streams for gap in gaps_of(arrivals)]
    return {
        "streams": len(streams),
        "complete": sum(len(arrivals) == workload.tokens for arrivals in streams),
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
        self.errors: list[str] = []  # refused requests (status, start of the body), broken streams

    def request(self, tokens: int, interval_ms: int, resumable: bool = False) -> tuple[str, dict]:
        self.count += 1
        stream_id = f"{self.contender.name.replace(' ', '-')}-{self.count}"
        body = {"messages": [{"role": "user", "content": f"{stream_id} {tokens} {interval_ms}"}]}
        if self.contender.wire == "openai":
            body |= {"model": "bench", "stream": True}
        if resumable:
            body |= {"id": uuid.uuid4().hex, "resumable": True}
        return stream_id, body

    async def stream(
        self, http: httpx.AsyncClient, tokens: int, interval_ms: int, stop_after: int | None = None
    ) -> tuple[str, float, list[float]]:
        """Stream one answer; (its id, when it was sent, when each token arrived). With
        `stop_after`, hang up after that many tokens; the last entry is then the hang-up."""
        stream_id, body = self.request(tokens, interval_ms)
        sent = time.monotonic()
        arrivals: list[float] = []
        try:
            async with http.stream(
                "POST", self.contender.chat, json=body, headers=self.contender.headers
            ) as response:
                if response.status_code != 200:
                    error = f"{response.status_code} {(await response.aread())[:200]!r}"
                    self.errors.append(error)
                    return stream_id, sent, arrivals
                async for line in response.aiter_lines():
                    if is_token(line, self.contender.wire):
                        arrivals.append(time.monotonic())
                        if len(arrivals) == stop_after:
                            break
        except httpx.HTTPError as exc:  # the server refused the connection or broke it off
            self.errors.append(f"broken after {len(arrivals)} tokens: {exc!r}"[:200])
            return stream_id, sent, arrivals
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

    async def ttft_ms(self, upstream_url: str, requests: int = 20) -> dict:
        """Time to first token (median, ms), and its two sides as the provider saw them: until
        the request arrived there, and from the provider's first token to this client."""
        ttfts, before, after = [], [], []
        async with self.http() as http:
            for _ in range(requests):
                stream_id, sent, arrivals = await self.stream(http, 3, 1)
                provider = (await wait_for_closes(upstream_url, {stream_id})).get(stream_id)
                if arrivals and provider:  # otherwise an error, in `errors`
                    ttfts.append(arrivals[0] - sent)
                    before.append(provider["arrived"] - sent)
                    after.append(arrivals[0] - provider["first_token"])
        return {
            name: round(statistics.median(values) * 1000, 2)
            for name, values in (("p50", ttfts), ("to_provider", before), ("after_provider", after))
        }

    async def cancel_ms(self, upstream_url: str, requests: int = 20) -> dict:
        hung_up = {}
        async with self.http() as http:
            for _ in range(requests):
                stream_id, _, arrivals = await self.stream(http, 1000, 10, stop_after=3)
                if arrivals:  # otherwise an error, in `errors`
                    hung_up[stream_id] = arrivals[-1]
        closed = await wait_for_closes(upstream_url, set(hung_up))
        return {
            **close_delays_ms(closed, hung_up),
            "finished_anyway": sum(closed[sid]["finished"] for sid in hung_up if sid in closed),
        }

    async def stop_ms(self, upstream_url: str, requests: int = 50) -> dict:
        """`DELETE /api/chat/{id}/stream` on a resumable answer with a second client attached:
        until the provider sees its connection close (p50, p99), and whether both clients got
        `abort`."""
        stopped, endings = {}, []
        async with self.http() as http:
            for _ in range(requests):
                stream_id, body = self.request(1000, 10, resumable=True)
                path = f"{self.contender.chat}/{body['id']}/stream"
                async with http.stream("POST", self.contender.chat, json=body) as response:
                    lines = response.aiter_lines()
                    async for line in lines:
                        if is_token(line, "ui"):
                            break
                    attached = asyncio.create_task(last_chunk_type(http, path))
                    await asyncio.sleep(0.05)  # attached and following
                    stopped[stream_id] = time.monotonic()
                    await http.delete(path)
                    endings += [await last_chunk_type_of(lines), await attached]
        closed = await wait_for_closes(upstream_url, set(stopped))
        return {
            **close_delays_ms(closed, stopped),
            "clients_without_abort": sum(ending != "abort" for ending in endings),
        }

    async def concurrent(self, level: int, workload: Workload) -> tuple[list[list[float]], float]:
        async with self.http() as http:
            started = time.monotonic()
            streams = await asyncio.gather(
                *(self.stream(http, workload.tokens, workload.interval_ms) for _ in range(level))
            )
            return [arrivals for _, _, arrivals in streams], time.monotonic() - started


def load(client: Client, pid: int, streams: int, workload: Workload) -> dict:
    """`streams` streams of `workload` at once, summarized with the server's CPU time."""
    client.errors.clear()
    cpu_before = cpu_seconds(pid)
    arrivals, wall_s = asyncio.run(client.concurrent(streams, workload))
    cpu_s = cpu_seconds(pid) - cpu_before
    return summarize(arrivals, workload, wall_s, cpu_s, client.errors)


async def last_chunk_type(http: httpx.AsyncClient, path: str) -> str | None:
    async with http.stream("GET", path) as response:
        return await last_chunk_type_of(response.aiter_lines())


async def last_chunk_type_of(lines) -> str | None:
    """The type of the last chunk before `[DONE]`."""
    last = None
    async for line in lines:
        if line.startswith("data: {"):
            last = json.loads(line[6:])["type"]
    return last


def is_token(line: str, wire: str) -> bool:
    if wire == "ui":
        return line.startswith('data: {"type":"text-delta"')
    if not line.startswith("data: {"):
        return False
    choices = json.loads(line[6:]).get("choices") or [{}]
    return bool(choices[0].get("delta", {}).get("content"))


async def direct_ttft_ms(upstream_url: str, requests: int = 20) -> dict:
    """The provider's own time to first token, for the contenders' added latency."""
    direct = Contender("direct", [], "", "/v1/chat/completions", "openai")
    return await Client(upstream_url, direct).ttft_ms(upstream_url, requests)


async def wait_for_closes(upstream_url: str, ids: set[str], timeout_s: float = 10) -> dict:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as http:
        while True:
            closed = (await http.get(f"{upstream_url}/closed")).json()
            if ids <= closed.keys() or time.monotonic() > deadline:
                return closed
            await asyncio.sleep(0.1)


def close_delays_ms(closed: dict, since: dict[str, float]) -> dict:
    """How long after `since[stream id]` the provider saw each stream close: p50, p99 (ms)."""
    delays = [closed[sid]["at"] - at for sid, at in since.items() if sid in closed]
    return {
        "p50": round(percentile(delays, 50) * 1000, 1) if delays else None,
        "p99": round(percentile(delays, 99) * 1000, 1) if delays else None,
        "never_closed": len(since) - len(delays),
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
