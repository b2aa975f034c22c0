"""The chat core: a model's events in, UI message chunks out, and every way an answer ends."""

import asyncio
import gc
import json
import logging

import pytest

from {{ cookiecutter.package_name }} import chat, llm, telemetry
from {{ cookiecutter.package_name }}.access import Caller
from {{ cookiecutter.package_name }}.chat import AccessRecord, _check_request, _ui_message_stream
from {{ cookiecutter.package_name }}.errors import ApiError
from {{ cookiecutter.package_name }}.llm import Finish, ReasoningDelta, TextDelta
from {{ cookiecutter.package_name }}.protocol import ChatRequest, UIMessageStream, sse_frames
from {{ cookiecutter.package_name }}.resumable import Halt
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.shutdown import ShutdownNotice

END = object()


class FakeStream:
    """An open completion that yields what the test puts in (raising exceptions), and records
    whether it was closed, as `llm.CompletionStream` must be."""

    path = "provider"

    def __init__(self, *events):
        self.events: asyncio.Queue = asyncio.Queue()
        for event in events:
            self.put(event)
        self.closed = False

    def put(self, event) -> None:
        self.events.put_nowait(event)

    def __aiter__(self):
        return self._read()

    async def _read(self):
        while (event := await self.events.get()) is not END:
            if isinstance(event, Exception):
                raise event
            yield event

    async def aclose(self) -> None:
        self.closed = True


class Answer:
    """`_ui_message_stream` over a fake stream, as the HTTP routes send it, with what it
    releases and logs."""

    def __init__(self, stream: FakeStream, **settings):
        self.stream = stream
        self.released = 0
        self.record = AccessRecord(client="10.0.0.1", model="openai/fake")
        self.halt = asyncio.get_running_loop().create_future()
        self.chunks = sse_frames(
            _ui_message_stream(
                stream,
                self.record,
                telemetry.off().answer({"gen_ai.request.model": "fake"}, None, []),
                Settings(redis_url=None, **settings),
                self._release,
                self.halt,
                UIMessageStream("msg-1"),
            )
        )

    def _release(self) -> None:
        self.released += 1

    async def read(self, count: int | None = None) -> list:
        """The next `count` frames (all, if None), decoded: chunk dicts, "ping" or "[DONE]"."""
        frames = []
        while count is None or len(frames) < count:
            try:
                frame = (await anext(self.chunks)).decode()
            except StopAsyncIteration:
                break
            for event in filter(None, frame.split("\n\n")):
                frames.append(_decode(event))
        return frames

    def assert_closed(self, outcome: str) -> None:
        assert self.stream.closed, "the provider connection was left open"
        assert self.released == 1, "the caller's stream slot was not given back exactly once"
        assert self.record.outcome == outcome


def _decode(event: str):
    if event == ": ping":
        return "ping"
    data = event.removeprefix("data: ")
    return data if data == "[DONE]" else json.loads(data)


def types(frames: list) -> list:
    return [frame["type"] if isinstance(frame, dict) else frame for frame in frames]


async def test_an_answer_is_its_parts_then_finish_with_usage_then_done():
    answer = Answer(
        FakeStream(
            ReasoningDelta("Hm."), TextDelta("Hel"), TextDelta("lo"), Finish("stop", 7, 2), END
        )
    )
    frames = await answer.read()
    assert types(frames) == [
        "start",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "finish",
        "[DONE]",
    ]
    metadata = frames[-2]["messageMetadata"]
    assert metadata["model"] == "openai/fake"
    assert metadata["finishReason"] == "stop"
    assert metadata["usage"] == {"inputTokens": 7, "outputTokens": 2}
    assert 0 <= metadata["ttftMs"] <= metadata["durationMs"]
    answer.assert_closed("completed")
    assert answer.stream.path == answer.record.stream_path


async def test_the_access_log_has_one_line_per_answer_without_its_text(caplog):
    answer = Answer(FakeStream(TextDelta("secret answer"), Finish("stop", 7, 2), END))
    with caplog.at_level(logging.INFO, logger=chat.access_log.name):
        await answer.read()
    [line] = [record.getMessage() for record in caplog.records]
    entry = json.loads(line)
    assert entry["event"] == "chat"
    assert entry["outcome"] == "completed"
    assert (entry["input_tokens"], entry["output_tokens"]) == (7, 2)
    assert "secret" not in line


async def test_silence_sends_heartbeats_without_losing_the_pending_read():
    answer = Answer(FakeStream(), sse_heartbeat_s=0.01)
    assert types(await answer.read(3)) == ["start", "ping", "ping"]
    answer.stream.put(TextDelta("late"))
    answer.stream.put(END)
    rest = await answer.read()
    assert [frame for frame in rest if frame != "ping"][1]["delta"] == "late"
    answer.assert_closed("completed")


async def test_a_provider_silent_for_the_timeout_ends_with_an_error():
    answer = Answer(FakeStream(TextDelta("Par")), llm_timeout_s=0.05)
    frames = await answer.read()
    assert types(frames)[-3:] == ["text-end", "error", "[DONE]"]
    assert frames[-2]["errorText"] == "The model provider stopped sending; try again."
    answer.assert_closed("error")


async def test_an_answer_over_the_time_limit_is_cut_off():
    answer = Answer(FakeStream(TextDelta("Par")), max_stream_s=0.05, sse_heartbeat_s=0.01)
    frames = await answer.read()
    assert frames[-2] == {
        "type": "error",
        "errorText": "The answer took over 0.05 s and was cut off.",
    }
    answer.assert_closed("cut_off")


