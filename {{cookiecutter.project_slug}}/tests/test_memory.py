"""Resumable answers held at the process's memory limit (`RESUME_MAX_BYTES`): what the chat
core keeps, whichever adapter serves it, so it is measured once, behind an ASGI server. (The
same load grew the Flask bake's process, under its WSGI server, by 62 MB: more than the core
keeps, so what the server holds of the streams counts there too.)"""

import asyncio
import uuid
from collections import Counter

import httpx

from .conftest import running_api
from .streams import Stream, events_in, resumable_body
from .support import rss_kib

# Resumable answers of 2 MB each, streaming for 4 s, asked for at once: twice what the limit
# lets the process hold. One client's load: `running_api` lifts its per-client limits.
HUGE_ANSWERS = 20
MEMORY_LIMIT = 20_000_000


async def test_resumable_answers_are_held_at_the_memory_limit(upstream, tmp_path):
    limits = {"resume_max_bytes": str(MEMORY_LIMIT), "resume_buffer_bytes": "4000000"}
    with running_api(upstream, tmp_path, **limits) as server:
        pid = server.process.pid
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            await huge_answer(client)  # what a first answer allocates for good
            before = rss_kib(pid)
            peak = before
            answers = asyncio.gather(*(huge_answer(client) for _ in range(HUGE_ANSWERS)))
            while not answers.done():
                peak = max(peak, rss_kib(pid))
                await asyncio.wait([answers], timeout=0.05)
            endings = Counter(answers.result())
    print(f"RSS {before} -> {peak} KiB at most; {dict(endings)}")
    # At the limit, the answers growing past it are cut off (and new ones would be refused).
    assert endings["finish"] >= MEMORY_LIMIT // 2_500_000
    assert endings["finish"] < HUGE_ANSWERS
    assert set(endings) <= {"finish", "error", 503}
    grown_bytes = (peak - before) * 1024
    assert grown_bytes < MEMORY_LIMIT * 1.5, f"RSS grew {grown_bytes} bytes"


async def huge_answer(client: httpx.AsyncClient) -> str | int:
    """Ask for a resumable 2 MB answer and read it: how it ended, or the refusal's status."""
    body = resumable_body("openai/fake-huge-slow", uuid.uuid4().hex)
    async with client.stream("POST", "/api/chat", json=body) as response:
        if response.status_code != 200:
            return response.status_code
        sent = await response.aread()
    stream = Stream()
    for kind, chunk in events_in(sent.decode().splitlines()):
        stream.add(kind, chunk)
    return stream.chunks[-1]["type"]
