"""The API on FastAPI: routes, headers, size limit, and errors as JSON.

Streaming is Starlette's `StreamingResponse`: it writes each chunk as it is yielded and cancels
the iterator when the client disconnects, which is what closes the provider connection.
"""

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from .. import llm
from ..chat import open_chat
from ..errors import ApiError
from ..protocol import HEADERS
from ..settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        llm.preload_in_background()
        yield

    app = FastAPI(title="{{ cookiecutter.project_name }} API", lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())

    @app.post("/api/chat")
    async def chat(request: Request) -> StreamingResponse:
        body = await _read_body(request, settings.max_request_bytes)
        return StreamingResponse(await open_chat(body, settings), headers=HEADERS)

    @app.get("/api/health")
    async def health() -> dict:
        model = await llm.describe(settings.llm_model, settings)
        return {"status": "ok", **model, "api_key_configured": not model["missing_env"]}

    @app.get("/api/models")
    async def models() -> dict:
        return {"default": settings.llm_model, "models": settings.allowed_models}

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    too_large = ApiError(413, "body_too_large", f"The request body exceeds {limit} bytes.")
    if int(request.headers.get("content-length") or 0) > limit:
        raise too_large
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise too_large
    return bytes(body)
