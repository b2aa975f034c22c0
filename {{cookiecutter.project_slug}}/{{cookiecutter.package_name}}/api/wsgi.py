"""Running the Flask adapter on waitress (threads); hupper restarts it on code changes."""

import _thread
import signal
import threading
import time
from collections.abc import Callable

import waitress

from .. import telemetry
from ..settings import Settings, forwarded_allow_ips, get_settings
from ..shutdown import shutdown
from .flask_app import create_app

# Each open stream holds one server thread for its whole duration.
THREADS = 64
GRACE_S = 5.0


def serve(host: str, port: int, reload: bool) -> None:
    if reload:
        import hupper

        # This process only watches files: it runs `serve(..., reload=False)` in a worker process
        # and restarts that when a file the worker imported changes. It never returns.
        hupper.start_reloader(
            f"{__name__}.serve",
            worker_kwargs={"host": host, "port": port, "reload": False},
            shutdown_interval=GRACE_S + 1,
        )
    app = create_app()  # loads .env first, which may set FORWARDED_ALLOW_IPS
    server = waitress.create_server(
        traced(app, get_settings()),
        host=host,
        port=port,
        threads=THREADS,
        # Behind a proxy the client is who the proxy says (uvicorn's variable, for one setting).
        trusted_proxy=forwarded_allow_ips(),
        trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto"},
        clear_untrusted_proxy_headers=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: _shut_down_gracefully())
    # Started in the background (`&`, nohup, some supervisors) a process inherits SIGINT
    # ignored, and `interrupt_main()` would then never stop waitress.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Not `server.print_listen()`: that logs on the "waitress" logger, which nothing prints.
    print(f"Serving the API on http://{host}:{port}", flush=True)
    server.run()  # until KeyboardInterrupt


def traced(app: Callable, settings: Settings) -> Callable:
    """The app with a span per request (OpenTelemetry's middleware), when tracing."""
    if not settings.otel_exporter_otlp_endpoint:
        return app
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    telemetry.for_process(settings)  # waitress serves in the process that builds the app
    return OpenTelemetryMiddleware(app)


def _shut_down_gracefully() -> None:
    """End open streams with `abort`, give them `GRACE_S` to be sent, then stop the server."""
    shutdown.begin()

    def stop_when_streams_end() -> None:
        deadline = time.monotonic() + GRACE_S
        while shutdown.open_streams and time.monotonic() < deadline:
            time.sleep(0.05)
        _thread.interrupt_main()  # waitress closes on KeyboardInterrupt

    threading.Thread(target=stop_when_streams_end, daemon=True).start()
