"""The small routes beside the stream: health, the model allow-list and the metrics."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .conftest import (
    DEFAULT_MODEL,
    FAKE_KEY,
    METRICS_TOKEN,
    UNCONFIGURED_MODEL,
    running_api,
    wait_until_healthy,
)
from .streams import chat_body, post_chat
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


def test_every_response_of_the_api_carries_the_security_headers(api):
    health = httpx.get(f"{api}/api/health", timeout=30)
    refused = httpx.post(f"{api}/api/chat", content=b"not json", timeout=30)
    missing = httpx.get(f"{api}/api/nothing-here", timeout=30)
    with httpx.stream("POST", f"{api}/api/chat", json=chat_body(DEFAULT_MODEL)) as stream:
        stream.read()
    # Through a proxy on this machine (FORWARDED_ALLOW_IPS): the client came over HTTPS.
    https = httpx.get(f"{api}/api/health", headers={"x-forwarded-proto": "https"}, timeout=30)
    assert (health.status_code, refused.status_code, missing.status_code) == (200, 400, 404)
    assert stream.headers["content-type"].startswith("text/event-stream")
    for response in (health, refused, missing, stream, https):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"].endswith("frame-ancestors 'none'")
    for response in (health, refused, stream):
        policy = response.headers["content-security-policy"]
        assert policy == "default-src 'none'; frame-ancestors 'none'"
    assert "strict-transport-security" not in health.headers
    assert https.headers["strict-transport-security"].startswith("max-age=")


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


def scrape(api: str) -> dict:
    """The samples of `/api/metrics`, by name and labels, as Prometheus's own parser reads them."""
    response = httpx.get(f"{api}/api/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def answers_counted(samples: dict, outcome: str) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "chat_answers_total" and ("outcome", outcome) in labels
    )


def timed(samples: dict, model: str) -> float:
    """Answers of `model` (its name without the provider) in the GenAI conventions' duration
    histogram."""
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "gen_ai_client_operation_duration_seconds_count"
        and ("gen_ai_request_model", model) in labels
    )


def test_metrics_count_the_answers_for_the_bearer_of_their_token(api):
    before = scrape(api)
    for _ in range(2):
        post_chat(api, "openai/fake-fast")
    after = scrape(api)

    assert answers_counted(after, "completed") == answers_counted(before, "completed") + 2
    assert timed(after, "fake-fast") == timed(before, "fake-fast") + 2
    assert httpx.get(f"{api}/api/metrics").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.get(f"{api}/api/metrics", headers=wrong).status_code == 401
