"""The page's seam to the chat core: it opens, follows and stops answers in process, as the
visitor, with no HTTP, SSE or token on the way.

The core (`Chat`) hands out UI message chunks; the page shows text deltas, tool calls and the
finish line, and a refusal or a failure as an `AnswerError` worded with what it offers next.
A call that needs the visitor's approval ends the answer; once they decide, the page asks
again with the answer as AI SDK parts (`continued_turn`), and the core goes on with it.
"""

import dataclasses
import hashlib
import json
from collections.abc import AsyncGenerator, Sequence

from opentelemetry import trace

from {{ cookiecutter.package_name }}.access import Caller
from {{ cookiecutter.package_name }}.chat import Chat
from {{ cookiecutter.package_name }}.errors import ApiError
from {{ cookiecutter.package_name }}.protocol import ChatRequest, Chunks, StreamCut

CHECK_THE_KEY = "Check its API key in .env and restart the app."
EDIT_IT = "Edit it and send it again."


class AnswerError(Exception):
    """The question was refused or the model failed mid-answer; the text is user-facing.

    `action` is what the page offers next to it: `retry` (ask again), `edit` (the question
    must change first), `new_chat` (this conversation cannot go on) or `configure` (the text
    says what to set; asking again cannot help).
    """

    def __init__(self, message: str, action: str = "retry") -> None:
        super().__init__(message)
        self.action = action


class AnswerStopped(AnswerError):
    """The answer was stopped (Stop in another tab or process, the server shutting down)."""


@dataclasses.dataclass
class ToolCall:
    """A tool call of an answer, as the page shows it."""

    id: str
    name: str
    arguments: str = ""  # JSON, once complete
    # running | done | error; approval (waiting for the visitor), then approved or declined
    # (their decision, not sent yet), then done | error | denied (the core's outcome)
    state: str = "running"
    result: str = ""  # the output (JSON unless text), or the error
    approval_id: str = ""

    @property
    def is_decided(self) -> bool:
        return self.state in ("approved", "declined")

    def part(self) -> dict:
        """As an AI SDK tool part, for the core to read back."""
        part = {
            "type": "dynamic-tool",
            "toolName": self.name,
            "toolCallId": self.id,
            "input": json.loads(self.arguments or "{}"),
        }
        if self.approval_id and self.state != "approval":
            approved = self.state not in ("declined", "denied")
            part["approval"] = {"id": self.approval_id, "approved": approved}
        match self.state:
            case "done":
                return part | {"state": "output-available", "output": self.result}
            case "error":
                return part | {"state": "output-error", "errorText": self.result}
            case "denied":
                return part | {"state": "output-denied"}
            case "approved" | "declined":
                return part | {"state": "approval-responded"}
        return part | {"state": "input-available"}  # not read back: it has no outcome


# What the page shows of an answer, in order: text deltas, tool calls (a copy at each change)
# and, last, the `finish` metadata.
Item = str | ToolCall | dict


def continued_turn(answer_id: int, content: str, calls: list[ToolCall]) -> dict:
    """An answer whose calls the visitor has just decided on, as the AI SDK sends it back:
    its text, then its tool calls, each with its outcome or the decision."""
    text = [{"type": "text", "text": content}] if content else []
    parts = text + [call.part() for call in calls]
    return {"id": f"answer-{answer_id}", "role": "assistant", "parts": parts}


def visitor(owner: str, address: str) -> Caller:
    """The page's visitor as the core's caller. The owner id is the key to their history, so
    limits and logs see a digest of it, never the id itself."""
    return Caller(address, visitor=hashlib.sha256(owner.encode()).hexdigest()[:16])


async def open_answer(
    chat: Chat,
    caller: Caller,
    messages: list[dict],
    model: str | None,
    answer_id: str,
    calls: Sequence[ToolCall] = (),
    conversation_id: str | None = None,
) -> AsyncGenerator[Item]:
    """Ask for the answer to `messages`, resumable under `answer_id` (a reloaded page follows
    it again; `stop_answer` ends it), and yield what the page shows of it. `calls`: those of
    the answer this one goes on with; `conversation_id`: the conversation's, for traces."""
    request = ChatRequest.model_validate(
        {"messages": messages, "model": model, "id": answer_id, "resumable": True}
    )
    # The page's own span, as an HTTP route has one: the answer's `chat` span goes under it.
    span = chat.telemetry.tracer.start_span("page answer", kind=trace.SpanKind.SERVER)
    try:
        with trace.use_span(span, end_on_exit=False):
            batches = await chat.answer(request, caller, conversation_id)
        async for item in _shown(batches, calls):
            yield item
    except ApiError as exc:
        span.set_status(trace.StatusCode.ERROR, exc.type)
        raise refusal(exc) from None
    finally:
        span.end()


