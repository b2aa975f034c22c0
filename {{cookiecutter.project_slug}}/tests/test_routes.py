"""The small routes beside the stream: health and the model allow-list."""

import httpx

from .conftest import (
    DEFAULT_MODEL,
    FAKE_KEY,
    UNCONFIGURED_MODEL,
    running_api,
    wait_until_healthy,
)
from .streams import chat_body
from .support import wait_until


def test_health_reports_model_provider_and_key(api):
    response = httpx.get(f"{api}/api/health", timeout=30)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model": DEFAULT_MODEL,
        "llm": "ready",
        "provider": "openai",
        "missing_env": [],
        "api_key_configured": True,
    }
    assert FAKE_KEY not in response.text


def test_health_answers_before_litellm_has_loaded(upstream, tmp_path):
    """A cold start costs the server's own start, not LiteLLM's import of several seconds: the
    first health check answers while the import goes on in the background."""
    with running_api(upstream, tmp_path, ready=False) as server:
        first = httpx.get(f"{server.url}/api/health").json()
        wait_until_healthy(server)
        ready = httpx.get(f"{server.url}/api/health").json()
    assert first == {"status": "ok", "model": DEFAULT_MODEL, "llm": "loading"}
    assert ready["llm"] == "ready"


def test_models_lists_the_allow_list_default_first(api):
    models = httpx.get(f"{api}/api/models", timeout=30).json()
    assert models["default"] == DEFAULT_MODEL
    assert models["models"][0] == DEFAULT_MODEL
    assert UNCONFIGURED_MODEL in models["models"]


def test_a_missing_key_shows_at_start_up_in_health_and_in_chat(upstream, tmp_path):
    with running_api(upstream, tmp_path, unset=("OPENAI_API_KEY",)) as server:
        health = httpx.get(f"{server.url}/api/health", timeout=30).json()
        chat = httpx.post(f"{server.url}/api/chat", json=chat_body(DEFAULT_MODEL), timeout=30)
        log = server.log
        wait_until(lambda: "OPENAI_API_KEY" in log.read_text(), "the missing key is logged")

    assert (health["missing_env"], health["api_key_configured"]) == (["OPENAI_API_KEY"], False)
    assert chat.status_code == 503
    assert "OPENAI_API_KEY" in chat.json()["error"]["message"]
    assert f"Model {DEFAULT_MODEL} needs OPENAI_API_KEY" in log.read_text()
