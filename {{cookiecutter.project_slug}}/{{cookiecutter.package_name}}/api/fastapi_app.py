"""The API on FastAPI: routes, headers, size limit, and errors as JSON.

Streaming is Starlette's `StreamingResponse`: it writes each chunk as it is yielded and cancels
the iterator when the client disconnects, which is what closes the provider connection.
"""

from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .. import chat, llm
from ..access import Caller
from ..errors import ApiError
from ..protocol import (
    CORS_EXPOSED_HEADERS,
    CORS_METHODS,
    CORS_REQUEST_HEADERS,
    HEADERS,
    ChatRequest,
    read_body,
)
from ..settings import Settings, get_settings

# `/api/chat` reads its body itself, to refuse an oversized one while it arrives, so FastAPI
# cannot infer its request and responses: they are stated here for the OpenAPI document.
CHAT_ERRORS = {
    400: "Invalid JSON, a model outside the allow-list, or the provider refused the request.",
    401: "A missing or wrong bearer token (API_TOKEN), or the provider refused the key.",
    413: "The body exceeds MAX_REQUEST_BYTES, or a file MAX_ATTACHMENT_BYTES, or the files "
    "together MAX_ATTACHMENTS_BYTES.",
    415: "A file of a type ATTACHMENT_TYPES leaves out (as its content shows it to be).",
    422: "An invalid body, too many messages or too long a message, too many files, a file "
    "by URL, or a file of a kind the model cannot read.",
    429: "A rate limit, here or at the provider; see Retry-After.",
    502: "The provider failed or could not be reached.",
    503: "The provider's key is not configured.",
    504: "The provider did not answer within LLM_TIMEOUT_S.",
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
# One server-sent event of the stream (OpenAPI 3.2's `itemSchema` of a sequential media type).
EVENT_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "description": "A UI message chunk as JSON (start, text-start, text-delta, text-end, "
            "reasoning-*, finish, error, abort), then `[DONE]`.",
        }
    },
}


def error_responses(descriptions: dict[int, str]) -> dict:
    """OpenAPI responses for these statuses, each an `{"error": ...}` body."""
    return {
        status: {
            "description": description,
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for status, description in descriptions.items()
    }


RESUME_RESPONSES = {
    200: {
        "description": "The answer from its start, then live.",
        "content": {"text/event-stream": {"itemSchema": EVENT_SCHEMA}},
    },
    204: {"description": "No answer of this chat is kept."},
    **error_responses({status: CHAT_ERRORS[status] for status in (401, 429)}),
}
STOP_RESPONSES = {
    204: {"description": "Stopped: the provider call is closed, its streams end with `abort`."},
    **error_responses({401: CHAT_ERRORS[401], 404: "No answer of this chat is running."}),
}


def create_app() -> FastAPI:
    settings = get_settings()
    core = chat.Chat(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        llm.preload_in_background(settings)
        yield

    app = FastAPI(
        title="{{ cookiecutter.project_name }} API",
        lifespan=lifespan,
        # Under /api/, so that `dev` and `prod`, where the page has every other path, serve them.
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
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
        """Stream the model's answer to the conversation in the body, as an AI SDK UI message
        stream over SSE."""
        length = request.headers.get("content-length")
        body = await read_body(request.stream(), settings.max_request_bytes, length)
        stream = await core.open(body, _caller(request))
        return StreamingResponse(stream, headers=HEADERS)

    @app.get("/api/chat/{chat_id}/stream", response_class=Response, responses=RESUME_RESPONSES)
    async def resume_stream(chat_id: str, request: Request) -> Response:
        """Re-attach to the chat's resumable answer: all of it so far, then live; 204 when
        none is kept."""
        stream = await core.reattach(chat_id, _caller(request))
        if stream is None:
            return Response(status_code=204)
        return StreamingResponse(stream, headers=HEADERS)

    @app.delete("/api/chat/{chat_id}/stream", status_code=204, responses=STOP_RESPONSES)
    async def stop_stream(chat_id: str, request: Request) -> Response:
        """Stop the chat's running answer at once; its streams end with `abort`."""
        await core.stop(chat_id, _caller(request))
        return Response(status_code=204)

    @app.get("/api/health")
    async def health() -> dict:
        return core.health()

    @app.get("/api/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        body = core.metrics(request.headers.get("authorization"))
        return Response(body, media_type=chat.METRICS_CONTENT_TYPE)

    @app.get("/api/models")
    async def models(request: Request) -> dict:
        return core.models(_caller(request))

    # FastAPI's documented way to change the schema.
    app.openapi = _documenting_chat(app, settings)  # type: ignore[method-assign]
    return app


def _documenting_chat(app: FastAPI, settings: Settings) -> Callable[[], dict]:
    """`app.openapi`, with the request and responses of `/api/chat` stated, including this
    server's own limits (the allowed models, the number of messages)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        # FastAPI's own, which keeps it in `app.openapi_schema`.
        document = generate()
        request = ChatRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        request["properties"]["messages"]["maxItems"] = settings.max_messages
        request["properties"]["model"]["anyOf"][0]["enum"] = settings.allowed_models
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas |= {**request.pop("$defs"), "ChatRequest": request}
        document["paths"]["/api/chat"]["post"] |= {
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ChatRequest"}}
                },
            },
            "responses": {
                "200": {
                    "description": "The answer, chunk by chunk.",
                    "content": {"text/event-stream": {"itemSchema": EVENT_SCHEMA}},
                },
                **{str(status): r for status, r in error_responses(CHAT_ERRORS).items()},
            },
        }
        return document

    return openapi


def _caller(request: Request) -> Caller:
    address = request.client.host if request.client else "unknown"
    return Caller(address, request.headers.get("authorization"))
