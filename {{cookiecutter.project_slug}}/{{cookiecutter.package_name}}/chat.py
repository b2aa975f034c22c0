"""The routes' work, framework-agnostic: a request in, UI message chunks out.

Two kinds of caller share it. The HTTP adapters call `open`, `reattach` and `stop` with the
body and a `Caller` made of the request (address, token), send `protocol.HEADERS` and write
each SSE frame as soon as it exists; `open` raises `ApiError` while a plain HTTP error is still
possible. The chat page calls `answer` and `stop` in process, as the visitor, follows its own
answers again in `answers`, and reads the chunks themselves (batches of dicts): no HTTP, no
SSE on its path.

When the client goes away its framework cancels or closes the iterator, and its `finally`
closes the provider connection (and cancels running tools), so no more tokens are generated or
paid for. An answer may take several model calls (`steps`: the model calls tools, then answers
with their results); the stream shows each. A call that needs the user's approval ends the
answer; the request that brings the decision goes on with it (see `approvals`). When the
server shuts down (`shutdown.begin()`), open streams end at once with an `abort` chunk. A
request may ask for its answer to survive a dropped connection (`"resumable": true`, see
`resumable`).
"""

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from enum import Enum

from . import llm, mcp_tools, steps, telemetry
from .access import Access, Caller, bearer_is
from .approvals import Approvals, SharedApprovals, not_pending
from .attachments import RequestFiles, without_file_data
from .errors import ApiError
from .mcp_tools import McpTool
from .protocol import (
    HEARTBEAT,
    ChatRequest,
    Chunks,
    MessagePart,
    UIMessageStream,
    body_too_large,
    parse_chat_request,
    sse_frames,
)
from .redis_link import redis_watch
from .resumable import Halt, LiveAnswers, SharedAnswers
from .settings import Settings
from .shutdown import shutdown
from .tools import REGISTRY, Tool

logger = logging.getLogger(__name__)
access_log = logging.getLogger(__package__ + ".access")
# What the time to first token measures up to: the model's first output of any kind.
FIRST_OUTPUT = (llm.TextDelta, llm.ReasoningDelta, steps.ToolInputStart)
# Prometheus's text format, as `prometheus_client` writes it.
METRICS_CONTENT_TYPE = "text/plain; version=1.0.0; charset=utf-8"
# Events after which tools may still be running, for up to TOOL_TIMEOUT_S.
TOOL_RUNNING = (steps.ToolInputAvailable, steps.ToolOutput, steps.ToolError)


