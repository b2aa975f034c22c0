"""The streaming contract of `POST /api/chat`, through a real server and real LiteLLM, against
a fake upstream in each provider family's own wire format."""

import signal
import time

import httpx
import pytest

from .conftest import FAMILIES, running_api
from .fake_upstream import SCRIPTS, reasoning_text, streamed_text
from .streams import assert_parts_well_formed, chat_body, read_events, read_stream

family = pytest.mark.parametrize("family", FAMILIES)


def stream_of(api: str, model: str):
    with httpx.stream("POST", f"{api}/api/chat", json=chat_body(model)) as response:
        assert response.status_code == 200
        return read_stream(response)


@family
def test_answer_streams_as_ui_message_chunks(api, family):
    stream = stream_of(api, f"{family}/fake-fast")

    tokens = SCRIPTS["fake-fast"].tokens
    assert stream.chunks[0]["type"] == "start"
    assert stream.text == streamed_text(tokens)
    assert_parts_well_formed(stream)
    assert stream.chunks[-1]["type"] == "finish"
    metadata = stream.chunks[-1]["messageMetadata"]
    assert metadata["model"] == f"{family}/fake-fast"
    assert metadata["finishReason"] == "stop"
    assert metadata["usage"] == {"inputTokens": 7, "outputTokens": tokens}
    assert metadata["ttftMs"] <= metadata["durationMs"]
    assert stream.done


@family
def test_reasoning_streams_as_its_own_part_before_the_text(api, family):
    stream = stream_of(api, f"{family}/fake-think")

    script = SCRIPTS["fake-think"]
    reasoning = "".join(chunk["delta"] for chunk in stream.of_type("reasoning-delta"))
    assert reasoning == reasoning_text(script.reasoning)
    assert stream.text == streamed_text(script.tokens)
    assert_parts_well_formed(stream)
    kinds = [chunk["type"] for chunk in stream.chunks]
    assert kinds.index("reasoning-end") < kinds.index("text-start")


def test_headers_are_those_of_the_ai_sdk_and_never_compressed(api):
    body = chat_body("openai/fake-fast")
    headers = {"Accept-Encoding": "gzip, br"}
    with httpx.stream("POST", f"{api}/api/chat", json=body, headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert "content-encoding" not in response.headers
        response.read()


@family
def test_first_delta_arrives_while_upstream_is_still_generating(api, upstream, family):
    body = chat_body(f"{family}/fake-slow")
    with httpx.stream("POST", f"{api}/api/chat", json=body) as response:
        for kind, chunk in read_events(response):
            if kind == "chunk" and chunk["type"] == "text-delta":
                sent_at_first_delta = upstream.last("fake-slow", family).sent
                break
    # Each chunk is flushed as it exists: the client sees token 1 long before token 40 exists.
    assert sent_at_first_delta < SCRIPTS["fake-slow"].tokens / 2


@family
def test_client_disconnect_closes_the_upstream_connection(api, upstream, family):
    body = chat_body(f"{family}/fake-slow")
    with httpx.stream("POST", f"{api}/api/chat", json=body) as response:
        for kind, chunk in read_events(response):
            if kind == "chunk" and chunk["type"] == "text-delta":
                break
        hung_up_at = time.monotonic()
    record = upstream.last("fake-slow", family)

    assert record.closed.wait(timeout=5), "the upstream connection was never closed"
    assert not record.completed
    assert record.sent < SCRIPTS["fake-slow"].tokens
    assert record.closed_at - hung_up_at < 1.0


@family
def test_failure_after_tokens_keeps_them_and_ends_with_an_error_chunk(api, family):
    stream = stream_of(api, f"{family}/fake-fail-mid")

    assert stream.text == streamed_text(SCRIPTS["fake-fail-mid"].fail_after)
    assert_parts_well_formed(stream)
    assert stream.chunks[-1]["type"] == "error"
    assert "upstream exploded" not in stream.chunks[-1]["errorText"]  # no raw upstream body
    assert not stream.of_type("finish")
    assert stream.done


def test_heartbeat_comments_keep_a_silent_stream_alive(api):
    body = chat_body("openai/fake-silent")
    with httpx.stream("POST", f"{api}/api/chat", json=body) as response:
        events = list(read_events(response))

    first_chunk = next(
        i
        for i, (kind, chunk) in enumerate(events)
        if kind == "chunk" and chunk["type"] == "text-delta"
    )
    # 1.5 s of upstream silence with SSE_HEARTBEAT_S=0.5 in the test server.
    assert [kind for kind, _ in events[:first_chunk]].count("ping") >= 2


def test_shutdown_ends_open_streams_with_abort(upstream, tmp_path):
    with running_api(upstream, tmp_path) as (base_url, process):
        body = chat_body("openai/fake-slow")
        with httpx.stream("POST", f"{base_url}/api/chat", json=body) as response:
            events = read_events(response)
            next(e for e in events if e[0] == "chunk" and e[1]["type"] == "text-delta")
            process.send_signal(signal.SIGTERM)
            rest = list(events)
        exit_code = process.wait(timeout=15)

    chunks = [chunk["type"] for kind, chunk in rest if kind == "chunk"]
    assert chunks[-2:] == ["text-end", "abort"]
    assert rest[-1] == ("done", None)
    assert exit_code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert not upstream.last("fake-slow").completed
