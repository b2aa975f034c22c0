"""What the page says about models and refusals (the browser suite shows each refusal)."""

import pytest

from {{ cookiecutter.package_name }}.errors import ApiError
from {{ cookiecutter.package_name }}_ui.answers import refusal
from {{ cookiecutter.package_name }}_ui.models import label, who_answers


@pytest.mark.parametrize(
    ("model", "shown"),
    [
        ("openai/gpt-4.1-mini", "gpt-4.1-mini (OpenAI)"),
        ("openrouter/openai/gpt-4.1-mini", "openai/gpt-4.1-mini (OpenRouter)"),
        ("ollama_chat/llama3.2", "llama3.2 (Ollama)"),
        ("someone_new/model-x", "model-x (someone_new)"),
        ("gpt-4.1-mini", "gpt-4.1-mini"),
    ],
)
def test_a_model_reads_as_its_name_and_provider(model, shown):
    assert label(model) == shown


def test_a_model_served_at_llm_api_base_is_named_by_that_host():
    vllm = "http://localhost:8000/v1"
    assert label("openai/llama-3.1-8b", vllm) == "llama-3.1-8b (localhost:8000)"
    assert label("local/smollm2", vllm) == "smollm2 (offline)"


def test_the_embedded_model_is_introduced_with_how_to_use_a_hosted_one():
    line = who_answers("local/smollm2-135m-instruct")
    assert line.startswith("smollm2-135m-instruct (offline) answers: a tiny model")
    assert "set LLM_MODEL and its API key in .env and restart" in line
    assert who_answers("anthropic/claude-haiku-4-5") == "claude-haiku-4-5 (Anthropic) answers."


@pytest.mark.parametrize(
    ("status", "kind", "message", "says", "action"),
    [
        (401, "upstream_auth", "The provider rejected the key.", "Check its API key", "configure"),
        (503, "missing_configuration", "Model m needs X_KEY; set it.", "needs X_KEY", "configure"),
        (413, "body_too_large", "The request exceeds 9 bytes.", "too large to send", "edit"),
        (422, "message_too_long", "messages.3: at most 8 characters.", "(at most 8 char", "edit"),
        (422, "too_many_messages", "messages: at most 9.", "limit of messages", "new_chat"),
        (400, "context_too_long", "Too long for this model.", "Too long for this", "new_chat"),
        (502, "upstream_error", "The provider failed.", "The provider failed.", "retry"),
        (429, "too_many_streams", "At most 4 at once.", "Wait for one to end", "retry"),
    ],
)
def test_a_refusal_says_what_to_do(status, kind, message, says, action):
    shown = refusal(ApiError(status, kind, message))
    assert says in str(shown)
    assert shown.action == action


def test_a_rate_limit_says_how_long_to_wait():
    def wait(retry_after: int | None) -> str:
        return str(refusal(ApiError(429, "rate_limited", "Too many.", retry_after)))

    assert wait(1) == "Too many. Wait 1 second, then retry."
    assert wait(7) == "Too many. Wait 7 seconds, then retry."
    assert wait(None) == "Too many."