class Chat:
    """The routes' work with what it depends on, built once per app (the adapter's
    `create_app`, the page's `services`): its requests share the settings, the `Access`
    counters and the resumable answers."""

    def __init__(self, settings: Settings, observed: telemetry.Telemetry | None = None) -> None:
        """`observed`: where traces and metrics go; by default, as the settings ask (see
        `telemetry`)."""
        self.settings = settings
        self.access = Access(settings)
        self.local_tools = {name: REGISTRY[name] for name in settings.tools}
        self.answers = SharedAnswers(settings) if settings.redis_url else LiveAnswers(settings)
        self.approvals = SharedApprovals(settings) if settings.redis_url else Approvals(settings)
        self._observed = observed
        if observed is not None:
            observed.watch_resumable(self.answers.held)

    @property
    def telemetry(self) -> telemetry.Telemetry:
        """This process's, from the first use in it (not at import, as for `mcp`)."""
        if self._observed is None:
            self._observed = telemetry.for_process(self.settings)
            self._observed.watch_resumable(self.answers.held)
        return self._observed

    @property
    def mcp(self) -> mcp_tools.Connections | None:
        """This process's MCP connections, from the first use in it (not at import)."""
        path = self.settings.mcp_servers
        return mcp_tools.connections_for(path) if path else None

    @property
    def tools(self) -> dict[str, Tool | McpTool]:
        """The tools offered now: `TOOLS`, and those of the MCP servers connected."""
        return self.local_tools | (self.mcp.tools() if self.mcp else {})

    async def open(self, body: bytes, caller: Caller) -> AsyncGenerator[bytes]:
        """`POST /api/chat`: `answer` to the body, framed as SSE."""
        self.access.authorize(caller)
        return sse_frames(await self.answer(parse_chat_request(body), caller))

    async def reattach(self, chat_id: str, caller: Caller) -> AsyncGenerator[bytes] | None:
        """`GET /api/chat/{id}/stream`: the resumable answer of that chat from its start, then
        live, framed as SSE; None (204) when none is kept. Counts against the caller's limits
        like a new answer."""
        self.access.authorize(caller)
        release = await self.access.admit(caller)
        try:
            batches = await self.answers.follow(chat_id)
        except BaseException:
            release()
            raise
        if batches is None:
            release()
            return None
        return sse_frames(_releasing(batches, release))

    async def answer(
        self, request: ChatRequest, caller: Caller, conversation_id: str | None = None
    ) -> AsyncGenerator[Chunks]:
        """Check the caller and the request, open the provider stream and wait for its first
        chunk; raises `ApiError` for every refusal. Then the answer, batch by batch.
        `conversation_id`: the conversation's, for traces, when not the request's id."""
        with self._refusals_counted():
            self.access.authorize(caller)
            model = request.model or self.settings.llm_model
            _check_request(request, model, self.settings)
            # Decoding and checking 10 MB of files takes tens of milliseconds: not on the loop.
            files = await asyncio.to_thread(RequestFiles, request.messages, self.settings)
            await llm.check_model_reads(model, files.attachments, self.settings)
            # Room for a resumable answer is taken before anything is awaited, so that requests
            # arriving together cannot all pass a check meant for one; once started, the
            # answer holds its own.
            release_room = self.answers.reserve() if request.resumable else _nothing
        try:
            conversation_id = conversation_id or request.id
            batches, halt = await self._open(request, files, model, caller, conversation_id)
            if request.resumable:  # then it has an id (`parse_chat_request`)
                return self.answers.start(request.id or "", batches, halt)
            return batches
        finally:
            release_room()

    async def _open(
        self,
        request: ChatRequest,
        files: RequestFiles,
        model: str,
        caller: Caller,
        conversation_id: str | None,
    ) -> tuple[AsyncGenerator[Chunks], asyncio.Future]:
        """The answer to the request from its first chunk on, and the future that halts it."""
        settings = self.settings
        messages = request.llm_messages(files.content_part)
        record = AccessRecord(client=caller.address, visitor=caller.visitor, model=model)
        if settings.log_content:
            record.messages = without_file_data(messages)
        with self._refusals_counted():
            try:
                release = await self.access.admit(caller)
            except ApiError:
                record.outcome = "limited"
                record.log()
                raise
            try:
                # The user's decisions are checked before anything is sent (a 409 is a plain
                # HTTP error); the calls then run in the answer, which asks the model after.
                decided = await self._take_approvals(request, files)
            except BaseException:
                release()
                record.outcome = "refused"
                record.log()
                raise

        tools = self.tools  # as they are when the answer begins, for all its steps
        definitions = [tool.definition() for tool in tools.values()]
        attributes = telemetry.model_attributes(model, settings.llm_api_base)
        observed = self.telemetry.answer(attributes, conversation_id, messages)

        def ask(messages: list[dict]) -> Awaitable[llm.CompletionStream]:
            observed.asked()
            return llm.open_stream(messages, model, settings, definitions)

        try:
            first = None if decided else await ask(messages)
        except BaseException as exc:
            release()
            record.outcome = "error" if isinstance(exc, Exception) else "cancelled"
            record.error_type = _error_type(exc)
            record.log()
            observed.end(record)
            if isinstance(exc, ApiError) or not isinstance(exc, Exception):
                raise
            raise _internal_error() from None
        answer = steps.Steps(
            first, messages, ask, tools, settings, self.approvals, observed, decided
        )
        halt = asyncio.get_running_loop().create_future()
        # An answer going on after approvals is the same message, as the AI SDK expects.
        continued = request.messages[-1].id if decided else None
        encoder = UIMessageStream(continued or f"msg-{uuid.uuid4().hex}")
        batches = _ui_message_stream(answer, record, observed, settings, release, halt, encoder)
        # Some providers (Gemini) only answer the request once the stream is read: wait for the
        # first chunk, so a refusal within the first heartbeat is still a plain HTTP error.
        opening = await anext(batches)
        return _prepend(opening, batches), halt

    @contextmanager
    def _refusals_counted(self) -> Iterator[None]:
        """Around what may refuse a request before its answer begins."""
        try:
            yield
        except ApiError as exc:
            self.telemetry.refused(exc.type)
            raise

    async def _take_approvals(
        self, request: ChatRequest, files: RequestFiles
    ) -> steps.Decided | None:
        """The calls the request approves or denies, each approval taken once and only for the
        call that was asked (409 otherwise); None when it decides on none."""
        approved: list[tuple[MessagePart, steps.Call]] = []
        denied: list[tuple[MessagePart, str]] = []
        for part in request.decided_calls():
            call_id, approval = part.tool_call_id or "", part.approval
            assert approval is not None  # decided
            pending = await self.approvals.take(approval.id)
            if not approval.approved:
                denied.append((part, call_id))
            elif pending and pending.is_call(call_id, part.tool(), part.input):
                approved.append((part, steps.Call(call_id, pending.tool, json.dumps(part.input))))
            else:
                raise not_pending(approval.id)
        if not (approved or denied):
            return None

        def messages(outcomes: dict[str, steps.ToolOutput | steps.ToolError]) -> list[dict]:
            for part, call in approved:
                match outcomes[call.id]:
                    case steps.ToolError(text=text):
                        part.state, part.error_text = "output-error", text
                    case steps.ToolOutput(output=output):
                        part.state, part.output = "output-available", output
            for part, _ in denied:
                part.state = "output-denied"
            return request.llm_messages(files.content_part)

        calls = [call for _, call in approved]
        return steps.Decided(calls, [call_id for _, call_id in denied], messages)

    async def stop(self, chat_id: str, caller: Caller) -> None:
        """`DELETE /api/chat/{id}/stream`: end that chat's answer at once with `abort`, which
        closes the provider call; 404 when none is running."""
        self.access.authorize(caller)
        if not await self.answers.stop(chat_id):
            raise ApiError(404, "no_active_answer", f"No answer of chat {chat_id!r} is running.")

    def health(self) -> dict:
        """`GET /api/health`: alive, at once; which provider serves the default model and
        whether its key is configured, once LiteLLM has loaded (`"llm": "ready"`); with
        `REDIS_URL`, `"status": "degraded"` while Redis is unreachable (still 200: the
        process answers, see `redis_link`), and with `MCP_SERVERS` while a server is."""
        health = {"status": "ok", **llm.describe(self.settings.llm_model, self.settings)}
        if self.settings.redis_url:
            health["redis"] = "ok" if redis_watch.reachable else "unreachable"
            health["status"] = "ok" if redis_watch.reachable else "degraded"
        if mcp := self.mcp:
            health["mcp"] = mcp.health()
            if any(status != "ok" for status in health["mcp"].values()):
                health["status"] = "degraded"
        return health

    def metrics(self, authorization: str | None) -> bytes:
        """`GET /api/metrics`: this process's metrics in Prometheus's text format, to the
        bearer of `METRICS_TOKEN` (404 without one: none are kept)."""
        if self.settings.metrics_token is None:
            raise ApiError(404, "not_found", "Metrics are off: set METRICS_TOKEN to serve them.")
        if not bearer_is(authorization, self.settings.metrics_token.get_secret_value()):
            message = "A valid `Authorization: Bearer` token is required."
            raise ApiError(401, "unauthorized", message)
        from prometheus_client import generate_latest

        registry = self.telemetry.registry
        assert registry is not None  # kept with METRICS_TOKEN
        return generate_latest(registry)

    def models(self, caller: Caller) -> dict:
        """`GET /api/models`: the allow-list, default first."""
        self.access.authorize(caller)
        return {"default": self.settings.llm_model, "models": self.settings.allowed_models}


