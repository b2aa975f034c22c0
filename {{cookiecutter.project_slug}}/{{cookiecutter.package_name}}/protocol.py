"""The wire format: request bodies in, AI SDK UI message stream chunks out, framed as SSE.

Pure functions and plain data only. The `ai` npm package is the source of truth for chunk
shapes; every chunk carries exactly the fields of the oldest (AI SDK v5) schema, because
clients up to ai@6 reject unknown fields. The approval chunks (`tool-approval-request`,
`tool-output-denied`) came with ai@6: a v5 client fails on them, so tools that need approval
need ai@6 or later. The core hands out chunks as dicts, in batches
(`Chunks`: what is there to send at once); only the HTTP routes frame them as SSE
(`sse_frames`), and the page reads them as they are.
"""

import json
import re
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from .errors import ApiError

HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "x-vercel-ai-ui-message-stream": "v1",
}
# What a browser page on an allowed origin (CORS_ORIGINS) may send and read.
CORS_METHODS: list[Literal["GET", "POST", "DELETE"]] = ["GET", "POST", "DELETE"]
CORS_REQUEST_HEADERS = ["authorization", "content-type"]
CORS_EXPOSED_HEADERS = ["x-vercel-ai-ui-message-stream"]
DONE = b"data: [DONE]\n\n"
# What a resumable request's chat id must be: whoever knows it can read and stop the answer,
# so it must be hard to guess (the AI SDK's own ids are 16 random letters and digits).
RESUMABLE_ID = re.compile(r"[A-Za-z0-9_-]{16,128}")
PING = b": ping\n\n"
# A batch of UI message chunks. An empty chunk is a heartbeat: an SSE comment on the wire,
# nothing to a reader in process.
Chunks = list[dict]
HEARTBEAT: dict = {}


class Approval(BaseModel):
    """The user's answer to a tool call that waited for it (the AI SDK's `approval`)."""

    model_config = ConfigDict(extra="ignore")
    id: str
    approved: bool | None = None  # None: not answered yet
    reason: str | None = None


