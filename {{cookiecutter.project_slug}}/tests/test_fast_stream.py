"""The fast stream path (the default) answers exactly as LiteLLM's own streaming path does.

The same requests go to the session's API and to one started with `LLM_FAST_STREAM=false`,
for every provider family the fake upstream speaks and every way a stream can go: text,
reasoning, markdown, a failure mid-answer, refusals, a stall. Only ids and timings may differ.
"""

import httpx
import pytest

from {{ cookiecutter.package_name }} import litellm_compat, llm, openai_compat
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import FAKE_KEY, FAMILIES, running_api
from .streams import chat_body, read_stream
from .support import wait_until_async

SCRIPTS = [
    "fake-fast",
    "fake-think",
    "fake-markdown",
    "fake-fail-mid",
    "fake-reset-mid",
    "fake-tool",
    "fake-tools-2",
]
REFUSALS = ["fake-401", "fake-404", "fake-429", "fake-500", "fake-503"]


@pytest.fixture(scope="module")
def litellm_path_server(upstream, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("litellm-path")
    with running_api(upstream, cwd, llm_fast_stream="false") as server:
        yield server


def answer(api: str, model: str) -> tuple[int, object]:
    """The status and what a client keeps of the answer: chunks without ids and timings, or
    the error body."""
    with httpx.stream("POST", f"{api}/api/chat", json=chat_body(model), timeout=30) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, response.json()
        call_numbers: dict[str, int] = {}
        return 200, [comparable(chunk, call_numbers) for chunk in read_stream(response).chunks]


def comparable(chunk: dict, call_numbers: dict[str, int]) -> dict:
    """Without ids (some providers' tool call ids are random: numbered in order of appearance
    instead) and timings."""
    chunk = {key: value for key, value in chunk.items() if key not in ("id", "messageId")}
    if call_id := chunk.get("toolCallId"):
        chunk["toolCallId"] = call_numbers.setdefault(call_id, len(call_numbers))
    if metadata := chunk.get("messageMetadata"):
        chunk["messageMetadata"] = {
            key: value for key, value in metadata.items() if key not in ("ttftMs", "durationMs")
        }
    return chunk


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("script", SCRIPTS + REFUSALS)
def test_the_fast_path_answers_as_litellm_does(api_server, litellm_path_server, family, script):
    model = f"{family}/{script}"
    fast, litellm_path = answer(api_server.url, model), answer(litellm_path_server.url, model)
    assert fast == litellm_path
    if fast[0] == 200:
        assert any(chunk["type"] in ("text-delta", "error") for chunk in fast[1])
        # Each took the path it was meant to (LiteLLM's own silently takes over with callbacks).
        api_server.wait_for_access_log(model=model, stream_path="provider")
        litellm_path_server.wait_for_access_log(model=model, stream_path="litellm")


async def stream_once(upstream) -> str:
    """One answer through `llm.open_stream`, read to its end; the path it took."""
    settings = Settings(llm_api_base=upstream.base_url, llm_api_key=FAKE_KEY)
    messages = [{"role": "user", "content": "Hello?"}]
    stream = await llm.open_stream(messages, "openai/fake-fast", settings)
    try:
        assert [event async for event in stream][-1].output_tokens == 20
    finally:
        await stream.aclose()
    return stream.path


async def test_litellm_callbacks_keep_litellm_path_and_still_run(upstream, monkeypatch):
    """Callbacks (Langfuse, cost tracking, ...) run in LiteLLM's stream wrapper, so a process
    that sets one streams through it, and the callback sees the answer."""
    assert await stream_once(upstream) == "provider"
    from litellm.integrations.custom_logger import CustomLogger

    logged: list[object] = []

    class Recorder(CustomLogger):
        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            logged.append(response_obj)

    module = llm.litellm()
    # LiteLLM files a callback into internal lists on first use: restore those too afterwards.
    for name in ("success_callback", "_async_success_callback", "input_callback"):
        monkeypatch.setattr(module, name, list(getattr(module, name)))
    monkeypatch.setattr(module, "callbacks", [Recorder()])
    assert await stream_once(upstream) == "litellm"
    # LiteLLM calls it from a task of its own.
    await wait_until_async(lambda: logged, "LiteLLM's success callback ran")


@pytest.mark.parametrize("compat", [litellm_compat, openai_compat])
async def test_without_a_private_name_answers_take_litellm_public_path(
    upstream, compat, monkeypatch
):
    """An upgrade of LiteLLM or the OpenAI SDK that drops a name the fast path takes costs CPU,
    not answers: the start-up check sees it, and every answer streams through the wrapper."""
    monkeypatch.setattr(compat, "missing_internals", lambda: ["AsyncStream._iter_events"])
    assert await stream_once(upstream) == "litellm"
