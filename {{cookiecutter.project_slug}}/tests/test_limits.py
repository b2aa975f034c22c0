"""Limits and access control: each violation is a clear 4xx, or an `error` chunk mid-stream."""

import httpx
import pytest

from .conftest import running_api
from .streams import chat_body, post_chat, read_events

TOKEN = "test-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORIGIN = "https://app.example"
CHAT_ID = "Hx8kQ2vLm9TzR4wB"


@pytest.fixture(scope="module")
def guarded(upstream, tmp_path_factory):
    """A server with a token, a CORS origin, small request limits and short answers."""
    with running_api(
        upstream,
        tmp_path_factory.mktemp("guarded"),
        api_token=TOKEN,
        cors_origins=ORIGIN,
        max_messages="3",
        max_message_chars="50",
        max_tokens="77",
        max_stream_s="1",
    ) as server:
        yield server.url


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["type"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
)
def test_chat_models_and_resumable_streams_need_the_token(guarded, headers):
    chat = httpx.post(f"{guarded}/api/chat", json=chat_body("openai/fake-fast"), headers=headers)
    models = httpx.get(f"{guarded}/api/models", headers=headers)
    resume = httpx.get(f"{guarded}/api/chat/{CHAT_ID}/stream", headers=headers)
    stop = httpx.delete(f"{guarded}/api/chat/{CHAT_ID}/stream", headers=headers)
    assert {error_of(r) for r in (chat, models, resume, stop)} == {(401, "unauthorized")}


def test_the_token_opens_chat_and_models_and_health_stays_public(guarded):
    assert post_chat(guarded, "openai/fake-fast", headers=AUTH).done
    assert httpx.get(f"{guarded}/api/models", headers=AUTH).status_code == 200
    assert httpx.get(f"{guarded}/api/health").status_code == 200


@pytest.mark.parametrize(("origin", "allowed"), [(ORIGIN, True), ("https://evil.example", False)])
def test_cors_admits_only_the_configured_origin(guarded, origin, allowed):
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    response = httpx.options(f"{guarded}/api/chat", headers=preflight)
    assert (response.headers.get("access-control-allow-origin") == origin) is allowed


@pytest.mark.parametrize(
    ("messages", "error_type"),
    [
        ([{"role": "user", "content": "hi"}] * 4, "too_many_messages"),
        ([{"role": "user", "content": "x" * 51}], "message_too_long"),
    ],
)
def test_request_size_limits(guarded, messages, error_type):
    body = {"messages": messages}
    response = httpx.post(f"{guarded}/api/chat", json=body, headers=AUTH)
    assert error_of(response) == (422, error_type)


def test_max_tokens_caps_what_the_provider_is_asked_for(guarded, upstream):
    post_chat(guarded, "openai/fake-fast", headers=AUTH)
    assert upstream.last("fake-fast").max_tokens == 77


def test_an_answer_longer_than_max_stream_s_is_cut_off(guarded, upstream):
    stream = post_chat(guarded, "openai/fake-long", headers=AUTH)
    assert stream.text  # what came before the cut stays
    assert "cut off" in stream.chunks[-1]["errorText"]
    assert stream.done
    assert upstream.last("fake-long").closed.wait(timeout=2)


@pytest.fixture(scope="module")
def limited(upstream, tmp_path_factory):
    """A server allowing 3 chat requests a minute and 1 open stream per client."""
    cwd = tmp_path_factory.mktemp("limited")
    with running_api(upstream, cwd, rate_limit="3/minute", max_streams_per_client="1") as server:
        yield server.url


def test_one_open_stream_per_client_then_429(limited, upstream):
    body = chat_body("openai/fake-long")
    with httpx.stream("POST", f"{limited}/api/chat", json=body) as first:
        events = read_events(first)  # kept: closing it would close the connection
        next(event for event in events if event[0] == "chunk")
        second = httpx.post(f"{limited}/api/chat", json=body)
    assert error_of(second) == (429, "too_many_streams")
    assert second.headers["retry-after"] == "1"
    # The slot is given back before the provider connection closes.
    assert upstream.last("fake-long").closed.wait(timeout=5)


def test_the_rate_limit_answers_429_with_retry_after(limited):
    """One of the 3 requests a minute went to the stream above; the 3rd from here is refused."""
    statuses = [
        httpx.post(f"{limited}/api/chat", json=chat_body("openai/fake-fast")) for _ in range(4)
    ]
    refused = [r for r in statuses if r.status_code == 429]
    assert refused, "4 more requests within a minute of a 3/minute limit were all served"
    assert error_of(refused[0]) == (429, "rate_limited")
    assert 0 < int(refused[0].headers["retry-after"]) <= 60
