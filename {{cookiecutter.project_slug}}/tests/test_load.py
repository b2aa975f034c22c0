"""Load with chaos: many concurrent streams, half of them resumable, a third of the clients
hanging up mid-answer."""

import asyncio
import uuid

import httpx

from .conftest import RESUME_GRACE_S
from .fake_upstream import SCRIPTS, streamed_text
from .streams import chat_body
from .support import open_files, rss_kib, wait_until_async

STREAMS = 200
MODEL = "openai/fake-load"
# Longer than the grace period: an answer left behind is still generating when it ends.
LEFT_BEHIND_MODEL = "openai/fake-steady"


async def test_hundreds_of_streams_with_clients_leaving_leak_nothing(api_server, upstream):
    pid = api_server.process.pid
    limits = httpx.Limits(max_connections=STREAMS)
    async with httpx.AsyncClient(base_url=api_server.url, timeout=60, limits=limits) as client:
        # A first round of the same load, so that what it allocates for good is there before.
        await load(client, upstream)
        before = open_files(pid), rss_kib(pid)
        first = len(upstream.records)
        texts = await load(client, upstream)
    # The server sees each hang-up a moment later; give its sockets time to close.
    await wait_until_async(lambda: open_files(pid) <= before[0] + 25, "the server's sockets close")
    after = open_files(pid), rss_kib(pid)

    completed = [text for text in texts if text is not None]
    assert len(completed) == STREAMS - len(range(0, STREAMS, 3))
    assert set(completed) == {streamed_text(SCRIPTS["fake-load"].tokens)}  # all, in order
    _, left_behind_name = LEFT_BEHIND_MODEL.split("/", 1)
    left_behind = [r for r in upstream.records[first:] if r.model == left_behind_name]
    assert len(left_behind) == len(range(0, STREAMS, 3))
    assert not any(record.completed for record in left_behind)
    assert after[1] <= before[1] * 1.1, f"RSS {before[1]} KiB -> {after[1]} KiB"
    print(f"open files {before[0]} -> {after[0]}, RSS {before[1]} -> {after[1]} KiB")


async def load(client: httpx.AsyncClient, upstream) -> list[str | None]:
    """`STREAMS` answers at once, every other one resumable, every third left after three
    deltas; returns once the provider has no stream open, kept answers are dropped too."""
    texts = await asyncio.gather(
        *(answer(client, leave_early=i % 3 == 0, resumable=i % 2 == 0) for i in range(STREAMS))
    )
    await wait_until_async(
        lambda: all(record.closed.is_set() for record in upstream.records),
        "the upstream has no open stream once the grace period has passed",
        timeout_s=RESUME_GRACE_S + 10,
    )
    await asyncio.sleep(RESUME_GRACE_S)  # a finished answer is kept that long
    return texts


async def answer(client: httpx.AsyncClient, leave_early: bool, resumable: bool) -> str | None:
    """The streamed text, or None for a client that hangs up after its third delta."""
    body = chat_body(LEFT_BEHIND_MODEL if leave_early else MODEL)
    if resumable:
        body |= {"id": uuid.uuid4().hex, "resumable": True}
    text = []
    async with client.stream("POST", "/api/chat", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if '"text-delta"' in line:
                text.append(line.split('"delta":"', 1)[1].rsplit('"', 1)[0])
                if leave_early and len(text) == 3:
                    return None
    return "".join(text)
