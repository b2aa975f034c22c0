"""An answer in steps: the model streams; if it called tools, they run and the model is asked
again with their results, until it answers without calling one (or `MAX_TOOL_STEPS` is reached).

The events are the model's, plus what the UI message stream shows of each step and tool call:
the call's arguments while they stream, then its result or its error. A call of a tool that
needs approval does not run: the answer ends after its step with `ApprovalRequested`, and goes
on in a later request that brings the user's decision (see `approvals`).
"""

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

from opentelemetry.trace import StatusCode

from . import llm
from .approvals import Approvals
from .errors import ApiError
from .mcp_tools import McpTool
from .protocol import chat_tool_call, chat_tool_result
from .settings import Settings
from .telemetry import Answer
from .tools import Tool

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StepStart:
    pass


@dataclass(frozen=True, slots=True)
class StepFinish:
    pass


@dataclass(frozen=True, slots=True)
class ToolInputStart:
    call_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolInputDelta:
    call_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ToolInputAvailable:
    """The call's arguments are complete (`input`: parsed, or the raw text if not JSON); the
    tool runs now."""

    call_id: str
    name: str
    input: object


@dataclass(frozen=True, slots=True)
class ToolOutput:
    call_id: str
    output: object


@dataclass(frozen=True, slots=True)
class ToolError:
    call_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    """The call waits for the user's approval; the answer ends after this step."""

    call_id: str
    approval_id: str


@dataclass(frozen=True, slots=True)
class ToolDenied:
    call_id: str


Event = (
    llm.Event
    | StepStart
    | StepFinish
    | ToolInputStart
    | ToolInputDelta
    | ToolInputAvailable
    | ToolOutput
    | ToolError
    | ApprovalRequested
    | ToolDenied
)
AskAgain = Callable[[list[dict]], Awaitable[llm.CompletionStream]]


@dataclass(frozen=True)
class Decided:
    """The calls the user has just decided on, which an answer goes on from: the approved run
    first; `messages` is then the conversation for the model, with their outcomes."""

    approved: list["Call"]
    denied: list[str]  # their call ids
    messages: Callable[[dict[str, "ToolOutput | ToolError"]], list[dict]]


@dataclass
class Call:
    id: str
    name: str
    arguments: str = ""  # JSON text, as the model streamed it

    def parsed(self) -> object:
        try:
            return json.loads(self.arguments or "{}")
        except json.JSONDecodeError:
            return self.arguments