class MessagePart(BaseModel):
    """A text part, a file part (`file`, see `attachments`), a tool part (`tool-<name>`, or
    `dynamic-tool` with `toolName`), or one the model does not read back (`step-start` only
    marks where a step begins)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    type: str
    text: str | None = None
    tool_call_id: str | None = Field(default=None, alias="toolCallId")
    tool_name: str | None = Field(default=None, alias="toolName")
    state: str | None = None
    input: object = None
    output: object = None
    error_text: str | None = Field(default=None, alias="errorText")
    media_type: str | None = Field(
        default=None, alias="mediaType", description="A file's type, as the client sees it."
    )
    url: str | None = Field(default=None, description="A file's content, as a data: URL.")
    filename: str | None = None
    approval: Approval | None = None

    def is_file(self) -> bool:
        return self.type == "file"

    def tool(self) -> str | None:
        """The name of the tool a tool part calls; None for other parts."""
        if self.type.startswith("tool-"):
            return self.type.removeprefix("tool-")
        return self.tool_name if self.type == "dynamic-tool" else None

    def is_decided(self) -> bool:
        """A tool call the user has just approved or denied: it has no outcome yet."""
        return (
            self.state == "approval-responded"
            and self.approval is not None
            and self.approval.approved is not None
            and self.tool_call_id is not None
        )

    def tool_call(self) -> dict | None:
        """A tool call that has its outcome, as a chat `tool_calls` entry; else None (a call
        without its result would be refused by some providers)."""
        if not self.tool_call_id or self.state not in TOOL_OUTCOMES or not (name := self.tool()):
            return None
        return chat_tool_call(self.tool_call_id, name, self.input)

    def tool_result(self) -> dict:
        if self.state == "output-denied":
            reason = self.approval.reason if self.approval else None
            denied = "The user did not allow this call." + (f" Reason: {reason}" if reason else "")
            return chat_tool_result(self.tool_call_id or "", denied)
        error = self.error_text if self.state == "output-error" else None
        return chat_tool_result(self.tool_call_id or "", self.output, error)


TOOL_OUTCOMES = ("output-available", "output-error", "output-denied")


class Message(BaseModel):
    """A message in either shape: AI SDK `UIMessage` (`parts`) or plain chat (`content`)."""

    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    role: Literal["system", "user", "assistant"]
    content: str | None = None
    parts: list[MessagePart] | None = None

    def text(self) -> str:
        if self.parts is None:
            return self.content or ""
        return "".join(part.text or "" for part in self.parts if part.type == "text")

    def turns(self, file_content: Callable[[MessagePart], dict]) -> list[dict]:
        """As chat messages. A user message's files become parts of its content
        (`file_content`); an assistant message's steps (split at `step-start`, as the AI SDK's
        `convertToModelMessages` does) each become a message with its tool calls, followed by
        one `tool` message per result."""
        if self.role == "user" and (files := [p for p in self.parts or [] if p.is_file()]):
            said = [{"type": "text", "text": self.text()}] if self.text() else []
            return [{"role": "user", "content": said + [file_content(f) for f in files]}]
        if self.role != "assistant" or self.parts is None:
            return [{"role": self.role, "content": self.text()}]
        turns: list[dict] = []
        for step in _split_at_step_starts(self.parts):
            text = "".join(part.text or "" for part in step if part.type == "text")
            calls = [(part, call) for part in step if (call := part.tool_call())]
            if not calls:
                turns += [{"role": "assistant", "content": text}] if text else []
                continue
            turns.append(
                {"role": "assistant", "content": text or None, "tool_calls": [c for _, c in calls]}
            )
            turns += [part.tool_result() for part, _ in calls]
        return turns or [{"role": "assistant", "content": ""}]


def _split_at_step_starts(parts: list[MessagePart]) -> list[list[MessagePart]]:
    steps: list[list[MessagePart]] = [[]]
    for part in parts:
        if part.type == "step-start":
            steps.append([])
        else:
            steps[-1].append(part)
    return [step for step in steps if step]


def chat_tool_call(call_id: str, name: str, arguments: object) -> dict:
    """A `tool_calls` entry of an assistant chat message. Providers parse the arguments again
    (LiteLLM for Anthropic, Gemini and Ollama), so arguments that are not a JSON object go
    back as none: the call's error told the model what was wrong."""
    arguments = json.dumps(arguments if isinstance(arguments, dict) else {})
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def chat_tool_result(call_id: str, output: object, error: str | None = None) -> dict:
    """A tool call's outcome as the `tool` chat message the model reads."""
    if error is not None:
        content = f"Error: {error}"
    else:
        content = output if isinstance(output, str) else json.dumps(output)
    return {"role": "tool", "tool_call_id": call_id, "content": content}


class ChatRequest(BaseModel):
    """The body of `POST /api/chat`: the AI SDK's `useChat` body, or plain chat messages."""

    model_config = ConfigDict(extra="ignore")
    messages: list[Message] = Field(min_length=1)
    model: str | None = None
    id: str | None = None
    """The chat's id; the AI SDK sends it, and a resumable answer is found again by it."""
    resumable: bool = False
    """Keep generating after a dropped connection, for `GET /api/chat/{id}/stream`."""

    @field_validator("resumable")
    @classmethod
    def _resumable_needs_an_id(cls, resumable: bool, info: ValidationInfo) -> bool:
        chat_id = info.data.get("id")
        if resumable and not (chat_id and RESUMABLE_ID.fullmatch(chat_id)):
            raise ValueError(
                "a resumable answer needs a hard-to-guess chat `id`: "
                "16 to 128 letters, digits, '-' or '_'"
            )
        return resumable

    def decided_calls(self) -> list[MessagePart]:
        """The tool calls the user has just approved or denied: this request goes on with the
        answer that asked (the last message)."""
        last = self.messages[-1]
        if last.role != "assistant" or last.parts is None:
            return []
        return [part for part in last.parts if part.is_decided()]

    def llm_messages(self, file_content: Callable[[MessagePart], dict]) -> list[dict]:
        """As chat messages, each file part as `file_content` makes it a content part."""
        return [turn for message in self.messages for turn in message.turns(file_content)]


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
    """Frame one UI message chunk as an SSE `data:` event, a heartbeat as a comment."""
    if not chunk:
        return PING
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


