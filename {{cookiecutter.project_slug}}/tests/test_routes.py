"""The small routes beside the stream: health and the model allow-list."""

import httpx

from .conftest import DEFAULT_MODEL, FAKE_KEY, UNCONFIGURED_MODEL


def test_health_reports_model_provider_and_key(api):
    response = httpx.get(f"{api}/api/health", timeout=30)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model": DEFAULT_MODEL,
        "provider": "openai",
        "missing_env": [],
        "api_key_configured": True,
    }
    assert FAKE_KEY not in response.text


def test_models_lists_the_allow_list_default_first(api):
    models = httpx.get(f"{api}/api/models", timeout=30).json()
    assert models["default"] == DEFAULT_MODEL
    assert models["models"][0] == DEFAULT_MODEL
    assert UNCONFIGURED_MODEL in models["models"]
