"""Load with chaos: many concurrent streams, a third of the clients hanging up mid-answer."""

import asyncio

import httpx

from .fake_upstream import SCRIPTS, streamed_text
from .streams import chat_body
from .support import open_files, rss_kib, wait_until_async

STREAMS = 200
MODEL = "openai/fake-load"


async def test_hundreds_of_streams_with_clients_leaving_leak_nothing(api_server, upstream):
    pid = api_server.process.pid
    limits = httpx.Limits(max_connections=STREAMS)
    async with httpx.AsyncClient(base_url=api_server.url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(answer(client, leave_early=False) for _ in range(20)))  # warm-up
        before = open_files(pid), rss_kib(pid)
        texts = await asyncio.gather(
            *(answer(client, leave_early=i % 3 == 0) for i in range(STREAMS))
        )
    await wait_until_async(
        lambda: all(record.closed.is_set() for record in upstream.records),
        "the upstream has no open stream",
    )
    # The server sees each hang-up a moment later; give its sockets time to close.
    await wait_until_async(lambda: open_files(pid) <= before[0] + 25, "the server's sockets close")
    after = open_files(pid), rss_kib(pid)

    completed = [text for text in texts if text is not None]
    assert len(completed) == STREAMS - len(range(0, STREAMS, 3))
    assert set(completed) == {streamed_text(SCRIPTS["fake-load"].tokens)}  # all, in order
    assert after[1] <= before[1] * 1.5, f"RSS {before[1]} KiB -> {after[1]} KiB"
    print(f"open files {before[0]} -> {after[0]}, RSS {before[1]} -> {after[1]} KiB")


async def answer(client: httpx.AsyncClient, leave_early: bool) -> str | None:
    """The streamed text, or None for a client that hangs up after its third delta."""
    text = []
    async with client.stream("POST", "/api/chat", json=chat_body(MODEL)) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if '"text-delta"' in line:
                text.append(line.split('"delta":"', 1)[1].rsplit('"', 1)[0])
                if leave_early and len(text) == 3:
                    return None
    return "".join(text)
