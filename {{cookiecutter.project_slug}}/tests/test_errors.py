"""Failures before the first token are plain HTTP errors with a JSON body and the right status."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .conftest import FAKE_KEY, FAMILIES, UNCONFIGURED_MODEL, running_api
from .fake_upstream import ClosingReusedConnections, streamed_text
from .streams import chat_body, post_chat


def error_of(response: httpx.Response) -> dict:
    assert response.headers["content-type"] == "application/json"
    assert FAKE_KEY not in response.text
    return response.json()["error"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("script", "status", "error_type"),
    [
        ("fake-401", 401, "upstream_auth"),
        ("fake-429", 429, "upstream_rate_limited"),
        ("fake-500", 502, "upstream_error"),
        ("fake-503", 502, "upstream_error"),
    ],
)
def test_provider_refusals_before_the_stream(api, family, script, status, error_type):
    response = httpx.post(f"{api}/api/chat", json=chat_body(f"{family}/{script}"), timeout=30)
    assert response.status_code == status
    assert error_of(response)["type"] == error_type


@pytest.mark.parametrize(
    ("model", "status", "error_type"),
    [
        ("openai/fake-404", 400, "unknown_model"),
        ("openai/not-in-the-allow-list", 400, "model_not_allowed"),
        (UNCONFIGURED_MODEL, 503, "missing_configuration"),
    ],
)
def test_model_errors(api, model, status, error_type):
    response = httpx.post(f"{api}/api/chat", json=chat_body(model), timeout=30)
    assert response.status_code == status
    assert error_of(response)["type"] == error_type


@pytest.mark.parametrize("family", ["openai", "anthropic", "gemini"])
def test_rate_limit_passes_on_retry_after(api, family):
    response = httpx.post(f"{api}/api/chat", json=chat_body(f"{family}/fake-429"), timeout=30)
    assert response.headers["retry-after"] == "7"


def test_missing_configuration_names_the_variable(api):
    response = httpx.post(f"{api}/api/chat", json=chat_body(UNCONFIGURED_MODEL), timeout=30)
    assert "MISTRAL_API_KEY" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("content", "status", "error_type"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"messages": "hello"}', 422, "invalid_request"),
        (b'{"messages": []}', 422, "invalid_request"),
        (b'{"messages": [{"role": "wizard", "content": "hi"}]}', 422, "invalid_request"),
        (
            b'{"messages": [{"role": "user", "content": "' + b"x" * 30_000 + b'"}]}',
            413,
            "body_too_large",
        ),
    ],
)
def test_bad_requests(api, content, status, error_type):
    headers = {"content-type": "application/json"}
    response = httpx.post(f"{api}/api/chat", content=content, headers=headers, timeout=30)
    assert response.status_code == status
    assert error_of(response)["type"] == error_type


def test_oversized_body_without_content_length_is_refused(api):
    def chunks():
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}]}'

    response = httpx.post(f"{api}/api/chat", content=chunks(), timeout=30)
    assert response.status_code == 413


def test_ai_sdk_use_chat_body_is_accepted(api):
    body = {
        "id": "chat-1",
        "trigger": "submit-message",
        "messageId": None,
        "model": "openai/fake-fast",
        "messages": [
            {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "Hello?"}]},
        ],
    }
    with httpx.stream("POST", f"{api}/api/chat", json=body) as response:
        assert response.status_code == 200
        response.read()


def test_a_request_the_provider_never_received_is_sent_again(tmp_path):
    """Providers close idle keep-alive connections (uvicorn after 5 s, load balancers after
    seconds), and a pooled client can send a request on one just as it closes. That request never
    reached the provider and goes again, until a connection takes it; a refusal reached it and
    does not."""
    provider = ClosingReusedConnections().start()
    answer = streamed_text(ClosingReusedConnections.ANSWER_TOKENS)
    try:
        with running_api(provider, tmp_path) as api:
            for _ in range(3):
                assert post_chat(api.url, "openai/fake-fast").text == answer
            # The 2nd and 3rd went out on the connection of the one before, which it closed.
            assert (provider.answered, provider.dropped) == (3, 2)

            # Answers at once leave several connections in the pool, which the provider closes
            # together (as it does a wave of idle ones): the next request draws one closed
            # connection after the other before a new one takes it.
            with ThreadPoolExecutor(3) as pool:
                texts = pool.map(lambda _: post_chat(api.url, "openai/fake-slow").text, range(3))
                assert list(texts) == [answer] * 3
            pooled, dropped = provider.connections, provider.dropped
            assert pooled == 3
            assert post_chat(api.url, "openai/fake-fast").text == answer
            assert provider.dropped - dropped == pooled

            body = chat_body("openai/fake-500")
            refused = httpx.post(f"{api.url}/api/chat", json=body, timeout=30)
            assert refused.status_code == 502
            assert provider.refused == 1
    finally:
        provider.stop()
