"""A loopback OpenTelemetry collector for the benchmark: it takes OTLP/HTTP exports and counts
them, as a real collector would take them, without storing anything.

    python bench/collector.py --port 4318    # GET /received: {"traces": n, "metrics": n, ...}
"""

import argparse
from collections import Counter

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

received: Counter[str] = Counter()


async def export(request: Request) -> Response:
    signal = request.path_params["signal"]
    received[signal] += 1
    received[f"{signal}_bytes"] += len(await request.body())
    # An empty Export*ServiceResponse: all accepted.
    return Response(b"", media_type="application/x-protobuf")


async def counts(_: Request) -> JSONResponse:
    return JSONResponse(dict(received))


app = Starlette(
    routes=[
        Route("/v1/{signal}", export, methods=["POST"]),
        Route("/received", counts),
    ]
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=arguments.port, log_level="warning")