class Steps:
    """The events of a whole answer. Like `llm.CompletionStream`, whoever iterates it must
    `aclose()` it: that hangs up on the provider and cancels the tools still running."""

    def __init__(
        self,
        first: llm.CompletionStream | None,
        messages: list[dict],
        ask_again: AskAgain,
        tools: dict[str, Tool | McpTool],
        settings: Settings,
        approvals: Approvals,
        observed: Answer,
        decided: Decided | None = None,
    ):
        """`first`: the model's first stream; None when the answer goes on from the user's
        decisions (`decided`), which come first."""
        self._stream = first
        self._messages = list(messages)
        self._ask_again = ask_again
        self._tools = tools
        self._settings = settings
        self._approvals = approvals
        self._observed = observed
        self._decided = decided
        self._events = self._answer()

    @property
    def path(self) -> str | None:
        return self._stream.path if self._stream else None

    def __aiter__(self) -> AsyncGenerator[Event]:
        return self._events

    async def aclose(self) -> None:
        await self._events.aclose()
        if self._stream is not None:
            await self._stream.aclose()  # also when the answer was never read

    async def _answer(self) -> AsyncGenerator[Event]:
        usage = _Usage()
        if self._decided is not None:
            async with aclosing(self._carry_out(self._decided)) as outcomes:
                async for event in outcomes:
                    yield event
        for step in range(1, self._settings.max_tool_steps + 1):
            calls: list[Call] = []
            text: list[str] = []
            async with aclosing(self._step(calls, text, usage)) as events:
                async for event in events:
                    yield event
            if not calls:
                yield StepFinish()
                yield usage.finish()
                return
            for call in calls:
                yield ToolInputAvailable(call.id, call.name, call.parsed())
            asked = [call for call in calls if self._needs_approval(call)]
            for call in asked:
                approval_id = await self._approvals.ask(call.id, call.name, call.parsed())
                yield ApprovalRequested(call.id, approval_id)
            results = {}
            running = [call for call in calls if call not in asked]
            async with aclosing(self._run(running)) as outcomes:
                async for result in outcomes:
                    results[result.call_id] = result
                    yield result
            yield StepFinish()
            if asked:  # until the user decides
                yield usage.finish()
                return
            self._messages += _turns(calls, "".join(text), results)
            if step < self._settings.max_tool_steps:
                self._stream = await self._ask_again(self._messages)
        limit = self._settings.max_tool_steps
        raise ApiError(
            502,
            "too_many_tool_steps",
            f"The model was still calling tools after {limit} steps (MAX_TOOL_STEPS); "
            "the answer stops here.",
        )

    async def _carry_out(self, decided: Decided) -> AsyncGenerator[Event]:
        """Run the approved calls and show every outcome; then ask the model with them."""
        for call_id in decided.denied:
            yield ToolDenied(call_id)
        results = {}
        async with aclosing(self._run(decided.approved)) as outcomes:
            async for result in outcomes:
                results[result.call_id] = result
                yield result
        self._messages = decided.messages(results)
        self._stream = await self._ask_again(self._messages)

    async def _step(self, calls: list[Call], text: list[str], usage: "_Usage"):
        """One model call's events; its tool calls collected into `calls`, its text into `text`.
        `StepStart` waits for the provider's first event, so that a refusal before it is still
        an HTTP error."""
        assert self._stream is not None  # asked before each step
        stream, started = self._stream, False
        by_index: dict[int, Call] = {}
        try:
            async for event in stream:
                if not started:
                    started = True
                    yield StepStart()
                match event:
                    case llm.ToolCallDelta():
                        call = by_index.get(event.index)
                        if call is None or (event.id and event.id != call.id):
                            call = Call(event.id or f"call-{uuid.uuid4().hex}", event.name or "")
                            by_index[event.index] = call
                            calls.append(call)
                            yield ToolInputStart(call.id, call.name)
                        if event.arguments:
                            call.arguments += event.arguments
                            yield ToolInputDelta(call.id, event.arguments)
                    case llm.Finish():
                        usage.add(event)
                    case llm.TextDelta():
                        text.append(event.text)
                        yield event
                    case _:
                        yield event
        finally:
            await stream.aclose()

    def _needs_approval(self, call: Call) -> bool:
        tool = self._tools.get(call.name)
        return tool is not None and tool.needs_approval and isinstance(call.parsed(), dict)

    async def _observed_run(self, call: Call) -> "ToolOutput | ToolError":
        with self._observed.tool(call.name, call.id, call.arguments) as span:
            result = await run(call, self._tools, self._settings)
            if isinstance(result, ToolError):
                span.set_attribute("error.type", "tool_error")
                span.set_status(StatusCode.ERROR, result.text)
            elif self._observed.capture_content:
                span.set_attribute("gen_ai.tool.call.result", json.dumps(result.output))
            return result

    async def _run(self, calls: list[Call]) -> AsyncGenerator[ToolOutput | ToolError]:
        """Run the calls side by side; yield each result as it comes."""
        tasks = [asyncio.ensure_future(self._observed_run(call)) for call in calls]
        try:
            for result in asyncio.as_completed(tasks):
                yield await result
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def run(
    call: Call, tools: dict[str, Tool | McpTool], settings: Settings
) -> ToolOutput | ToolError:
    """Run one call, bounded by `TOOL_TIMEOUT_S` and `MAX_TOOL_RESULT_CHARS`; whatever fails is
    the model's to read."""
    tool = tools.get(call.name)
    if tool is None:
        offered = ", ".join(tools) or "none"
        return ToolError(call.id, f"There is no tool {call.name!r}; offered: {offered}.")
    arguments = call.parsed()
    if not isinstance(arguments, dict):
        return ToolError(call.id, f"The arguments are not a JSON object: {call.arguments!r}")
    timeout_s = settings.tool_timeout_s
    try:
        async with asyncio.timeout(timeout_s) as limit:
            output = await tool.call(arguments)
        # What goes on the wire is JSON: no NaN, no integer Python cannot print.
        text = json.dumps(output, default=str, allow_nan=False)
        if len(text) > (most := settings.max_tool_result_chars):
            return ToolError(
                call.id,
                f"{call.name} returned {len(text)} characters, over the {most} a result "
                "may have (MAX_TOOL_RESULT_CHARS).",
            )
        return ToolOutput(call.id, json.loads(text))
    except TimeoutError:
        if not limit.expired():
            raise
        return ToolError(call.id, f"{call.name} took over {timeout_s:g} s and was stopped.")
    except ValueError as exc:  # the tool's own words, meant for the model (or BadArguments)
        return ToolError(call.id, str(exc))
    except Exception:
        logger.exception("tool %s failed", call.name)
        return ToolError(call.id, f"{call.name} failed.")


def _turns(calls: list[Call], text: str, results: dict) -> list[dict]:
    """The step as chat messages for the next model call: the calls, then each one's result."""
    tool_calls = [chat_tool_call(call.id, call.name, call.parsed()) for call in calls]
    assistant = {"role": "assistant", "content": text or None, "tool_calls": tool_calls}
    return [assistant] + [_result_message(results[call.id]) for call in calls]


def _result_message(result: ToolOutput | ToolError) -> dict:
    if isinstance(result, ToolError):
        return chat_tool_result(result.call_id, None, result.text)
    return chat_tool_result(result.call_id, result.output)


@dataclass
class _Usage:
    """Tokens summed over the steps; the last step's finish reason."""

    reason: str = "stop"
    input_tokens: int | None = None
    output_tokens: int | None = None

    def add(self, finish: llm.Finish) -> None:
        self.reason = finish.reason
        self.input_tokens = _plus(self.input_tokens, finish.input_tokens)
        self.output_tokens = _plus(self.output_tokens, finish.output_tokens)

    def finish(self) -> llm.Finish:
        return llm.Finish(self.reason, self.input_tokens, self.output_tokens)


def _plus(total: int | None, more: int | None) -> int | None:
    return more if total is None else total + (more or 0)
