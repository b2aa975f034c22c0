"""Resumable answers through a real server and real LiteLLM: a dropped answer is replayed whole
and followed live, `DELETE` stops it at once; the page's own client re-attaches when its
connection drops. (An answer nobody comes back for: `test_ai_sdk.py`.)

What the answers keep, and for how long, is checked in-process in `unit/test_resumable.py`.
"""

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import httpx

from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}_ui.client import stream_answer

from .fake_upstream import SCRIPTS, streamed_text
from .streams import Stream, read_events, reattach, resumable_body, start_and_drop


def new_chat_id() -> str:
    return uuid.uuid4().hex


def test_a_dropped_answer_is_replayed_from_the_start_then_followed_live(api, upstream):
    chat_id = new_chat_id()
    before = start_and_drop(api, "openai/fake-slow", chat_id, deltas=3)
    again = reattach(api, chat_id)

    record = upstream.last("fake-slow")
    assert record.completed, "the answer stopped when its client dropped"
    assert again.text == streamed_text(SCRIPTS["fake-slow"].tokens)
    assert again.chunks[: len(before.chunks)] == before.chunks
    assert again.types.count("start") == 1
    assert again.types[-1] == "finish"
    assert again.done


def test_delete_stops_the_answer_at_once_and_ends_every_stream_with_abort(api, upstream):
    chat_id = new_chat_id()
    body = resumable_body("openai/fake-long", chat_id)
    seen: list[dict] = []
    with (
        ThreadPoolExecutor(2) as pool,
        httpx.stream("POST", f"{api}/api/chat", json=body, timeout=30) as response,
    ):
        assert response.status_code == 200
        first = pool.submit(lambda: _rest_of(response))
        second = pool.submit(reattach, api, chat_id, seen)
        while not any(chunk["type"] == "text-delta" for chunk in list(seen)):
            assert not second.done(), second.result()
            time.sleep(0.02)
        stop = httpx.delete(f"{api}/api/chat/{chat_id}/stream")
        stopped_at = time.monotonic()
        endings = [first.result(timeout=10).types[-2:], second.result(timeout=10).types[-2:]]

    assert stop.status_code == 204
    record = upstream.last("fake-long")
    assert record.closed.wait(timeout=5)
    assert record.closed_at - stopped_at < 1.0
    assert not record.completed
    assert endings == [["text-end", "abort"]] * 2
    again = httpx.delete(f"{api}/api/chat/{chat_id}/stream")
    assert (again.status_code, again.json()["error"]["type"]) == (404, "no_active_answer")


def _rest_of(response: httpx.Response) -> Stream:
    stream = Stream()
    for kind, chunk in read_events(response):
        stream.add(kind, chunk)
    assert stream.done
    return stream


def test_a_chat_without_an_active_answer_has_nothing_to_resume(api):
    response = httpx.get(f"{api}/api/chat/{new_chat_id()}/stream")
    assert (response.status_code, response.content) == (204, b"")


async def test_the_pages_client_reattaches_a_lost_connection_and_misses_nothing(api, upstream):
    async with cutting_relay(api, cut_after_bytes=1500) as relay:
        settings = Settings(api_url=relay, redis_url=None)
        turns = [{"role": "user", "content": "Hello?"}]
        answer = stream_answer(settings, turns, "openai/fake-slow", new_chat_id())
        items = [item async for item in answer]

    *deltas, metadata = items
    assert "".join(deltas) == streamed_text(SCRIPTS["fake-slow"].tokens)
    assert metadata["usage"]["outputTokens"] == SCRIPTS["fake-slow"].tokens
    assert upstream.last("fake-slow").completed


@asynccontextmanager
async def cutting_relay(api: str, cut_after_bytes: int):
    """A TCP relay to `api` that cuts its first connection once it has relayed that many bytes
    of the answer, as a network that drops; the others pass whole. Yields its URL."""
    target = httpx.URL(api)
    connections = 0

    async def relay(client_reader, client_writer) -> None:
        nonlocal connections
        connections += 1
        limit = cut_after_bytes if connections == 1 else None
        server_reader, server_writer = await asyncio.open_connection(target.host, target.port)
        pipes = [
            asyncio.create_task(pipe(client_reader, server_writer)),
            asyncio.create_task(pipe(server_reader, client_writer, limit)),
        ]
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for task in pipes:
            task.cancel()
        for writer in (client_writer, server_writer):
            writer.transport.abort()

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


async def pipe(reader, writer, limit: int | None = None) -> None:
    relayed = 0
    while data := await reader.read(256):
        writer.write(data)
        await writer.drain()
        relayed += len(data)
        if limit is not None and relayed >= limit:
            return