def _check_request(request: ChatRequest, model: str, settings: Settings) -> None:
    # Over HTTP the body's own limit meets it first; the page sends its conversation as it is.
    if sum(len(message.text()) for message in request.messages) > settings.max_request_bytes:
        raise body_too_large(settings.max_request_bytes)
    if model not in settings.allowed_models:
        allowed = ", ".join(settings.allowed_models)
        raise ApiError(
            400, "model_not_allowed", f"model {model!r} is not allowed; choose one of: {allowed}."
        )
    if len(request.messages) > settings.max_messages:
        raise ApiError(
            422, "too_many_messages", f"messages: at most {settings.max_messages} are accepted."
        )
    for index, message in enumerate(request.messages):
        if len(message.text()) > settings.max_message_chars:
            raise ApiError(
                422,
                "message_too_long",
                f"messages.{index}: at most {settings.max_message_chars} characters are accepted.",
            )


@dataclass
class AccessRecord:
    """One line of the access log per chat request; message contents only with LOG_CONTENT."""

    client: str
    model: str
    visitor: str | None = None  # a page visitor's pseudonymous id (see access.Caller)
    # completed | cancelled | stopped (DELETE) | error | aborted | cut_off | limited | refused
    # (an approval that is not pending)
    outcome: str = "completed"
    ttft_ms: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    duration_ms: int | None = None
    finish_reason: str | None = None
    error_type: str | None = None  # what failed: an ApiError's type, or internal_error
    stream_path: str | None = None  # how the provider's stream was read: provider | litellm
    messages: list[dict] | None = None

    def log(self) -> None:
        fields = {key: value for key, value in asdict(self).items() if value is not None}
        access_log.info(json.dumps({"event": "chat", **fields}))


