"""The embedded model for real: SmolLM2 on llama.cpp inside the API process, through LiteLLM."""

import asyncio
import re
import time

import httpx
import pytest

from .conftest import BAKED_MODEL, running_api
from .streams import assert_parts_well_formed, chat_body, post_chat, read_events, read_stream
from .support import cpu_seconds, wait_until_async

LONG_ANSWER = "Write a long story about a river, with at least ten paragraphs."
FRENCH_WORDS = re.compile(r"\b(le|la|les|des|est|une|du|de la)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def api_server(upstream, tmp_path_factory):
    """An API of its own with the embedded model as its default, so that the model loads at
    start-up, and the silence a real model may need on a busy 2-core machine (the suite's
    3 s are for the fake provider)."""
    cwd = tmp_path_factory.mktemp("local-model")
    with running_api(upstream, cwd, llm_model=BAKED_MODEL, llm_timeout_s="60") as server:
        yield server


@pytest.fixture(scope="module")
def api(api_server):
    return api_server.url


def test_streams_a_real_answer_with_usage(api):
    body = chat_body(BAKED_MODEL, "Name three rivers.")
    with httpx.stream("POST", f"{api}/api/chat", json=body, timeout=60) as response:
        assert response.status_code == 200
        stream = read_stream(response)

    assert stream.text.strip()
    assert_parts_well_formed(stream)
    metadata = stream.chunks[-1]["messageMetadata"]
    assert metadata["model"] == BAKED_MODEL
    assert metadata["usage"]["inputTokens"] > 0
    # A delta is a token, or a few when llama.cpp holds back an incomplete UTF-8 character.
    assert 0 < len(stream.of_type("text-delta")) <= metadata["usage"]["outputTokens"]


def test_answers_a_simple_question_in_english(api):
    """The demo question, ten times, with the default system prompt and sampling."""
    answers = [
        post_chat(api, BAKED_MODEL, "What is the capital of France?").text for _ in range(10)
    ]
    right = [a for a in answers if "Paris" in a and not FRENCH_WORDS.search(a)]
    assert len(right) >= 9, answers


def test_tokens_arrive_while_the_model_is_generating(api):
    body = chat_body(BAKED_MODEL, LONG_ANSWER)
    started, arrivals = time.monotonic(), []
    with httpx.stream("POST", f"{api}/api/chat", json=body, timeout=60) as response:
        for kind, chunk in read_events(response):
            if kind == "chunk" and chunk["type"] == "text-delta":
                arrivals.append(time.monotonic() - started)
            if len(arrivals) == 40:
                break
    assert len(arrivals) == 40
    assert arrivals[0] < arrivals[-1] / 2


async def test_four_chats_stream_at_once_and_stopping_one_leaves_the_others(api):
    """The model has four slots: nobody waits for another's answer to finish."""
    deltas = [0] * 4
    hang_up = [asyncio.Event() for _ in range(4)]

    async def chat(client: httpx.AsyncClient, index: int) -> None:
        body = chat_body(BAKED_MODEL, LONG_ANSWER)
        async with client.stream("POST", f"{api}/api/chat", json=body) as response:
            async for line in response.aiter_lines():
                deltas[index] += '"type":"text-delta"' in line
                if hang_up[index].is_set():
                    return

    async with httpx.AsyncClient(timeout=60) as client:
        chats = [asyncio.create_task(chat(client, index)) for index in range(4)]
        try:
            await wait_until_async(lambda: min(deltas) >= 5, "every chat streams", 60)
            assert not any(task.done() for task in chats), "an answer ended before all had begun"

            hang_up[0].set()
            await chats[0]
            before = deltas.copy()
            await wait_until_async(
                lambda: all(deltas[i] >= before[i] + 10 for i in (1, 2, 3)),
                "the other three go on",
                60,
            )
        finally:
            for event in hang_up:
                event.set()
            await asyncio.gather(*chats, return_exceptions=True)


def test_disconnect_stops_generation(api_server):
    """Generation burns a CPU core; once the client hangs up the server goes quiet."""
    pid = api_server.process.pid
    body = chat_body(BAKED_MODEL, LONG_ANSWER)
    with httpx.stream("POST", f"{api_server.url}/api/chat", json=body, timeout=60) as response:
        events = read_events(response)
        next(e for e in events if e[0] == "chunk" and e[1]["type"] == "text-delta")
        busy = cpu_seconds_over(pid, 1.0)
    time.sleep(0.5)  # the worker thread stops at its next token
    idle = cpu_seconds_over(pid, 1.0)

    assert busy > 0.5, f"the model was not generating ({busy:.2f} s of CPU in 1 s)"
    assert idle < 0.2, f"generation went on after the disconnect ({idle:.2f} s of CPU in 1 s)"


def cpu_seconds_over(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - before
