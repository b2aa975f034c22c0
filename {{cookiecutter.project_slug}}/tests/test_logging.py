"""What the server writes about each stream, and what it never writes: keys and contents."""

import httpx

from .conftest import FAKE_KEY
from .streams import chat_body, post_chat, read_events


def test_a_completed_stream_is_logged_once_without_its_content(api_server):
    question = "a question nobody else asks 7f3a"
    post_chat(api_server.url, "openai/fake-think", question)

    entry = api_server.wait_for_access_log(model="openai/fake-think", outcome="completed")
    assert entry["output_tokens"] == 8
    assert entry["ttft_ms"] <= entry["duration_ms"]
    assert "messages" not in entry
    assert question not in api_server.log.read_text()


def test_a_stream_the_client_leaves_is_logged_as_cancelled(api_server):
    body = chat_body("openai/fake-slow")
    with httpx.stream("POST", f"{api_server.url}/api/chat", json=body) as response:
        next(e for e in read_events(response) if e[0] == "chunk" and e[1]["type"] == "text-delta")
    api_server.wait_for_access_log(model="openai/fake-slow", outcome="cancelled")


def test_the_api_key_never_leaves_the_server(api_server):
    """Every channel a key could leak through, after requests that touch every error path."""
    url = api_server.url
    seen = [
        httpx.get(f"{url}/api/health").text,
        httpx.get(f"{url}/api/models").text,
        httpx.post(f"{url}/api/chat", content=b"{not json").text,
    ]
    for model in ["fake-fast", "fake-fail-mid", "fake-401", "fake-500", "fake-malformed"]:
        seen.append(httpx.post(f"{url}/api/chat", json=chat_body(f"openai/{model}")).text)
    seen.append(api_server.log.read_text())

    assert not [text for text in seen if FAKE_KEY in text]
