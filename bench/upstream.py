"""The benchmark's model provider: OpenAI-style SSE at a fixed token rate, on loopback.

    python bench/upstream.py --port P

`POST /v1/chat/completions` streams in OpenAI's wire format, which LiteLLM, the LiteLLM proxy
and the raw relay all read. The last message says what to stream, as `<id> <tokens> <ms>`: the
stream's id, how many tokens, and the milliseconds before each, so every contender passes the
same instructions through unchanged. Each token says when it was sent, `tok<i>@<time.monotonic()>`
(one clock for every process on Linux). `GET /closed` tells, per id, when the request arrived,
when its first token went out and when the connection closed, and whether the stream had
finished: how the benchmark splits time to first token into before and after the provider, and
times cancel propagation.
"""

import argparse
import asyncio
import json
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

closed: dict[str, dict] = {}


def frame(body: dict) -> bytes:
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return frame(
        {
            "id": "bench",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "bench",
            "choices": [choice],
        }
    )


async def completions(request: Request) -> StreamingResponse:
    arrived = time.monotonic()
    instructions = (await request.json())["messages"][-1]["content"]
    stream_id, tokens, interval_ms = instructions.split()
    tokens, interval_s = int(tokens), int(interval_ms) / 1000

    async def stream():
        finished, first_token = False, None
        try:
            yield chunk({"role": "assistant", "content": ""})
            for i in range(tokens):
                await asyncio.sleep(interval_s)
                sent_at = time.monotonic()
                first_token = first_token or sent_at
                yield chunk({"content": f"tok{i}@{sent_at:.6f} "})
            yield chunk({}, "stop")
            usage = {"prompt_tokens": 7, "completion_tokens": tokens, "total_tokens": tokens + 7}
            yield frame(
                {
                    "id": "bench",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "bench",
                    "choices": [],
                    "usage": usage,
                }
            )
            yield b"data: [DONE]\n\n"
            finished = True
        finally:
            closed[stream_id] = {
                "arrived": arrived,
                "first_token": first_token,
                "at": time.monotonic(),
                "finished": finished,
            }

    return StreamingResponse(stream(), media_type="text/event-stream")


async def closed_streams(_: Request) -> JSONResponse:
    return JSONResponse(closed)


app = Starlette(
    routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/chat/completions", completions, methods=["POST"]),
        Route("/closed", closed_streams),
    ]
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    # uvicorn's own 5 s keep-alive, as many providers and load balancers close idle connections:
    # a client that reuses a pooled connection as it closes must send the request again.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096)
