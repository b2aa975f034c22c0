"""The API on bare Starlette: a route table, errors as JSON, chunks streamed as they exist.

`StreamingResponse` cancels the iterator when the client disconnects, which is what closes the
provider connection.
"""

from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import chat, llm
from ..access import Caller
from ..errors import ApiError
from ..protocol import (
    CORS_EXPOSED_HEADERS,
    CORS_METHODS,
    CORS_REQUEST_HEADERS,
    HEADERS,
    read_body,
)
from ..settings import get_settings


def create_app() -> Starlette:
    settings = get_settings()
    core = chat.Chat(settings)

    async def chat_stream(request: Request) -> StreamingResponse:
        length = request.headers.get("content-length")
        body = await read_body(request.stream(), settings.max_request_bytes, length)
        stream = await core.open(body, _caller(request))
        return StreamingResponse(stream, headers=HEADERS)

    async def resume_stream(request: Request) -> Response:
        stream = await core.reattach(request.path_params["chat_id"], _caller(request))
        if stream is None:
            return Response(status_code=204)
        return StreamingResponse(stream, headers=HEADERS)

    async def stop_stream(request: Request) -> Response:
        await core.stop(request.path_params["chat_id"], _caller(request))
        return Response(status_code=204)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse(core.health())

    async def metrics(request: Request) -> Response:
        body = core.metrics(request.headers.get("authorization"))
        return Response(body, media_type=chat.METRICS_CONTENT_TYPE)

    async def models(request: Request) -> JSONResponse:
        return JSONResponse(core.models(_caller(request)))

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())

    @asynccontextmanager
    async def lifespan(_: Starlette):
        llm.preload_in_background(settings)
        yield

    cors = Middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
    )
    return Starlette(
        routes=[
            Route("/api/chat", chat_stream, methods=["POST"]),
            Route("/api/chat/{chat_id}/stream", resume_stream, methods=["GET"]),
            Route("/api/chat/{chat_id}/stream", stop_stream, methods=["DELETE"]),
            Route("/api/health", health),
            Route("/api/metrics", metrics),
            Route("/api/models", models),
        ],
        middleware=[cors] if settings.cors_origins else [],
        exception_handlers={ApiError: api_error},
        lifespan=lifespan,
    )


def _caller(request: Request) -> Caller:
    address = request.client.host if request.client else "unknown"
    return Caller(address, request.headers.get("authorization"))
