"""Running an ASGI adapter: alone on uvicorn, or mounted into the Reflex backend."""

import asyncio
from collections.abc import Callable

import uvicorn
from uvicorn.supervisors import ChangeReload

from .. import mcp_tools, telemetry
from ..security import ASGIApp, Scope, SecurityHeaders
from ..settings import Settings, get_settings
from ..shutdown import shutdown


class _Server(uvicorn.Server):
    """uvicorn, telling open streams to end with `abort` as soon as shutdown begins, and
    ending the MCP servers' sessions (and sending the last telemetry) once they have."""

    async def shutdown(self, sockets=None) -> None:
        shutdown.begin()
        await super().shutdown(sockets)
        await asyncio.to_thread(mcp_tools.close_all)
        await asyncio.to_thread(telemetry.flush_all)


def serve(host: str, port: int, reload: bool) -> None:
    get_settings()  # loads .env, which may set FORWARDED_ALLOW_IPS, before uvicorn reads it
    config = uvicorn.Config(
        f"{__name__}:create_app_alone",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    if reload:
        ChangeReload(config, target=server.run, sockets=[config.bind_socket()]).run()
    else:
        server.run()


def traced(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The app with a span per request (OpenTelemetry's middleware), when tracing."""
    if not settings.otel_exporter_otlp_endpoint:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    # Not a span per `send`: that would be one per chunk of every answer.
    with_spans = OpenTelemetryMiddleware(
        app, excluded_urls="api/health,api/metrics", exclude_spans=["receive", "send"]
    )

    async def with_providers(scope: Scope, receive: Callable, send: Callable) -> None:
        telemetry.for_process(settings)  # set up before the request's span begins
        await with_spans(scope, receive, send)

    return with_providers


def create_app_alone() -> ASGIApp:
    """The API as `api` serves it, with the security headers (`dev` and `prod` send them for
    the page and the API together)."""
    from . import create_app

    settings = get_settings()
    return SecurityHeaders(traced(create_app(), settings), settings, page=False)


def mount_into_reflex(api: ASGIApp) -> Callable[[ASGIApp], ASGIApp]:
    """An `rx.App(api_transformer=...)`: `/api/*` goes to the API, the rest to Reflex.

    The scope is passed on untouched, so the API sees the same paths as when it runs alone.
    """

    api = traced(api, get_settings())

    def transform(reflex_backend: ASGIApp) -> ASGIApp:
        async def app(scope: Scope, receive: Callable, send: Callable) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/api/"):
                await api(scope, receive, send)
            else:
                await reflex_backend(scope, receive, send)

        return app

    return transform
