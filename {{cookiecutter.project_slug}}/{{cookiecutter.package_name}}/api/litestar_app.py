"""The API on Litestar: route handlers, a `Stream` response, errors as JSON.

Litestar's `Stream` listens for the client's disconnect while it sends and cancels the
iterator, which is what closes the provider connection. The body limit is Litestar's own
`request_max_body_size`.
"""

from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.response import Stream
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

from .. import chat, llm
from ..errors import ApiError
from ..protocol import HEADERS, body_too_large
from ..settings import get_settings


def create_app() -> Litestar:
    settings = get_settings()

    @post("/api/chat", status_code=200)
    async def chat_stream(request: Request) -> Stream:
        body = await request.body()
        return Stream(await chat.open_chat(body, settings), headers=HEADERS)

    @get("/api/health")
    async def health() -> dict:
        return await chat.health(settings)

    @get("/api/models")
    async def models() -> dict:
        return chat.models(settings)

    def api_error(_: Request, exc: ApiError) -> Response:
        return Response(exc.body(), status_code=exc.status, headers=exc.headers())

    def too_large(request: Request, _: HTTPException) -> Response:
        return api_error(request, body_too_large(settings.max_request_bytes))

    return Litestar(
        route_handlers=[chat_stream, health, models],
        exception_handlers={ApiError: api_error, HTTP_413_REQUEST_ENTITY_TOO_LARGE: too_large},
        request_max_body_size=settings.max_request_bytes,
        on_startup=[llm.preload_in_background],
    )
