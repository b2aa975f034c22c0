"""The streaming contract of `POST /api/chat`, through a real server and real LiteLLM, against
a fake upstream in each provider family's own wire format."""

import asyncio
import itertools
import json
import re
import signal
import subprocess
import time

import httpx
import pytest

from .conftest import FAMILIES, PROJECT_DIR, running_api
from .fake_upstream import SCRIPTS, reasoning_text, streamed_text
from .streams import assert_parts_well_formed, chat_body, post_chat, read_events

family = pytest.mark.parametrize("family", FAMILIES)


@family
def test_answer_streams_as_ui_message_chunks(api, family):
    stream = post_chat(api, f"{family}/fake-fast")

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


def test_the_readme_shows_the_chunks_of_a_real_answer_in_their_order(api):
    """The sample stream in README.md's API section, one delta standing for all of them."""
    readme = (PROJECT_DIR / "README.md").read_text()
    [sample] = re.findall(r"```\n(data: .*?)```", readme, re.DOTALL)
    shown = re.findall(r'^data: \{"type":"([\w-]+)"', sample, re.MULTILINE)
    stream = post_chat(api, "openai/fake-fast")
    assert shown == [kind for kind, _ in itertools.groupby(stream.types)]
    assert sample.rstrip().endswith("data: [DONE]") and stream.done


@family
def test_reasoning_streams_as_its_own_part_before_the_text(api, family):
    stream = post_chat(api, f"{family}/fake-think")

    script = SCRIPTS["fake-think"]
    reasoning = "".join(chunk["delta"] for chunk in stream.of_type("reasoning-delta"))
    assert reasoning == reasoning_text(script.reasoning)
    assert stream.text == streamed_text(script.tokens)
    assert_parts_well_formed(stream)
    kinds = [chunk["type"] for chunk in stream.chunks]
    assert kinds.index("reasoning-end") < kinds.index("text-start")


@family
def test_a_tool_call_and_the_answer_after_it_stream_through_the_route(api, family):
    stream = post_chat(api, f"{family}/fake-tool")

    assert stream.types[:3] == ["start", "start-step", "tool-input-start"]
    assert stream.of_type("tool-input-available")[0]["input"] == {"expression": "6*7"}
    assert stream.of_type("tool-output-available")[0]["output"] == 42
    assert "42" in stream.text
    assert stream.types[-1] == "finish"
    assert stream.done


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
    stream = post_chat(api, f"{family}/fake-fail-mid")

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


async def test_shutdown_ends_every_open_stream_with_abort(upstream, tmp_path):
    """SIGTERM with 50 answers streaming: each ends with `abort` and `[DONE]`, then it exits."""
    with running_api(upstream, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            started = asyncio.Semaphore(0)
            streams = [asyncio.create_task(_read_until_end(client, started)) for _ in range(50)]
            for _ in streams:
                await started.acquire()
            server.process.send_signal(signal.SIGTERM)
            signalled_at = time.monotonic()
            endings = await asyncio.gather(*streams)
            ended_in_s = time.monotonic() - signalled_at
        try:  # within the 30 s an orchestrator (Kubernetes, Docker) waits before SIGKILL
            exit_code = await asyncio.to_thread(server.process.wait, 30)
        except subprocess.TimeoutExpired:
            log = server.log.read_text()[-3000:]
            raise AssertionError(f"still running 30 s after SIGTERM; its log:\n{log}") from None

    assert endings == [["text-end", "abort", "[DONE]"]] * 50
    assert ended_in_s < 5  # the server's grace period
    assert exit_code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert not any(r.completed for r in upstream.records if r.model == "fake-long")


async def _read_until_end(client: httpx.AsyncClient, started: asyncio.Semaphore) -> list[str]:
    """The last three events of a fake-long answer; `started` is released at its first delta."""
    kinds = []
    async with client.stream("POST", "/api/chat", json=chat_body("openai/fake-long")) as response:
        async for line in response.aiter_lines():
            if line == "data: [DONE]":
                kinds.append("[DONE]")
            elif line.startswith("data: "):
                kinds.append(json.loads(line.removeprefix("data: "))["type"])
                if kinds[-1] == "text-delta" and kinds.count("text-delta") == 1:
                    started.release()
    return kinds[-3:]
