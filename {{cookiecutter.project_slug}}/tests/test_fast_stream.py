"""The fast stream path (the default) answers exactly as LiteLLM's own streaming path does.

The same requests go to the session's API and to one started with `LLM_FAST_STREAM=false`,
for every provider family the fake upstream speaks and every way a stream can go: text,
reasoning, markdown, a failure mid-answer, refusals, a stall. Only ids and timings may differ.
"""

import httpx
import pytest

from .conftest import FAMILIES, running_api
from .streams import chat_body, read_stream
from .test_logging import wait_for_entry

SCRIPTS = ["fake-fast", "fake-think", "fake-markdown", "fake-fail-mid", "fake-reset-mid"]
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
        return 200, [comparable(chunk) for chunk in read_stream(response).chunks]


def comparable(chunk: dict) -> dict:
    chunk = {key: value for key, value in chunk.items() if key not in ("id", "messageId")}
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
        wait_for_entry(api_server, model=model, stream_path="provider")
        wait_for_entry(litellm_path_server, model=model, stream_path="litellm")
