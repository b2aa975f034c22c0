"""The API on Flask: sync views on a threaded WSGI server (waitress).

The chat core is async (LiteLLM streams with asyncio), so every request drives it through one
event loop that runs in a background thread. The view streams a plain generator that pulls one
chunk at a time from it. When the client disconnects, the WSGI server's next write fails and it
closes the generator, which closes the provider connection; a silent stream notices at its next
heartbeat.
"""

import asyncio
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from typing import Any

from flask import Flask, Response, jsonify, request
from flask_cors import CORS
from werkzeug.exceptions import RequestEntityTooLarge

from .. import chat, llm
from ..access import Caller
from ..errors import ApiError
from ..protocol import (
    CORS_EXPOSED_HEADERS,
    CORS_METHODS,
    CORS_REQUEST_HEADERS,
    HEADERS,
    body_too_large,
)
from ..security import headers_for
from ..settings import get_settings


class EventLoopThread:
    """One asyncio loop in a daemon thread, shared by every request thread.

    Shared rather than one per request, because LiteLLM's HTTP clients belong to the loop
    that created them.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="chat-loop", daemon=True).start()

    def call(self, function: Callable[..., Awaitable], *args: Any) -> Any:
        """Run `function(*args)` on the loop and wait for its result in this thread."""

        async def run():
            return await function(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()


def create_app() -> Flask:
    settings = get_settings()
    core = chat.Chat(settings)
    loop = EventLoopThread()
    llm.preload_in_background(settings)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    if settings.cors_origins:
        CORS(
            app,
            origins=settings.cors_origins,
            methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
        )

    @app.after_request
    def security_headers(response: Response) -> Response:
        https = request.scheme == "https"  # waitress takes it from a trusted proxy's header
        response.headers.update(headers_for(settings, https, response.content_type or ""))
        return response

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify(exc.body()), exc.status, exc.headers()

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_: RequestEntityTooLarge):
        return api_error(body_too_large(settings.max_request_bytes))

    @app.post("/api/chat")
    def chat_stream() -> Response:
        stream = loop.call(core.open, request.get_data(), _caller())
        return Response(_pull(loop, stream), headers=HEADERS)

    @app.get("/api/chat/<chat_id>/stream")
    def resume_stream(chat_id: str) -> Response:
        stream = loop.call(core.reattach, chat_id, _caller())
        if stream is None:
            return Response(status=204)
        return Response(_pull(loop, stream), headers=HEADERS)

    @app.delete("/api/chat/<chat_id>/stream")
    def stop_stream(chat_id: str) -> Response:
        loop.call(core.stop, chat_id, _caller())
        return Response(status=204)

    @app.get("/api/health")
    def health():
        return core.health()

    @app.get("/api/metrics")
    def metrics() -> Response:
        body = core.metrics(request.headers.get("authorization"))
        return Response(body, content_type=chat.METRICS_CONTENT_TYPE)

    @app.get("/api/models")
    def models():
        return core.models(_caller())

    return app


def _caller() -> Caller:
    return Caller(request.remote_addr or "unknown", request.headers.get("authorization"))


def _pull(loop: EventLoopThread, stream: AsyncGenerator[bytes]) -> Iterator[bytes]:
    """Iterate an async stream from a WSGI thread; closing the generator closes the stream."""
    try:
        while (chunk := loop.call(anext, stream, None)) is not None:
            yield chunk
    finally:
        loop.call(stream.aclose)
