"""Read `POST /api/chat` as a client: the UI message stream in, text deltas out."""

import json
from collections.abc import AsyncIterator

import httpx
import reflex as rx
from httpx_sse import aconnect_sse

from {{ cookiecutter.package_name }}.settings import Settings


class AnswerError(Exception):
    """The API refused the question or the model failed mid-answer; the text is user-facing."""


def api_client(settings: Settings, timeout: httpx.Timeout | float) -> httpx.AsyncClient:
    """A client of the API: at `API_URL` (else this backend's own port), with `API_TOKEN`."""
    base_url = settings.api_url or f"http://127.0.0.1:{rx.config.get_config().backend_port}"
    token = settings.api_token
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout)


async def stream_answer(
    settings: Settings, messages: list[dict], model: str | None = None, timeout_s: float = 60.0
) -> AsyncIterator[str | dict]:
    """Yield each text delta as it arrives, then the `finish` metadata dict.

    Leaving the iteration early (Stop, cancellation) closes the connection, which is what
    makes the API abort the upstream call.
    """
    body = {"messages": messages, **({"model": model} if model else {})}
    async with (
        api_client(settings, httpx.Timeout(timeout_s, connect=5.0)) as client,
        aconnect_sse(client, "POST", "/api/chat", json=body) as source,
    ):
        if source.response.status_code != 200:
            raise AnswerError(await _error_message(source.response))
        async for event in source.aiter_sse():
            if event.data == "[DONE]":
                return
            chunk = json.loads(event.data)
            match chunk["type"]:
                case "text-delta":
                    yield chunk["delta"]
                case "finish":
                    yield chunk.get("messageMetadata") or {}
                case "error":
                    raise AnswerError(chunk["errorText"])
                case "abort":
                    raise AnswerError("The server stopped this answer.")
    raise AnswerError("The connection closed before the answer was complete.")


async def _error_message(response: httpx.Response) -> str:
    await response.aread()
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"The API answered HTTP {response.status_code}."
