"""Provider faults through real LiteLLM against the fake upstream: the client always gets a
clear error (an HTTP status, or an `error` chunk after the partial text) and never hangs."""

import time

import httpx
import pytest

from .conftest import running_api
from .fake_upstream import SCRIPTS, streamed_text
from .streams import assert_parts_well_formed, chat_body, post_chat
from .support import free_port

# The test server's LLM_TIMEOUT_S is 3 s: a silent provider is given up on after that.
GIVE_UP_S = 3


@pytest.mark.parametrize(
    "script", ["fake-stall-first", "fake-stall-mid", "fake-reset-mid", "fake-malformed"]
)
def test_a_broken_stream_ends_with_an_error_after_the_partial_text(api, script):
    started = time.monotonic()
    stream = post_chat(api, f"openai/{script}")
    elapsed = time.monotonic() - started

    partial = SCRIPTS[script].fail_after or 0
    assert stream.text == streamed_text(partial)
    assert_parts_well_formed(stream)
    assert stream.chunks[-1]["type"] == "error"
    assert stream.done
    assert elapsed < GIVE_UP_S + 5


def test_a_silent_provider_is_reported_while_the_stream_is_kept_alive(api):
    stream = post_chat(api, "openai/fake-stall-first")
    assert stream.pings >= 2  # SSE_HEARTBEAT_S is 0.5 s
    # LiteLLM's read timeout or the stream's own idle check, whichever fires first.
    assert "model provider" in stream.chunks[-1]["errorText"]


def test_a_huge_single_delta_arrives_whole(api):
    stream = post_chat(api, "openai/fake-huge")
    assert stream.text == "x" * SCRIPTS["fake-huge"].token_chars * SCRIPTS["fake-huge"].tokens
    assert stream.chunks[-1]["type"] == "finish"


def test_an_unreachable_provider_is_a_502(upstream, tmp_path):
    closed_port = free_port()
    with running_api(upstream, tmp_path, llm_api_base=f"http://127.0.0.1:{closed_port}") as server:
        started = time.monotonic()
        response = httpx.post(f"{server.url}/api/chat", json=chat_body("openai/fake-fast"))
        elapsed = time.monotonic() - started

    assert response.status_code == 502
    assert response.json()["error"]["type"] == "upstream_unreachable"
    assert elapsed < GIVE_UP_S + 2