async def test_a_shutdown_ends_the_answer_with_abort(monkeypatch):
    notice = ShutdownNotice()
    monkeypatch.setattr(chat, "shutdown", notice)
    answer = Answer(FakeStream(TextDelta("Par")))
    assert types(await answer.read(3)) == ["start", "text-start", "text-delta"]
    notice.begin()
    assert types(await answer.read()) == ["text-end", "abort", "[DONE]"]
    answer.assert_closed("aborted")


async def test_a_halt_to_stop_ends_the_answer_with_abort_at_once():
    answer = Answer(FakeStream(TextDelta("Par")))
    assert types(await answer.read(3)) == ["start", "text-start", "text-delta"]
    answer.halt.set_result(Halt.STOP)
    assert types(await answer.read()) == ["text-end", "abort", "[DONE]"]
    answer.assert_closed("stopped")


async def test_a_halt_for_overflow_cuts_the_answer_off_with_an_error():
    answer = Answer(FakeStream(TextDelta("Par")), resume_buffer_bytes=1000)
    await answer.read(3)
    answer.halt.set_result(Halt.OVERFLOW)
    frames = await answer.read()
    assert frames[-2] == {
        "type": "error",
        "errorText": "The answer outgrew 1000 bytes and was cut off.",
    }
    answer.assert_closed("cut_off")


async def test_a_provider_failure_after_the_first_token_is_an_error_chunk():
    failure = ApiError(502, "upstream_error", "The model provider failed (status 500).")
    answer = Answer(FakeStream(TextDelta("Par"), failure))
    frames = await answer.read()
    assert frames[-2] == {"type": "error", "errorText": failure.message}
    answer.assert_closed("error")


async def test_a_provider_failure_before_any_token_is_raised_for_an_http_error():
    answer = Answer(FakeStream(ApiError(429, "upstream_rate_limited", "Slow down.")))
    with pytest.raises(ApiError, match="Slow down"):
        await answer.read()
    answer.assert_closed("error")


async def test_a_bug_mid_answer_is_logged_and_ends_with_an_error_chunk(caplog):
    """Not the provider's fault: the client is told the server failed, the log has why."""
    answer = Answer(FakeStream(TextDelta("Par"), AttributeError("'NoneType' has no 'delta'")))
    with caplog.at_level(logging.ERROR, logger=chat.logger.name):
        frames = await answer.read()
    assert types(frames)[-3:] == ["text-end", "error", "[DONE]"]
    assert frames[-2]["errorText"] == "The server failed while answering; it is logged."
    assert "AttributeError: 'NoneType' has no 'delta'" in caplog.text  # the traceback
    answer.assert_closed("error")


async def test_a_bug_in_the_model_call_is_a_500_internal_error_and_logged(monkeypatch, caplog):
    """An unexpected exception where LiteLLM is called, before any token: a 500, not a 502
    blaming the provider."""
    module = llm.litellm()

    async def broken_completion(**request):
        raise AttributeError("'dict' object has no attribute 'choices'")

    monkeypatch.setattr(module, "acompletion", broken_completion)
    core = chat.Chat(Settings(llm_model="openai/fake", llm_api_key="sk-fake", redis_url=None))
    with caplog.at_level(logging.ERROR, logger=chat.logger.name), pytest.raises(ApiError) as failed:
        await core.answer(request("Hi"), Caller("10.0.0.1"))
    assert (failed.value.status, failed.value.type) == (500, "internal_error")
    assert "no attribute 'choices'" not in failed.value.message
    assert "Traceback" in caplog.text and "no attribute 'choices'" in caplog.text


async def test_a_client_going_away_closes_the_provider_connection():
    answer = Answer(FakeStream(TextDelta("Par")))
    await answer.read(2)
    await answer.chunks.aclose()
    answer.assert_closed("cancelled")


async def test_a_client_leaving_as_the_provider_ends_leaves_no_outcome_unread():
    """The client leaves during a heartbeat just as the provider's stream ends: the finished
    read's outcome is taken, not left for asyncio to log as "never retrieved"."""
    loop = asyncio.get_running_loop()
    unread = []
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: unread.append(context["message"]))
    try:
        answer = Answer(FakeStream(), sse_heartbeat_s=0.01)
        assert types(await answer.read(2)) == ["start", "ping"]
        answer.stream.put(END)
        while not answer.stream.events.empty():  # the pending read takes END
            await asyncio.sleep(0)
        await asyncio.sleep(0)  # and ends
        await answer.chunks.aclose()
        del answer
        gc.collect()
    finally:
        loop.set_exception_handler(handler)
    assert unread == []


def request(*texts: str) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text} for text in texts])


@pytest.mark.parametrize(
    ("chat_request", "model", "status", "type"),
    [
        (request("Hi"), "openai/other", 400, "model_not_allowed"),
        (request("Hi", "again", "and", "again"), "openai/fake", 422, "too_many_messages"),
        (request("Hi", "x" * 11), "openai/fake", 422, "message_too_long"),
        (request("x" * 10, "x" * 10, "x"), "openai/fake", 413, "body_too_large"),
    ],
)
def test_requests_beyond_the_limits_are_refused(chat_request, model, status, type):
    settings = Settings(
        llm_model="openai/fake", max_messages=3, max_message_chars=10, max_request_bytes=20
    )
    with pytest.raises(ApiError) as refused:
        _check_request(chat_request, model, settings)
    assert (refused.value.status, refused.value.type) == (status, type)


def test_a_request_within_the_limits_passes():
    settings = Settings(llm_model="openai/fake", max_messages=2, max_message_chars=10)
    _check_request(request("Hi", "x" * 10), "openai/fake", settings)
