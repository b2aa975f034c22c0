"""Reading `POST /api/chat` the way an AI SDK client does, for assertions."""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

# The exact fields of each chunk in the oldest (AI SDK v5) schema; older clients reject extras.
# The approval chunks are ai@6's (v5 has none).
CHUNK_FIELDS = {
    "start": {"type", "messageId"},
    "text-start": {"type", "id"},
    "text-delta": {"type", "id", "delta"},
    "text-end": {"type", "id"},
    "reasoning-start": {"type", "id"},
    "reasoning-delta": {"type", "id", "delta"},
    "reasoning-end": {"type", "id"},
    "finish": {"type", "messageMetadata"},
    "error": {"type", "errorText"},
    "abort": {"type"},
    "start-step": {"type"},
    "finish-step": {"type"},
    "tool-input-start": {"type", "toolCallId", "toolName"},
    "tool-input-delta": {"type", "toolCallId", "inputTextDelta"},
    "tool-input-available": {"type", "toolCallId", "toolName", "input"},
    "tool-output-available": {"type", "toolCallId", "output"},
    "tool-output-error": {"type", "toolCallId", "errorText"},
    "tool-approval-request": {"type", "approvalId", "toolCallId"},
    "tool-output-denied": {"type", "toolCallId"},
}


@dataclass
class Stream:
    chunks: list[dict] = field(default_factory=list)
    pings: int = 0
    done: bool = False

    def add(self, kind: str, chunk: dict | None = None) -> None:
        """One event, named as `read_events` names it: "ping", "done" or "chunk"."""
        assert not self.done, "nothing may follow [DONE]"
        if kind == "ping":
            self.pings += 1
        elif kind == "done":
            self.done = True
        else:
            assert set(chunk) == CHUNK_FIELDS[chunk["type"]], chunk
            self.chunks.append(chunk)

    @property
    def types(self) -> list[str]:
        return [chunk["type"] for chunk in self.chunks]

    def of_type(self, kind: str) -> list[dict]:
        return [chunk for chunk in self.chunks if chunk["type"] == kind]

    @property
    def text(self) -> str:
        return "".join(chunk["delta"] for chunk in self.of_type("text-delta"))


def chat_body(model: str, question: str = "Hello?") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": question}]}


def post_chat(api: str, model: str, question: str = "Hello?", **options) -> Stream:
    """POST a question, expect 200, and read the whole stream."""
    body = chat_body(model, question)
    with httpx.stream("POST", f"{api}/api/chat", json=body, timeout=30, **options) as response:
        assert response.status_code == 200, response.read()
        return read_stream(response)


def resumable_body(model: str, chat_id: str) -> dict:
    return chat_body(model) | {"id": chat_id, "resumable": True}


def start_and_drop(api: str, model: str, chat_id: str, deltas: int) -> Stream:
    """POST a resumable question, read `deltas` text deltas, and hang up."""
    stream = Stream()
    body = resumable_body(model, chat_id)
    with httpx.stream("POST", f"{api}/api/chat", json=body, timeout=30) as response:
        assert response.status_code == 200, response.read()
        for kind, chunk in read_events(response):
            stream.add(kind, chunk)
            if len(stream.of_type("text-delta")) == deltas:
                break
    return stream


def reattach(api: str, chat_id: str, seen: list | None = None) -> Stream:
    """GET the chat's answer and read it to the end; `seen` gets each chunk as it comes."""
    stream = Stream()
    with httpx.stream("GET", f"{api}/api/chat/{chat_id}/stream", timeout=30) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        for kind, chunk in read_events(response):
            stream.add(kind, chunk)
            if seen is not None and chunk:
                seen.append(chunk)
    return stream


def read_events(response: httpx.Response):
    """Yield ("ping", None), ("chunk", dict) or ("done", None) per SSE event, as it arrives."""
    return events_in(response.iter_lines())


def events_in(lines: Iterable[str]):
    """The events of SSE `lines`, as `read_events` yields them."""
    data: list[str] = []
    for line in lines:
        if line.startswith(":"):
            yield "ping", None
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif line == "" and data:
            payload = "\n".join(data)
            data.clear()
            yield ("done", None) if payload == "[DONE]" else ("chunk", json.loads(payload))


def read_stream(response: httpx.Response) -> Stream:
    stream = Stream()
    for kind, chunk in read_events(response):
        stream.add(kind, chunk)
    return stream


async def read_frames(frames) -> Stream:
    """The stream from the chat core's own frames (bytes), as a client would read them."""
    stream = Stream()
    async for frame in frames:
        for event in filter(None, frame.decode().split("\n\n")):
            if event.startswith(":"):
                stream.add("ping")
            elif event == "data: [DONE]":
                stream.add("done")
            else:
                stream.add("chunk", json.loads(event.removeprefix("data: ")))
    return stream


def assert_parts_well_formed(stream: Stream) -> None:
    """Every text or reasoning delta comes between its part's -start and -end, and every opened
    part is closed."""
    open_parts: set[str] = set()
    for chunk in stream.chunks:
        kind = chunk["type"]
        if not kind.startswith(("text-", "reasoning-")):
            continue
        if kind.endswith("-start"):
            open_parts.add(chunk["id"])
        elif kind.endswith("-delta"):
            assert chunk["id"] in open_parts, chunk
        elif kind.endswith("-end"):
            open_parts.remove(chunk["id"])
    assert not open_parts
