"""Tool calls in the chat core, with real LiteLLM against the fake provider in each wire format:
the calls stream as AI SDK tool chunks, the tools run, and the model answers with the results.

In-process (no server): what the route adds is checked in `test_streaming.py`.
"""

import asyncio
import json

import pytest

from {{ cookiecutter.package_name }} import chat, tools
from {{ cookiecutter.package_name }}.access import Caller
from {{ cookiecutter.package_name }}.chat import Chat
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.shutdown import ShutdownNotice
from {{ cookiecutter.package_name }}.telemetry import Telemetry

from .conftest import FAKE_KEY, FAMILIES
from .fake_upstream import PROMPT_TOKENS, SCRIPTS, argument_pieces
from .streams import Stream, chat_body, read_frames

family = pytest.mark.parametrize("family", FAMILIES)
# The formats that stream a call's arguments in pieces; Gemini and Ollama send each call whole.
SPLITS_ARGUMENTS = {"openai", "anthropic"}
CALLER = Caller("127.0.0.1")


class Waits:
    """A `wait` tool that records whether it was cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def wait(self, seconds: float) -> str:
        """Wait this many seconds."""
        self.started.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return "waited"


@pytest.fixture
def waits() -> Waits:
    """`wait`, registered for the test as `tools.py` registers its tools."""
    waits = Waits()
    tools.tool(waits.wait)
    yield waits
    del tools.REGISTRY["wait"]


def core(upstream, observed: Telemetry | None = None, **settings) -> Chat:
    defaults = {
        "llm_api_base": upstream.base_url,
        "llm_api_key": FAKE_KEY,
        "llm_models": [f"{family}/{model}" for family in FAMILIES for model in SCRIPTS],
        "tools": ["calculate", "current_time"],
        "redis_url": None,
        # Load from one client: every test here asks as the same caller, dozens a minute.
        "rate_limit": "100000/minute",
    }
    return Chat(Settings(**(defaults | settings)), observed)


async def ask(chat_core: Chat, model: str) -> Stream:
    frames = await chat_core.open(json.dumps(chat_body(model, "What is 6*7?")).encode(), CALLER)
    try:
        return await read_frames(frames)
    finally:
        await frames.aclose()


@family
async def test_a_tool_call_streams_runs_and_the_model_answers_with_its_result(upstream, family):
    stream = await ask(core(upstream), f"{family}/fake-tool")

    deltas = stream.of_type("tool-input-delta")
    assert stream.types == [
        "start",
        "start-step",
        "tool-input-start",
        *["tool-input-delta"] * len(deltas),
        "tool-input-available",
        "tool-output-available",
        "finish-step",
        "start-step",
        "text-start",
        *["text-delta"] * len(stream.of_type("text-delta")),
        "text-end",
        "finish-step",
        "finish",
    ]
    [start] = stream.of_type("tool-input-start")
    assert start["toolName"] == "calculate"
    arguments = '{"expression": "6*7"}'
    if family in SPLITS_ARGUMENTS:
        assert [d["inputTextDelta"] for d in deltas] == argument_pieces(arguments)
    assert json.loads("".join(d["inputTextDelta"] for d in deltas)) == {"expression": "6*7"}
    [available] = stream.of_type("tool-input-available")
    assert available["input"] == {"expression": "6*7"}
    assert stream.of_type("tool-output-available")[0]["output"] == 42
    assert {chunk["toolCallId"] for chunk in stream.chunks if "toolCallId" in chunk} == {
        start["toolCallId"]
    }
    assert "42" in stream.text
    calling, answering = upstream.records[-2:]
    assert calling.tools == answering.tools == ["calculate", "current_time"]
    assert answering.tool_results and "42" in answering.tool_results[0]
    usage = stream.chunks[-1]["messageMetadata"]["usage"]
    assert usage["inputTokens"] == 2 * PROMPT_TOKENS  # summed over both steps


async def test_a_result_over_max_tool_result_chars_reaches_the_model_as_an_error(upstream):
    stream = await ask(core(upstream, max_tool_result_chars=1), "openai/fake-tool")

    [error] = stream.of_type("tool-output-error")
    assert error["errorText"] == (
        "calculate returned 2 characters, over the 1 a result may have (MAX_TOOL_RESULT_CHARS)."
    )
    assert "over the 1" in upstream.records[-1].tool_results[0]


@family
async def test_two_calls_in_one_step_both_run_before_the_next_step(upstream, family):
    stream = await ask(core(upstream), f"{family}/fake-tools-2")

    available = stream.of_type("tool-input-available")
    assert [chunk["input"] for chunk in available] == [
        {"expression": "6*7"},
        {"expression": "2+2"},
    ]
    assert len({chunk["toolCallId"] for chunk in available}) == 2
    outputs = {c["toolCallId"]: c["output"] for c in stream.of_type("tool-output-available")}
    assert [outputs[chunk["toolCallId"]] for chunk in available] == [42, 4]
    assert stream.types.count("start-step") == 2
    assert "42" in stream.text and "4" in stream.text
    assert len(upstream.records[-1].tool_results) == 2


@family
async def test_a_tool_that_raises_is_an_output_error_the_model_reads(upstream, family):
    stream = await ask(core(upstream), f"{family}/fake-tool-raises")

    [error] = stream.of_type("tool-output-error")
    assert error["errorText"] == "division by zero"  # a ValueError's text, for the model
    assert "Error: division by zero" in upstream.records[-1].tool_results[0]
    assert "division by zero" in stream.text
    assert stream.types[-1] == "finish"


async def test_any_other_exception_reaches_the_model_without_its_text(upstream, caplog):
    @tools.tool
    def explode() -> str:
        """Fail as a client of some API would."""
        raise RuntimeError("GET https://api.example.com/?key=sk-secret failed")

    try:
        stream = await ask(core(upstream, tools=["explode"]), "openai/fake-tool-explode")
    finally:
        del tools.REGISTRY["explode"]

    [error] = stream.of_type("tool-output-error")
    assert error["errorText"] == "explode failed."
    assert "sk-secret" not in json.dumps(stream.chunks)
    assert "sk-secret" not in upstream.records[-1].tool_results[0]
    assert "sk-secret" in caplog.text  # in the server's log, with the traceback


async def test_a_provider_refusing_the_next_step_ends_the_answer_with_an_error(upstream):
    stream = await ask(core(upstream), "openai/fake-tool-then-429")

    assert stream.of_type("tool-output-available")[0]["output"] == 42
    assert stream.types[-2:] == ["finish-step", "error"]
    assert "rate-limiting" in stream.chunks[-1]["errorText"]
    assert stream.done


@family
async def test_arguments_that_do_not_fit_the_signature_are_an_output_error(upstream, family):
    stream = await ask(core(upstream), f"{family}/fake-tool-bad-arguments")

    [available] = stream.of_type("tool-input-available")
    assert available["input"] == {"expr": "6*7"}
    [error] = stream.of_type("tool-output-error")
    assert "expression: Field required" in error["errorText"]
    assert "expression: Field required" in upstream.records[-1].tool_results[0]


@family
async def test_a_tool_over_its_time_limit_is_stopped_and_the_model_told(upstream, family, waits):
    chat_core = core(upstream, tools=["wait"], tool_timeout_s=0.2)
    stream = await ask(chat_core, f"{family}/fake-tool-wait")

    [error] = stream.of_type("tool-output-error")
    assert error["errorText"] == "wait took over 0.2 s and was stopped."
    assert waits.cancelled
    assert "took over 0.2 s" in upstream.records[-1].tool_results[0]


@family
async def test_a_client_leaving_during_a_tool_stops_it_and_asks_the_model_nothing_more(
    upstream, family, waits
):
    chat_core = core(upstream, tools=["wait"])
    body = json.dumps(chat_body(f"{family}/fake-tool-wait")).encode()
    frames = await chat_core.open(body, CALLER)
    async for frame in frames:
        if b"tool-input-available" in frame:
            break
    reading = asyncio.ensure_future(anext(frames))  # the adapter waits for the next chunk
    await asyncio.wait_for(waits.started.wait(), 5)
    requests = len(upstream.records)

    reading.cancel()  # what an adapter does when the client goes away
    await asyncio.wait({reading})
    await frames.aclose()

    assert waits.cancelled
    await asyncio.sleep(0.2)
    assert len(upstream.records) == requests


async def test_a_shutdown_during_a_tool_ends_the_answer_with_abort(upstream, waits, monkeypatch):
    notice = ShutdownNotice()
    monkeypatch.setattr(chat, "shutdown", notice)
    body = json.dumps(chat_body("openai/fake-tool-wait")).encode()
    frames = await core(upstream, tools=["wait"]).open(body, CALLER)

    async def shut_down_once_the_tool_runs():
        await waits.started.wait()
        notice.begin()

    stopping = asyncio.ensure_future(shut_down_once_the_tool_runs())
    stream = await read_frames(frames)
    await stopping

    assert stream.types[-2:] == ["tool-input-available", "abort"]
    assert waits.cancelled
    assert stream.done


@family
async def test_a_model_still_calling_tools_after_max_tool_steps_ends_with_an_error(
    upstream, family
):
    requests_before = len(upstream.records)
    stream = await ask(core(upstream, max_tool_steps=3), f"{family}/fake-tool-loop")

    assert len(upstream.records) - requests_before == 3
    assert stream.types.count("tool-output-available") == 3
    assert stream.types[-2:] == ["finish-step", "error"]
    assert "MAX_TOOL_STEPS" in stream.chunks[-1]["errorText"]
    assert stream.done


async def test_without_tools_none_is_offered_and_the_answer_is_one_step(upstream):
    stream = await ask(core(upstream, tools=[]), "openai/fake-fast")

    assert upstream.records[-1].tools == []
    assert stream.types.count("start-step") == stream.types.count("finish-step") == 1
