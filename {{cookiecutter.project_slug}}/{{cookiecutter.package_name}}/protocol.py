"""The wire format: request bodies in, AI SDK UI message stream chunks out, framed as SSE.

Pure functions and plain data only. The `ai` npm package is the source of truth for chunk
shapes; every chunk carries exactly the fields of the oldest (AI SDK v5) schema, because
clients up to ai@6 reject unknown fields.
"""

import json
from collections.abc import AsyncIterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ApiError

HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "x-vercel-ai-ui-message-stream": "v1",
}
# What a browser page on an allowed origin (CORS_ORIGINS) may send and read.
CORS_METHODS = ["GET", "POST"]
CORS_REQUEST_HEADERS = ["authorization", "content-type"]
CORS_EXPOSED_HEADERS = ["x-vercel-ai-ui-message-stream"]
DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"


class MessagePart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class Message(BaseModel):
    """A message in either shape: AI SDK `UIMessage` (`parts`) or plain chat (`content`)."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str | None = None
    parts: list[MessagePart] | None = None

    def text(self) -> str:
        if self.parts is None:
            return self.content or ""
        return "".join(part.text or "" for part in self.parts if part.type == "text")


class ChatRequest(BaseModel):
    """The body of `POST /api/chat`: the AI SDK's `useChat` body, or plain chat messages."""

    model_config = ConfigDict(extra="ignore")
    messages: list[Message] = Field(min_length=1)
    model: str | None = None

    def llm_messages(self) -> list[dict[str, str]]:
        return [{"role": message.role, "content": message.text()} for message in self.messages]


def parse_chat_request(body: bytes) -> ChatRequest:
    """Parse a `POST /api/chat` body (AI SDK `useChat` or plain `{"messages": [...]}`)."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {exc}.") from None
    try:
        request = ChatRequest.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ApiError(422, "invalid_request", f"{where}: {first['msg']}.") from None
    return request


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"The request body exceeds {limit} bytes.")


async def read_body(chunks: AsyncIterable[bytes], limit: int, content_length: str | None) -> bytes:
    """A streamed request body, refused as soon as it is known to exceed `limit` bytes.

    For servers that hand the body over in chunks (ASGI): a client that lies about or omits
    `Content-Length` is still stopped after `limit` bytes, not after the whole upload.
    """
    if content_length and content_length.isdigit() and int(content_length) > limit:
        raise body_too_large(limit)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise body_too_large(limit)
    return bytes(body)


def sse(chunk: dict) -> bytes:
    """Frame one UI message chunk as an SSE `data:` event."""
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


class UIMessageStream:
    """Turns model output into UI message chunks, keeping text and reasoning parts well formed.

    A delta is only valid between its part's `-start` and `-end`, so the encoder opens a part
    on its first delta and closes whichever part is open before switching, finishing or failing.
    """

    def __init__(self, message_id: str):
        self.message_id = message_id
        self._open: tuple[str, str] | None = None  # (kind, id) of the part being streamed
        self._parts = 0

    def start(self) -> bytes:
        return sse({"type": "start", "messageId": self.message_id})

    def finish(self, metadata: dict) -> bytes:
        return self._close() + sse({"type": "finish", "messageMetadata": metadata})

    def error(self, text: str) -> bytes:
        return self._close() + sse({"type": "error", "errorText": text})

    def abort(self) -> bytes:
        return self._close() + sse({"type": "abort"})

    def delta(self, kind: str, delta: str) -> bytes:
        """A `text` or `reasoning` delta, opening its part first if another kind was open."""
        opened = b""
        if self._open is None or self._open[0] != kind:
            opened = self._close()
            self._open = (kind, f"{kind}-{self._parts}")
            self._parts += 1
            opened += sse({"type": f"{kind}-start", "id": self._open[1]})
        return opened + sse({"type": f"{kind}-delta", "id": self._open[1], "delta": delta})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        kind, part_id = self._open
        self._open = None
        return sse({"type": f"{kind}-end", "id": part_id})
