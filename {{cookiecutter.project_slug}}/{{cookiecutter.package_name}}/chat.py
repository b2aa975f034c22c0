"""The routes, framework-agnostic. `POST /api/chat`: a request body in, UI message stream out.

Adapters call `open_chat` (which raises `ApiError` while a plain HTTP error is still possible),
send `protocol.HEADERS`, and write each yielded chunk as soon as it exists. When the client goes
away the adapter's framework cancels or closes the iterator, and its `finally` closes the
provider connection, so no more tokens are generated or paid for. When the server shuts down
(`shutdown.begin()`), open streams end at once with an `abort` chunk.
"""

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress

from . import llm
from .errors import ApiError
from .protocol import DONE, PING, UIMessageStream, parse_chat_request
from .settings import Settings

_HEARTBEAT = object()
_SHUTDOWN = object()


class ShutdownNotice:
    """Tells open streams that the server is shutting down; `begin()` is safe from any thread.

    Servers call it when they stop accepting connections, before they wait for open ones, so a
    client gets a clean `abort` instead of a connection cut in the middle of an answer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[asyncio.Future] = set()
        self._started = False

    @property
    def open_streams(self) -> int:
        return len(self._waiters)

    def begin(self) -> None:
        with self._lock:
            self._started = True
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.get_loop().call_soon_threadsafe(_resolve, waiter)

    @contextmanager
    def watch(self) -> Iterator[asyncio.Future]:
        """A future resolved when shutdown begins, for as long as one stream is open."""
        waiter = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters.add(waiter)
            if self._started:
                _resolve(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                self._waiters.discard(waiter)


def _resolve(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


shutdown = ShutdownNotice()


async def open_chat(body: bytes, settings: Settings) -> AsyncIterator[bytes]:
    request = parse_chat_request(body)
    model = request.model or settings.llm_model
    if model not in settings.allowed_models:
        raise ApiError(
            400,
            "model_not_allowed",
            f"model {model!r} is not allowed; choose one of: {', '.join(settings.allowed_models)}.",
        )
    started = time.perf_counter()
    stream = await llm.open_stream(request.llm_messages(), model, settings)
    chunks = _ui_message_stream(stream, model, started, settings.sse_heartbeat_s)
    # Some providers (Gemini) only answer the request once the stream is read: wait for the
    # first chunk, so a refusal within the first heartbeat is still a plain HTTP error.
    first = await anext(chunks)
    return _prepend(first, chunks)


async def health(settings: Settings) -> dict:
    """`GET /api/health`: alive, which model and provider, and whether its key is configured."""
    model = await llm.describe(settings.llm_model, settings)
    return {"status": "ok", **model, "api_key_configured": not model["missing_env"]}


def models(settings: Settings) -> dict:
    """`GET /api/models`: the allow-list, default first."""
    return {"default": settings.llm_model, "models": settings.allowed_models}


async def _ui_message_stream(
    stream: llm.CompletionStream, model: str, started: float, heartbeat_s: float
) -> AsyncIterator[bytes]:
    encoder = UIMessageStream(message_id=f"msg-{uuid.uuid4().hex}")
    first_token_at = None
    announced = False
    with shutdown.watch() as stopping:
        events = _paced(stream, heartbeat_s, stopping)
        try:
            async for event in events:
                if not announced:
                    announced = True
                    yield encoder.start()
                if event is _HEARTBEAT:
                    yield PING
                    continue
                if event is _SHUTDOWN:
                    yield encoder.abort()
                    continue
                match event:
                    case llm.TextDelta(text):
                        first_token_at = first_token_at or time.perf_counter()
                        yield encoder.text(text)
                    case llm.ReasoningDelta(text):
                        first_token_at = first_token_at or time.perf_counter()
                        yield encoder.reasoning(text)
                    case llm.Finish():
                        yield encoder.finish(_metadata(event, model, started, first_token_at))
        except ApiError as exc:
            if not announced:
                raise  # nothing is sent yet: the adapter answers with an HTTP error
            yield encoder.error(exc.message)
        finally:
            await events.aclose()  # first, so no read of the stream is still pending
            await stream.aclose()
    yield DONE


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()


def _metadata(finish: llm.Finish, model: str, started: float, first_token_at: float | None) -> dict:
    now = time.perf_counter()
    return {
        "model": model,
        "finishReason": finish.reason,
        "usage": {"inputTokens": finish.input_tokens, "outputTokens": finish.output_tokens},
        "ttftMs": round((first_token_at - started) * 1000) if first_token_at else None,
        "durationMs": round((now - started) * 1000),
    }


async def _paced(
    events: AsyncIterator, heartbeat_s: float, stopping: asyncio.Future
) -> AsyncIterator:
    """Yield `events`, `_HEARTBEAT` after each `heartbeat_s` of silence, and `_SHUTDOWN` once
    `stopping` resolves.

    The pending read runs as a task so a heartbeat never cancels it.
    """
    iterator = aiter(events)
    pending = None
    try:
        while True:
            pending = asyncio.ensure_future(anext(iterator))
            while True:
                done, _ = await asyncio.wait(
                    {pending, stopping}, timeout=heartbeat_s, return_when=asyncio.FIRST_COMPLETED
                )
                if pending in done:
                    break
                if stopping in done:
                    yield _SHUTDOWN
                    return
                yield _HEARTBEAT
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            yield event
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with suppress(asyncio.CancelledError):
                await pending
