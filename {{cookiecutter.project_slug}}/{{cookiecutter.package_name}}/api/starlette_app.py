"""The API on bare Starlette: a route table, errors as JSON, chunks streamed as they exist.

`StreamingResponse` cancels the iterator when the client disconnects, which is what closes the
provider connection.
"""

from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from .. import chat, llm
from ..errors import ApiError
from ..protocol import HEADERS, read_body
from ..settings import get_settings


def create_app() -> Starlette:
    settings = get_settings()

    async def chat_stream(request: Request) -> StreamingResponse:
        length = request.headers.get("content-length")
        body = await read_body(request.stream(), settings.max_request_bytes, length)
        return StreamingResponse(await chat.open_chat(body, settings), headers=HEADERS)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse(await chat.health(settings))

    async def models(_: Request) -> JSONResponse:
        return JSONResponse(chat.models(settings))

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())

    @asynccontextmanager
    async def lifespan(_: Starlette):
        llm.preload_in_background()
        yield

    return Starlette(
        routes=[
            Route("/api/chat", chat_stream, methods=["POST"]),
            Route("/api/health", health),
            Route("/api/models", models),
        ],
        exception_handlers={ApiError: api_error},
        lifespan=lifespan,
    )
