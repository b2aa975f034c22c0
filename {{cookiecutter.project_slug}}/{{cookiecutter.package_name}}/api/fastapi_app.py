"""The API on FastAPI: routes, headers, size limit, and errors as JSON.

Streaming is Starlette's `StreamingResponse`: it writes each chunk as it is yielded and cancels
the iterator when the client disconnects, which is what closes the provider connection.
"""

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse

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


def create_app() -> FastAPI:
    settings = get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        llm.preload_in_background()
        yield

    app = FastAPI(title="{{ cookiecutter.project_name }} API", lifespan=lifespan)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
        )

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())

    @app.post("/api/chat")
    async def chat_stream(request: Request) -> StreamingResponse:
        length = request.headers.get("content-length")
        body = await read_body(request.stream(), settings.max_request_bytes, length)
        stream = await chat.open_chat(body, settings, _caller(request))
        return StreamingResponse(stream, headers=HEADERS)

    @app.get("/api/health")
    async def health() -> dict:
        return await chat.health(settings)

    @app.get("/api/models")
    async def models(request: Request) -> dict:
        return chat.models(settings, _caller(request))

    return app


def _caller(request: Request) -> Caller:
    address = request.client.host if request.client else "unknown"
    return Caller(address, request.headers.get("authorization"))
