"""Read `POST /api/chat` as a client: the UI message stream in, text deltas and tool calls out."""

import contextlib
import dataclasses
import functools
import json
import ssl
from collections.abc import AsyncIterator

import httpx
import reflex as rx
from httpx_sse import aconnect_sse

from {{ cookiecutter.package_name }}.settings import Settings


class AnswerError(Exception):
    """The API refused the question or the model failed mid-answer; the text is user-facing.

    `action` is what the page offers next to it: `retry` (ask again), `edit` (the question
    must change first), `new_chat` (this conversation cannot go on) or `configure` (the text
    says what to set; asking again cannot help).
    """

    def __init__(self, message: str, action: str = "retry") -> None:
        super().__init__(message)
        self.action = action


@dataclasses.dataclass
class ToolCall:
    """A tool call of an answer, as the page shows it."""

    id: str
    name: str
    arguments: str = ""  # JSON, once complete
    state: str = "running"  # running | done | error
    result: str = ""  # the output (JSON unless text), or the error


# What the page shows of a tool call: its start, its arguments, its outcome.
TOOL_CHUNKS = {
    "tool-input-start",
    "tool-input-available",
    "tool-output-available",
    "tool-output-error",
}

# Refusals the page words itself, with what it offers.
OWN_WORDING = {
    "unauthorized": (
        "The API refused this page's token: give the page and the API the same API_TOKEN.",
        "configure",
    ),
    "body_too_large": (
        "This conversation is too large to send: edit the question, or start a new chat.",
        "edit",
    ),
    "too_many_messages": ("This conversation has reached the API's limit of messages.", "new_chat"),
}
CHECK_THE_KEY = "Check its API key in .env and restart the app."
EDIT_IT = "Edit it and send it again."


def api_client(settings: Settings, timeout: httpx.Timeout | float) -> httpx.AsyncClient:
    """A client of the API: at `API_URL` (else this backend's own port), with `API_TOKEN`."""
    base_url = settings.api_url or f"http://127.0.0.1:{rx.config.get_config().backend_port}"
    token = settings.api_token
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    return httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=timeout, verify=_tls_context()
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Made once a process: loading the CA certificates blocks the event loop for ~25 ms here,
    which a client made per answer paid each time (20 chats asked at once on 2 cores waited
    1.2 s for their first token, most of it behind this)."""
    return httpx.create_ssl_context()


async def stream_answer(
    settings: Settings,
    messages: list[dict],
    model: str | None = None,
    chat_id: str | None = None,
    timeout_s: float = 60.0,
) -> AsyncIterator[str | dict]:
    """Yield each text delta as it arrives, each tool call as it starts and as it ends
    (`ToolCall`, a copy each time), then the `finish` metadata dict.

    With a `chat_id` the answer is resumable: a connection lost mid-answer is re-attached
    once, and leaving the iteration early lets the API go on for `RESUME_GRACE_S` (`stop_answer`
    ends it at once). Without, leaving early closes the connection, which is what makes the
    API abort the upstream call.
    """
    body = {"messages": messages, **({"model": model} if model else {})}
    if chat_id:
        body |= {"id": chat_id, "resumable": True}
    calls: dict[str, ToolCall] = {}
    async with api_client(settings, httpx.Timeout(timeout_s, connect=5.0)) as client:
        async for chunk in _chunks(client, body, chat_id):
            match chunk["type"]:
                case "text-delta":
                    yield chunk["delta"]
                case kind if kind in TOOL_CHUNKS:
                    yield _tool_call(calls, chunk)
                case "finish":
                    yield chunk.get("messageMetadata") or {}
                case "error":
                    raise AnswerError(chunk["errorText"])
                case "abort":
                    raise AnswerError("The server stopped this answer.")


async def _chunks(
    client: httpx.AsyncClient, body: dict, chat_id: str | None
) -> AsyncIterator[dict]:
    """The answer's chunks up to `[DONE]`, from `POST /api/chat`; for a resumable answer whose
    connection is lost, the rest from `GET /api/chat/{id}/stream` (which starts over)."""
    seen = 0
    try:
        async with aconnect_sse(client, "POST", "/api/chat", json=body) as source:
            if source.response.status_code != 200:
                raise await _refusal_of(source.response)
            async for chunk in _read(source):
                seen += 1
                yield chunk
            return
    except (httpx.ReadError, httpx.RemoteProtocolError):
        if not (chat_id and seen):
            raise
    async with aconnect_sse(client, "GET", f"/api/chat/{chat_id}/stream") as source:
        if source.response.status_code != 200:
            raise AnswerError("The connection to the API was lost mid-answer.")
        replayed = 0
        async for chunk in _read(source):
            replayed += 1
            if replayed > seen:
                yield chunk


async def _read(source) -> AsyncIterator[dict]:
    async for event in source.aiter_sse():
        if event.data == "[DONE]":
            return
        yield json.loads(event.data)
    raise AnswerError("The connection closed before the answer was complete.")


async def stop_answer(settings: Settings, chat_id: str) -> None:
    """End a resumable answer at once (`DELETE /api/chat/{id}/stream`). One that has ended is
    no error, nor is an API out of reach: it stops the answer itself after `RESUME_GRACE_S`."""
    async with api_client(settings, timeout=5) as client:
        with contextlib.suppress(httpx.HTTPError):
            await client.delete(f"/api/chat/{chat_id}/stream")


def _tool_call(calls: dict[str, ToolCall], chunk: dict) -> ToolCall:
    """The call `chunk` is about, updated by it."""
    call = calls.setdefault(chunk["toolCallId"], ToolCall(chunk["toolCallId"], ""))
    match chunk["type"]:
        case "tool-input-start":
            call.name = chunk["toolName"]
        case "tool-input-available":
            call.name, call.arguments = chunk["toolName"], json.dumps(chunk["input"])
        case "tool-output-available":
            output = chunk["output"]
            call.state = "done"
            call.result = output if isinstance(output, str) else json.dumps(output)
        case "tool-output-error":
            call.state, call.result = "error", chunk["errorText"]
    return dataclasses.replace(call)


async def _refusal_of(response: httpx.Response) -> AnswerError:
    """The API's refusal before the stream, as the page shows it."""
    await response.aread()
    try:
        error = response.json()["error"]
        message, kind = error["message"], error["type"]
    except (ValueError, KeyError, TypeError):
        message, kind = f"The API answered HTTP {response.status_code}.", ""
    return refusal(response.status_code, kind, message, response.headers.get("Retry-After"))


def refusal(status: int, kind: str, message: str, retry_after: str | None = None) -> AnswerError:
    """Say what to do about a refusal: retry (after the wait), shorten the question, start a
    new chat, or configure the server."""
    if kind in OWN_WORDING:
        return AnswerError(*OWN_WORDING[kind])
    match kind:
        case "upstream_auth":
            return AnswerError(f"{message} {CHECK_THE_KEY}", "configure")
        case "missing_configuration":
            return AnswerError(message, "configure")
        case "message_too_long":
            # The API names a JSON path ("messages.3: at most 8000 characters are accepted.").
            limit = message.partition(": ")[2].rstrip(".")
            return AnswerError(f"The question is too long ({limit}). {EDIT_IT}", "edit")
        case "context_too_long":
            return AnswerError(message, "new_chat")
    if status == 429 and retry_after and retry_after.isdigit():
        seconds = int(retry_after)
        return AnswerError(f"{message} Wait {seconds} second{'s' * (seconds != 1)}, then retry.")
    return AnswerError(message)