async def follow_answer(chat: Chat, answer_id: str) -> AsyncGenerator[Item]:
    """The page's own answer from its start, then live, in whichever process runs it; nothing
    when none is kept. Not counted against the visitor's limits: the task that asked for it
    holds its place."""
    try:
        batches = await chat.answers.follow(answer_id)
    except ApiError as exc:  # another process runs it, and Redis is down
        raise refusal(exc) from None
    if batches is not None:
        async for item in _shown(batches):
            yield item


async def stop_answer(chat: Chat, caller: Caller, answer_id: str) -> bool:
    """End the answer at once; False if none is running (ended, or not opened yet)."""
    try:
        await chat.stop(answer_id, caller)
    except ApiError:
        return False
    return True


async def _shown(
    batches: AsyncGenerator[Chunks], known: Sequence[ToolCall] = ()
) -> AsyncGenerator[Item]:
    """What the page shows of the chunks: the text deltas of a batch (what was there at once,
    all of it for a follower coming back) as one. They are read to their end, when the answer
    has given the visitor's stream back, before an error or a stop is raised."""
    calls = {call.id: dataclasses.replace(call) for call in known}
    outcome: AnswerError | None = AnswerError("The answer ended before it was complete.")
    try:
        async for batch in batches:
            text: list[str] = []
            for chunk in batch:
                kind = chunk.get("type")
                if kind == "text-delta":
                    text.append(chunk["delta"])
                    continue
                if text:
                    yield "".join(text)
                    text.clear()
                match kind:
                    case (
                        "tool-input-start"
                        | "tool-input-available"
                        | "tool-output-available"
                        | "tool-output-error"
                        | "tool-approval-request"
                        | "tool-output-denied"
                    ):
                        yield _tool_call(calls, chunk)
                    case "finish":
                        outcome = None
                        yield chunk["messageMetadata"]
                    case "error":
                        outcome = AnswerError(chunk["errorText"])
                    case "abort":
                        outcome = AnswerStopped("The answer was stopped.")
            if text:
                yield "".join(text)
    except StreamCut:
        pass
    finally:
        await batches.aclose()
    if outcome is not None:
        raise outcome


def _tool_call(calls: dict[str, ToolCall], chunk: dict) -> ToolCall:
    """The call `chunk` is about, updated by it."""
    call = calls.setdefault(chunk["toolCallId"], ToolCall(chunk["toolCallId"], ""))
    match chunk["type"]:
        case "tool-input-start":
            call.name = chunk["toolName"]
        case "tool-input-available":
            call.name, call.arguments = chunk["toolName"], json.dumps(chunk["input"])
        case "tool-output-available":
            output = chunk["output"]
            call.state = "done"
            call.result = output if isinstance(output, str) else json.dumps(output)
        case "tool-output-error":
            call.state, call.result = "error", chunk["errorText"]
        case "tool-approval-request":
            call.state, call.approval_id = "approval", chunk["approvalId"]
        case "tool-output-denied":
            call.state, call.result = "denied", "Not allowed."
    return dataclasses.replace(call)


def refusal(error: ApiError) -> AnswerError:
    """Say what to do about a refusal: retry (after the wait), shorten the question, start a
    new chat, or configure the server."""
    match error.type:
        case "upstream_auth":
            return AnswerError(f"{error.message} {CHECK_THE_KEY}", "configure")
        case "missing_configuration":
            return AnswerError(error.message, "configure")
        case "message_too_long":
            # The core names a JSON path ("messages.3: at most 8000 characters are accepted.").
            limit = error.message.partition(": ")[2].rstrip(".")
            return AnswerError(f"The question is too long ({limit}). {EDIT_IT}", "edit")
        case "body_too_large":
            return AnswerError(f"This conversation is too large to send. {EDIT_IT}", "edit")
        case "too_many_messages":
            return AnswerError("This conversation has reached the limit of messages.", "new_chat")
        case "context_too_long" | "files_too_large":
            return AnswerError(error.message, "new_chat")
        case "approval_not_pending":
            return AnswerError(
                "This approval has expired, so the call did not run. Retry to ask again."
            )
        case "model_cannot_read_file":  # the model was changed after the file was attached
            return AnswerError(f"{error.message} Choose a model that reads it, then retry.")
        case "too_many_streams":  # answers of this visitor's (or address's) other tabs
            return AnswerError(f"{error.message} Wait for one to end, then retry.")
    if error.retry_after is not None:
        seconds = error.retry_after
        wait = f"Wait {seconds} second{'s' * (seconds != 1)}, then retry."
        return AnswerError(f"{error.message} {wait}")
    return AnswerError(error.message)