class Pacing(Enum):
    """What `_paced` mixes into the model's events."""

    HEARTBEAT = "heartbeat"  # silence for SSE_HEARTBEAT_S: keep proxies from closing the stream
    SHUTDOWN = "shutdown"  # the server is stopping
    TOO_LONG = "too_long"  # MAX_STREAM_S reached
    IDLE = "idle"  # the provider silent for LLM_TIMEOUT_S


async def _ui_message_stream(
    stream: steps.Steps,
    record: AccessRecord,
    observed: telemetry.Answer,
    settings: Settings,
    release: Callable[[], None],
    halt: asyncio.Future,
    encoder: UIMessageStream,
) -> AsyncGenerator[Chunks]:
    """The answer as UI message chunks; however it ends, the provider connection is closed,
    the caller's stream slot given back, the access log written and the answer's telemetry
    ended. `halt` ends it early with the `Halt` it resolves to."""
    started = observed.started
    announced = False
    with shutdown.watch() as stopping:
        events = _paced(stream, settings, stopping, halt)
        try:
            async for event in events:
                if not announced:
                    announced = True
                    yield encoder.start()
                if record.ttft_ms is None and isinstance(event, FIRST_OUTPUT):
                    record.ttft_ms = _ms_since(started)
                match event:
                    case llm.TextDelta(text):
                        observed.output(text)
                        yield encoder.delta(event.kind, text)
                    case llm.ReasoningDelta(text):
                        observed.output()
                        yield encoder.delta(event.kind, text)
                    case steps.StepStart():
                        yield encoder.start_step()
                    case steps.StepFinish():
                        yield encoder.finish_step()
                    case steps.ToolInputStart(call_id, name):
                        observed.output()
                        yield encoder.tool_input_start(call_id, name)
                    case steps.ToolInputDelta(call_id, text):
                        yield encoder.tool_input_delta(call_id, text)
                    case steps.ToolInputAvailable(call_id, name, arguments):
                        yield encoder.tool_input_available(call_id, name, arguments)
                    case steps.ToolOutput(call_id, output):
                        yield encoder.tool_output(call_id, output)
                    case steps.ToolError(call_id, text):
                        yield encoder.tool_error(call_id, text)
                    case steps.ApprovalRequested(call_id, approval_id):
                        yield encoder.tool_approval_request(call_id, approval_id)
                    case steps.ToolDenied(call_id):
                        yield encoder.tool_output_denied(call_id)
                    case llm.Finish():
                        record.input_tokens = event.input_tokens
                        record.output_tokens = event.output_tokens
                        record.finish_reason = event.reason
                        record.duration_ms = _ms_since(started)
                        yield encoder.finish(_metadata(event, record))
                    case Pacing.HEARTBEAT:
                        yield [HEARTBEAT]
                    case Pacing.SHUTDOWN:
                        record.outcome = "aborted"
                        yield encoder.abort()
                    case Halt.STOP:
                        record.outcome = "stopped"
                        observed.cancelled()
                        yield encoder.abort()
                    case Halt.OVERFLOW:
                        record.outcome = "cut_off"
                        limit = settings.resume_buffer_bytes
                        yield encoder.error(f"The answer outgrew {limit} bytes and was cut off.")
                    case Halt.FULL:
                        record.outcome = "cut_off"
                        yield encoder.error(
                            "The server holds too many answers to keep this one; it was cut off."
                        )
                    case Pacing.TOO_LONG:
                        record.outcome = "cut_off"
                        limit_s = settings.max_stream_s
                        yield encoder.error(f"The answer took over {limit_s:g} s and was cut off.")
                    case Pacing.IDLE:
                        record.outcome, record.error_type = "error", "upstream_timeout"
                        yield encoder.error("The model provider stopped sending; try again.")
        except ApiError as exc:
            record.outcome, record.error_type = "error", exc.type
            if not announced:
                raise  # nothing is sent yet: the adapter answers with an HTTP error
            yield encoder.error(exc.message)
        except Exception:
            record.outcome, record.error_type = "error", "internal_error"
            error = _internal_error()
            if not announced:
                raise error from None
            yield encoder.error(error.message)
        except BaseException:
            record.outcome = "cancelled"
            observed.cancelled()
            raise
        finally:
            release()
            try:
                await events.aclose()  # first, so no read of the stream is still pending
                await stream.aclose()
            finally:
                record.stream_path = stream.path
                record.duration_ms = record.duration_ms or _ms_since(started)
                record.log()
                observed.end(record)


