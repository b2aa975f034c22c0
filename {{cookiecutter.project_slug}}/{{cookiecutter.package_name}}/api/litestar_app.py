"""The API on Litestar: route handlers, a `Stream` response, errors as JSON.

Litestar's `Stream` listens for the client's disconnect while it sends and cancels the
iterator, which is what closes the provider connection. The body limit is Litestar's own
`request_max_body_size`.
"""

from litestar import Litestar, Request, Response, delete, get, post
from litestar.config.cors import CORSConfig
from litestar.exceptions import HTTPException
from litestar.response import Stream
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

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
from ..settings import get_settings


def create_app() -> Litestar:
    settings = get_settings()
    core = chat.Chat(settings)

    @post("/api/chat", status_code=200)
    async def chat_stream(request: Request) -> Stream:
        body = await request.body()
        return Stream(await core.open(body, _caller(request)), headers=HEADERS)

    @get("/api/chat/{chat_id:str}/stream")
    async def resume_stream(request: Request, chat_id: str) -> Response | Stream:
        stream = await core.reattach(chat_id, _caller(request))
        if stream is None:
            return Response(None, status_code=204)
        return Stream(stream, headers=HEADERS)

    @delete("/api/chat/{chat_id:str}/stream")
    async def stop_stream(request: Request, chat_id: str) -> None:
        await core.stop(chat_id, _caller(request))

    @get("/api/health")
    async def health() -> dict:
        return core.health()

    @get("/api/metrics")
    async def metrics(request: Request) -> Response[bytes]:
        body = core.metrics(request.headers.get("authorization"))
        return Response(body, media_type=chat.METRICS_CONTENT_TYPE)

    @get("/api/models")
    async def models(request: Request) -> dict:
        return core.models(_caller(request))

    def api_error(_: Request, exc: ApiError) -> Response:
        return Response(exc.body(), status_code=exc.status, headers=exc.headers())

    def too_large(request: Request, _: HTTPException) -> Response:
        return api_error(request, body_too_large(settings.max_request_bytes))

    cors = CORSConfig(
        allow_origins=settings.cors_origins,
        allow_methods=[*CORS_METHODS],  # a list of its own method names, for its types
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
    )
    return Litestar(
        route_handlers=[chat_stream, resume_stream, stop_stream, health, metrics, models],
        cors_config=cors if settings.cors_origins else None,
        exception_handlers={ApiError: api_error, HTTP_413_REQUEST_ENTITY_TOO_LARGE: too_large},
        request_max_body_size=settings.max_request_bytes,
        on_startup=[lambda: llm.preload_in_background(settings)],
    )


def _caller(request: Request) -> Caller:
    address = request.client.host if request.client else "unknown"
    return Caller(address, request.headers.get("authorization"))
