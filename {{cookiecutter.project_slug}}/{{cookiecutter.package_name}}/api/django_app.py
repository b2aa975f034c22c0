"""The API on Django: async views, a URLconf and a minimal settings module, all in this file.

`StreamingHttpResponse` over an async iterator, served by an ASGI server: when the client
disconnects, Django cancels the view's response, which is what closes the provider connection.
No database, sessions or admin are configured; the API needs none.
"""

import secrets

import django
from django.conf import settings as django_settings
from django.core.asgi import get_asgi_application
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from starlette.middleware.cors import CORSMiddleware

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


def _error(exc: ApiError) -> JsonResponse:
    return JsonResponse(exc.body(), status=exc.status, headers=exc.headers())


def _urlpatterns(core: chat.Chat) -> list:
    @require_POST
    async def chat_stream(request: HttpRequest):
        try:
            body = request.body
        except RequestDataTooBig:
            return _error(body_too_large(core.settings.max_request_bytes))
        try:
            stream = await core.open(body, _caller(request))
        except ApiError as exc:
            return _error(exc)
        return StreamingHttpResponse(stream, headers=HEADERS)

    @require_http_methods(["GET", "DELETE"])
    async def answer_stream(request: HttpRequest, chat_id: str):
        """GET re-attaches to the chat's resumable answer (204 when none is kept); DELETE
        stops it."""
        try:
            if request.method == "DELETE":
                await core.stop(chat_id, _caller(request))
                return HttpResponse(status=204)
            stream = await core.reattach(chat_id, _caller(request))
        except ApiError as exc:
            return _error(exc)
        if stream is None:
            return HttpResponse(status=204)
        return StreamingHttpResponse(stream, headers=HEADERS)

    @require_GET
    async def health(_: HttpRequest) -> JsonResponse:
        return JsonResponse(core.health())

    @require_GET
    async def metrics(request: HttpRequest) -> HttpResponse:
        try:
            body = core.metrics(request.headers.get("authorization"))
        except ApiError as exc:
            return _error(exc)
        return HttpResponse(body, content_type=chat.METRICS_CONTENT_TYPE)

    @require_GET
    async def models(request: HttpRequest) -> JsonResponse:
        try:
            return JsonResponse(core.models(_caller(request)))
        except ApiError as exc:
            return _error(exc)

    return [
        path("api/chat", chat_stream),
        path("api/chat/<str:chat_id>/stream", answer_stream),
        path("api/health", health),
        path("api/metrics", metrics),
        path("api/models", models),
    ]


def _caller(request: HttpRequest) -> Caller:
    address = request.META.get("REMOTE_ADDR") or "unknown"
    return Caller(address, request.headers.get("authorization"))


# The URLconf (ROOT_URLCONF is this module), filled by `create_app`. Django has one URLconf
# per process, so one app per process, as the servers run it.
urlpatterns: list = []


def create_app():
    settings = get_settings()
    urlpatterns[:] = _urlpatterns(chat.Chat(settings))
    if not django_settings.configured:
        django_settings.configure(
            DEBUG=False,
            # Nothing is signed or stored across restarts, so a per-process key is enough.
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            DATA_UPLOAD_MAX_MEMORY_SIZE=settings.max_request_bytes,
            # No CSRF, sessions or compression: the API takes JSON from any client and must
            # not buffer its stream.
            MIDDLEWARE=[],
        )
        django.setup()
    # Django speaks no ASGI lifespan: start importing LiteLLM here instead.
    llm.preload_in_background(settings)
    app = get_asgi_application()
    if not settings.cors_origins:
        return app
    # Django has no CORS of its own; Starlette's ASGI middleware (a Reflex dependency) wraps it.
    return CORSMiddleware(
        app,
        allow_origins=settings.cors_origins,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
    )
