"""The provider layer: chunks of either shape become events, LiteLLM's errors become ApiErrors."""

import asyncio
from types import SimpleNamespace

import httpx
import pytest

from {{ cookiecutter.package_name }}.llm import (
    Finish,
    ReasoningDelta,
    TextDelta,
    _Ending,
    _events_of,
    _rehearse,
    file_kinds,
    litellm,
    never_answered,
    provider_error,
)
from {{ cookiecutter.package_name }}.settings import Settings


def events(*chunks) -> tuple[list, Finish]:
    ending = _Ending()
    return [event for chunk in chunks for event in _events_of(chunk, ending)], ending.finish()


def openai_chunk(content=None, reasoning=None, finish_reason=None, usage=None):
    delta = SimpleNamespace(content=content, reasoning_content=reasoning)
    choices = [SimpleNamespace(delta=delta, finish_reason=finish_reason)] if not usage else []
    return SimpleNamespace(choices=choices, usage=usage)


def test_openai_shaped_chunks_give_reasoning_text_and_how_the_answer_ended():
    usage = SimpleNamespace(prompt_tokens=7, completion_tokens=2)
    assert events(
        openai_chunk(reasoning="Hm."),
        openai_chunk(content="Hel"),
        openai_chunk(content=""),
        openai_chunk(content="lo", finish_reason="length"),
        openai_chunk(usage=usage),
    ) == ([ReasoningDelta("Hm."), TextDelta("Hel"), TextDelta("lo")], Finish("length", 7, 2))


def test_generic_chunks_of_a_custom_provider_give_text_and_usage():
    usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    assert events(
        {"text": "Hi", "is_finished": False, "finish_reason": "", "usage": None},
        {"text": "", "is_finished": True, "finish_reason": "stop", "usage": usage},
    ) == ([TextDelta("Hi")], Finish("stop", 5, 1))


def test_an_answer_without_usage_or_finish_reason_ends_with_stop_and_no_counts():
    assert events(openai_chunk(content="Hi")) == ([TextDelta("Hi")], Finish("stop", None, None))


def provider_failures():
    errors = litellm().exceptions
    about = {"model": "fake", "llm_provider": "openai"}
    rate_limited = errors.RateLimitError("slow down", **about)
    rate_limited.litellm_response_headers = {"retry-after": "7"}
    unreachable = errors.APIConnectionError("connection refused", **about)
    unreachable.__cause__ = httpx.ConnectError("[Errno 111] Connection refused")
    return [
        (errors.Timeout("timed out", **about), 504, "upstream_timeout", None),
        (
            errors.AuthenticationError("sk-secret-key-123 is wrong", **about),
            401,
            "upstream_auth",
            None,
        ),
        (rate_limited, 429, "upstream_rate_limited", 7),
        (errors.RateLimitError("slow down", **about), 429, "upstream_rate_limited", 5),
        (errors.ContextWindowExceededError("too long", **about), 400, "context_too_long", None),
        (errors.NotFoundError("no such model", **about), 400, "unknown_model", None),
        (errors.BadRequestError("bad", **about), 400, "upstream_bad_request", None),
        (unreachable, 502, "upstream_unreachable", None),
        (errors.APIError(500, "sk-secret-key-123 traceback", **about), 502, "upstream_error", None),
        (
            errors.MidStreamFallbackError(
                "mid-stream", original_exception=errors.Timeout("timed out", **about), **about
            ),
            504,
            "upstream_timeout",
            None,
        ),
    ]


@pytest.mark.parametrize(
    ("failure", "status", "type", "retry_after"),
    provider_failures(),
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_provider_failures_become_api_errors_that_leak_nothing(failure, status, type, retry_after):
    error = provider_error(failure)
    assert (error.status, error.type, error.retry_after) == (status, type, retry_after)
    assert "sk-secret" not in error.message
    assert "traceback" not in error.message


def failure_caused_by(cause: BaseException) -> Exception:
    about = {"model": "fake", "llm_provider": "openai"}
    failure = litellm().exceptions.InternalServerError("Connection error.", **about)
    failure.__cause__ = cause
    return failure


@pytest.mark.parametrize(
    ("cause", "sent_again"),
    [
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
        (httpx.ReadError("Server disconnected"), True),  # the same, through aiohttp
        (httpx.ConnectError("[Errno 111] Connection refused"), True),
        (ConnectionResetError(104, "Connection reset by peer"), True),
        (httpx.ReadTimeout("timed out"), False),  # it may be working on the answer
        (ValueError("a bug"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_only_a_request_the_provider_never_answered_is_sent_again(cause, sent_again):
    assert never_answered(failure_caused_by(cause)) is sent_again
    assert not never_answered(litellm().exceptions.APIError(500, "failed", "fake", "openai"))


def test_the_start_up_rehearsal_answers_without_a_request(monkeypatch):
    """Without a key a real request would fail: the rehearsal's answer is LiteLLM's mock."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    asyncio.run(_rehearse(litellm()))


@pytest.mark.parametrize(
    ("model", "kinds"),
    [
        ("openai/gpt-4.1-mini", {"text", "image", "pdf"}),
        ("anthropic/claude-sonnet-4-5", {"text", "image", "pdf"}),
        ("groq/llama-3.1-8b-instant", {"text"}),
        ("local/smollm2-135m", {"text"}),
        ("openai/my-vllm-model", {"text", "image"}),  # VISION_MODELS says so
        ("nonsense", {"text"}),
    ],
)
async def test_which_files_a_model_reads_litellm_knows_and_settings_add_to(model, kinds):
    settings = Settings(vision_models=["openai/my-vllm-model"])
    assert await file_kinds(model, settings) == kinds
