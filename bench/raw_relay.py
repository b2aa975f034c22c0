"""The practical floor: a minimal httpx-to-SSE relay with no LiteLLM, same wire out.

    python bench/raw_relay.py --port P --upstream http://127.0.0.1:U

`POST /api/chat` forwards the messages to the upstream's OpenAI-style stream and turns each
delta into an AI SDK `text-delta` chunk, as the template's route does, but with nothing else:
no provider layer, limits, heartbeats or logging. Starlette cancels the generator when the
client goes away, which closes the upstream connection.
"""

import argparse
import json

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


def sse(chunk: dict) -> bytes:
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def create_app(upstream: str) -> Starlette:
    client = httpx.AsyncClient(
        base_url=upstream,
        timeout=None,
        # Idle connections dropped before the provider's 5 s keep-alive closes them: without
        # retries, a request sent on one as it closes would fail.
        limits=httpx.Limits(
            max_connections=None, max_keepalive_connections=100, keepalive_expiry=4
        ),
    )

    async def chat(request: Request) -> StreamingResponse:
        body = {"model": "bench", "messages": (await request.json())["messages"], "stream": True}

        async def stream():
            yield sse({"type": "start", "messageId": "msg-0"})
            yield sse({"type": "text-start", "id": "text-0"})
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    for choice in json.loads(line[6:])["choices"]:
                        if delta := choice["delta"].get("content"):
                            yield sse({"type": "text-delta", "id": "text-0", "delta": delta})
            yield sse({"type": "text-end", "id": "text-0"})
            yield sse({"type": "finish", "messageMetadata": {}})
            yield b"data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/api/chat", chat, methods=["POST"]), Route("/api/health", health)]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.upstream),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        backlog=4096,
    )
