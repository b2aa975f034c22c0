"""Running the Flask adapter: waitress (threads) to serve, werkzeug's reloader to develop."""

import _thread
import os
import signal
import threading
import time

import waitress
from werkzeug.serving import run_simple

from ..shutdown import shutdown
from .flask_app import create_app

# Each open stream holds one server thread for its whole duration.
THREADS = 64
GRACE_S = 5.0


def serve(host: str, port: int, reload: bool) -> None:
    if reload:
        run_simple(host, port, create_app(), use_reloader=True, threaded=True)
        return
    app = create_app()  # loads .env first, which may set FORWARDED_ALLOW_IPS
    server = waitress.create_server(
        app,
        host=host,
        port=port,
        threads=THREADS,
        # Behind a proxy the client is who the proxy says (uvicorn's variable, for one setting).
        trusted_proxy=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto"},
        clear_untrusted_proxy_headers=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: _shut_down_gracefully())
    # Started in the background (`&`, nohup, some supervisors) a process inherits SIGINT
    # ignored, and `interrupt_main()` would then never stop waitress.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    server.print_listen("Serving the API on http://{}:{}")
    server.run()  # until KeyboardInterrupt


def _shut_down_gracefully() -> None:
    """End open streams with `abort`, give them `GRACE_S` to be sent, then stop the server."""
    shutdown.begin()

    def stop_when_streams_end() -> None:
        deadline = time.monotonic() + GRACE_S
        while shutdown.open_streams and time.monotonic() < deadline:
            time.sleep(0.05)
        _thread.interrupt_main()  # waitress closes on KeyboardInterrupt

    threading.Thread(target=stop_when_streams_end, daemon=True).start()
