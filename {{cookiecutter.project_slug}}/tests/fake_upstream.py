"""A loopback OpenAI-compatible server that streams `/v1/chat/completions` like the real one.

Each model name is a scripted behaviour (see `SCRIPTS`). Every request is recorded, including
how many tokens were sent and when the connection closed, so tests can prove that a client's
disconnect reached the provider.
"""

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class Script:
    tokens: int = 10
    delay_s: float = 0.0  # before each token
    first_delay_s: float = 0.0  # before the first token, on top of delay_s
    fail_after: int | None = None  # send an error event after this many tokens
    status: int = 200  # a non-200 status refuses the request before streaming


SCRIPTS = {
    "fake-fast": Script(tokens=20),
    "fake-slow": Script(tokens=40, delay_s=0.05),
    "fake-silent": Script(tokens=3, first_delay_s=1.5),
    "fake-fail-mid": Script(tokens=10, fail_after=5),
    "fake-401": Script(status=401),
    "fake-404": Script(status=404),
    "fake-429": Script(status=429),
    "fake-500": Script(status=500),
}


def token(i: int) -> str:
    return f"tok{i} "


def streamed_text(count: int) -> str:
    """The text of the first `count` tokens, as a client should assemble it."""
    return "".join(token(i) for i in range(count))


@dataclass
class Record:
    model: str
    sent: int = 0
    completed: bool = False
    closed_at: float | None = None
    closed: threading.Event = field(default_factory=threading.Event)


class FakeUpstream:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        app = Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> "FakeUpstream":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def last(self, model: str) -> Record:
        return next(r for r in reversed(self.records) if r.model == model)

    async def _completions(self, request: Request):
        body = await request.json()
        script = SCRIPTS[body["model"]]
        if script.status != 200:
            return _refusal(script.status)
        record = Record(model=body["model"])
        self.records.append(record)
        usage = (body.get("stream_options") or {}).get("include_usage", False)
        return StreamingResponse(
            self._stream(script, record, usage), media_type="text/event-stream"
        )

    async def _stream(self, script: Script, record: Record, include_usage: bool):
        try:
            await asyncio.sleep(script.first_delay_s)
            for i in range(script.tokens):
                if i == script.fail_after:
                    yield _sse({"error": {"message": "upstream exploded", "type": "server_error"}})
                    return
                await asyncio.sleep(script.delay_s)
                yield _sse(_chunk({"content": token(i)}))
                record.sent += 1
            yield _sse(_chunk({}, finish_reason="stop"))
            if include_usage:
                usage = {
                    "prompt_tokens": 7,
                    "completion_tokens": script.tokens,
                    "total_tokens": 7 + script.tokens,
                }
                yield _sse({**_chunk({}), "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"
            record.completed = True
        finally:
            record.closed_at = time.monotonic()
            record.closed.set()


def _chunk(delta: dict, finish_reason: str | None = None) -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _sse(payload: dict) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _refusal(status: int) -> JSONResponse:
    kinds = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
    error = {"message": f"fake refusal {status}", "type": kinds.get(status, "server_error")}
    headers = {"retry-after": "7"} if status == 429 else {}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