class StreamCut(Exception):
    """The chunks end before their answer did (an abandoned answer, a process gone away)."""


async def sse_frames(batches: AsyncGenerator[Chunks]) -> AsyncGenerator[bytes]:
    """The HTTP body of a stream: each batch framed as SSE in one write, then `[DONE]`; a cut
    stream ends without it, as the AI SDK expects of an incomplete one."""
    try:
        async for batch in batches:
            yield b"".join(map(sse, batch))
    except StreamCut:
        return
    finally:
        await batches.aclose()
    yield DONE


class UIMessageStream:
    """Turns model output into UI message chunks, keeping text and reasoning parts well formed.

    A delta is only valid between its part's `-start` and `-end`, so the encoder opens a part
    on its first delta and closes whichever part is open before switching, finishing or failing.
    Each method returns the chunks to send, in order.
    """

    def __init__(self, message_id: str):
        self.message_id = message_id
        self._open: tuple[str, str] | None = None  # (kind, id) of the part being streamed
        self._parts = 0

    def start(self) -> Chunks:
        return [{"type": "start", "messageId": self.message_id}]

    def finish(self, metadata: dict) -> Chunks:
        return [*self._close(), {"type": "finish", "messageMetadata": metadata}]

    def error(self, text: str) -> Chunks:
        return [*self._close(), {"type": "error", "errorText": text}]

    def abort(self) -> Chunks:
        return [*self._close(), {"type": "abort"}]

    def delta(self, kind: str, delta: str) -> Chunks:
        """A `text` or `reasoning` delta, opening its part first if another kind was open."""
        if self._open is not None and self._open[0] == kind:
            return [{"type": f"{kind}-delta", "id": self._open[1], "delta": delta}]
        opened = self._close()
        self._open = (kind, f"{kind}-{self._parts}")
        self._parts += 1
        opened.append({"type": f"{kind}-start", "id": self._open[1]})
        opened.append({"type": f"{kind}-delta", "id": self._open[1], "delta": delta})
        return opened

    def start_step(self) -> Chunks:
        return [{"type": "start-step"}]

    def finish_step(self) -> Chunks:
        return [*self._close(), {"type": "finish-step"}]

    def tool_input_start(self, call_id: str, name: str) -> Chunks:
        chunk = {"type": "tool-input-start", "toolCallId": call_id, "toolName": name}
        return [*self._close(), chunk]

    def tool_input_delta(self, call_id: str, text: str) -> Chunks:
        return [{"type": "tool-input-delta", "toolCallId": call_id, "inputTextDelta": text}]

    def tool_input_available(self, call_id: str, name: str, arguments: object) -> Chunks:
        chunk = {
            "type": "tool-input-available",
            "toolCallId": call_id,
            "toolName": name,
            "input": arguments,
        }
        return [*self._close(), chunk]

    def tool_output(self, call_id: str, output: object) -> Chunks:
        return [{"type": "tool-output-available", "toolCallId": call_id, "output": output}]

    def tool_error(self, call_id: str, text: str) -> Chunks:
        return [{"type": "tool-output-error", "toolCallId": call_id, "errorText": text}]

    def tool_approval_request(self, call_id: str, approval_id: str) -> Chunks:
        return [{"type": "tool-approval-request", "approvalId": approval_id, "toolCallId": call_id}]

    def tool_output_denied(self, call_id: str) -> Chunks:
        return [{"type": "tool-output-denied", "toolCallId": call_id}]

    def _close(self) -> Chunks:
        if self._open is None:
            return []
        kind, part_id = self._open
        self._open = None
        return [{"type": f"{kind}-end", "id": part_id}]