def _error_type(exc: BaseException) -> str | None:
    if isinstance(exc, ApiError):
        return exc.type
    return "internal_error" if isinstance(exc, Exception) else None


def _internal_error() -> ApiError:
    """A bug met while answering (the provider's failures are `ApiError`s already, see `llm`):
    logged with its traceback, and told to the client without it. Called in `except`."""
    logger.exception("The answer failed")
    return ApiError(500, "internal_error", "The server failed while answering; it is logged.")


def _nothing() -> None:
    pass


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _metadata(finish: llm.Finish, record: AccessRecord) -> dict:
    return {
        "model": record.model,
        "finishReason": finish.reason,
        "usage": {"inputTokens": finish.input_tokens, "outputTokens": finish.output_tokens},
        "ttftMs": record.ttft_ms,
        "durationMs": record.duration_ms,
    }


async def _prepend(first: Chunks, rest: AsyncGenerator[Chunks]) -> AsyncGenerator[Chunks]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()


async def _releasing(batches: AsyncGenerator[Chunks], release: Callable[[], None]):
    """`batches`, giving the caller's stream slot back when the client is done with them."""
    try:
        async for batch in batches:
            yield batch
    finally:
        release()
        await batches.aclose()


async def _paced(
    events: AsyncIterable, settings: Settings, stopping: asyncio.Future, halt: asyncio.Future
) -> AsyncGenerator[steps.Event | Pacing | Halt]:
    """Yield `events`, with a heartbeat after each `SSE_HEARTBEAT_S` of silence; end with
    `SHUTDOWN` once `stopping` resolves, the `Halt` once `halt` resolves, `IDLE` after
    `LLM_TIMEOUT_S` of silence, or `TOO_LONG` after `MAX_STREAM_S` in all.

    The pending read runs as a task so a heartbeat never cancels it.
    """
    iterator = aiter(events)
    pending = None
    now = time.monotonic()
    cut_off_at = now + settings.max_stream_s
    idle_at = now + settings.llm_timeout_s
    try:
        while True:
            pending = asyncio.ensure_future(anext(iterator))
            while True:
                wait_s = min(settings.sse_heartbeat_s, idle_at - now, cut_off_at - now)
                done, _ = await asyncio.wait(
                    {pending, stopping, halt},
                    timeout=max(wait_s, 0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                now = time.monotonic()
                if stopping in done:
                    yield Pacing.SHUTDOWN
                    return
                if halt in done:
                    yield halt.result()
                    return
                if now >= cut_off_at:
                    yield Pacing.TOO_LONG
                    return
                if pending in done:
                    break
                if now >= idle_at:
                    yield Pacing.IDLE
                    return
                yield Pacing.HEARTBEAT
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            idle_at = now + settings.llm_timeout_s
            if isinstance(event, TOOL_RUNNING):  # the tools run before the model is asked
                idle_at += settings.tool_timeout_s
            yield event
    finally:
        if pending is not None:
            await _discard(pending)


async def _discard(read: asyncio.Future) -> None:
    """Cancel a read still running and take the outcome of one that has ended: the provider's
    stream may end just as the client leaves, and asyncio logs an outcome nobody took."""
    read.cancel()
    await asyncio.wait({read})
    if not read.cancelled():
        read.exception()
