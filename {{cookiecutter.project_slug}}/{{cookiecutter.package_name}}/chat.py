"""`POST /api/chat`, framework-agnostic: a request body in, UI message stream bytes out.

Adapters call `open_chat` (which raises `ApiError` while a plain HTTP error is still possible),
send `protocol.HEADERS`, and write each yielded chunk as soon as it exists. When the client goes
away the adapter's framework cancels the iterator, and its `finally` closes the provider
connection, so no more tokens are generated or paid for.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress

from . import llm
from .errors import ApiError
from .protocol import DONE, PING, UIMessageStream, parse_chat_request
from .settings import Settings

_HEARTBEAT = object()


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
    return _ui_message_stream(stream, model, started, settings.sse_heartbeat_s)


async def _ui_message_stream(
    stream: llm.CompletionStream, model: str, started: float, heartbeat_s: float
) -> AsyncIterator[bytes]:
    encoder = UIMessageStream(message_id=f"msg-{uuid.uuid4().hex}")
    events = _with_heartbeats(stream, heartbeat_s)
    first_token_at = None
    try:
        yield encoder.start()
        async for event in events:
            if event is _HEARTBEAT:
                yield PING
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
        yield encoder.error(exc.message)
    finally:
        await events.aclose()  # first, so no read of the stream is still pending
        await stream.aclose()
    yield DONE


def _metadata(finish: llm.Finish, model: str, started: float, first_token_at: float | None) -> dict:
    now = time.perf_counter()
    return {
        "model": model,
        "finishReason": finish.reason,
        "usage": {"inputTokens": finish.input_tokens, "outputTokens": finish.output_tokens},
        "ttftMs": round((first_token_at - started) * 1000) if first_token_at else None,
        "durationMs": round((now - started) * 1000),
    }


async def _with_heartbeats(events: AsyncIterator, interval_s: float) -> AsyncIterator:
    """Yield `events`, and `_HEARTBEAT` after each `interval_s` of silence.

    The pending read runs as a task so a heartbeat never cancels it.
    """
    iterator = aiter(events)
    pending = None
    try:
        while True:
            pending = asyncio.ensure_future(anext(iterator))
            while not (await asyncio.wait({pending}, timeout=interval_s))[0]:
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
