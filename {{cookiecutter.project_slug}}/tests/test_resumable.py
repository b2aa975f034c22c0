"""Resumable answers through a real server and real LiteLLM: a dropped answer is replayed whole
and followed live, `DELETE` stops it at once. (An answer nobody comes back for:
`test_ai_sdk.py`; the page's own, in process: `test_ui_state.py`.)

What the answers keep, and for how long, is checked in-process in `unit/test_resumable.py`.
"""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

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
