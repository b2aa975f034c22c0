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
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from .. import chat, llm
from ..errors import ApiError
from ..protocol import HEADERS, body_too_large
from ..settings import get_settings


def _error(exc: ApiError) -> JsonResponse:
    return JsonResponse(exc.body(), status=exc.status, headers=exc.headers())


@require_POST
async def chat_stream(request: HttpRequest):
    settings = get_settings()
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(body_too_large(settings.max_request_bytes))
    try:
        stream = await chat.open_chat(body, settings)
    except ApiError as exc:
        return _error(exc)
    return StreamingHttpResponse(stream, headers=HEADERS)


@require_GET
async def health(_: HttpRequest) -> JsonResponse:
    return JsonResponse(await chat.health(get_settings()))


@require_GET
async def models(_: HttpRequest) -> JsonResponse:
    return JsonResponse(chat.models(get_settings()))


urlpatterns = [
    path("api/chat", chat_stream),
    path("api/health", health),
    path("api/models", models),
]


def create_app():
    settings = get_settings()
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
    llm.preload_in_background()
    return get_asgi_application()
