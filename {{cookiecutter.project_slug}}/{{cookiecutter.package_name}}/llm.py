"""The only module that imports LiteLLM: a chat request in, an async stream of events out.

LiteLLM is imported lazily (it costs seconds and ~200 MB), on first use or in the background
at start-up, so the server answers health checks at once.
"""

import asyncio
import functools
import json
import logging
import os
import threading
from collections.abc import AsyncGenerator, Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import httpx

from . import litellm_compat, openai_compat
from .attachments import Attachment, unreadable
from .errors import ApiError
from .settings import Settings

# Without this LiteLLM tries to download its model cost map at import, for seconds, offline.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# In its default DEV mode LiteLLM loads .env itself at import, turning each blank `KEY=` line
# into an empty variable that it then counts as configured; settings.py loads .env instead.
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    kind: ClassVar[str] = "text"


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str
    kind: ClassVar[str] = "reasoning"


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call: the first piece of a call has its `id` and `name`, the others
    only more `arguments` (JSON text) for the call at `index`."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str
    input_tokens: int | None
    output_tokens: int | None


Event = TextDelta | ReasoningDelta | ToolCallDelta | Finish


@functools.cache
def litellm():
    import litellm as module

    module.suppress_debug_info = True
{%- if cookiecutter.llm_provider == "local" %}
    from . import local_model

    local_model.register(module)
{%- endif %}
    return module


# Taken by the first call and never released: the preload runs once a process.
_preload_once = threading.Lock()
_preloaded = threading.Event()


def preload_in_background(settings: Settings) -> None:
    """Start importing LiteLLM now (once a process), so the first chat request does not pay for
    it; then say what the default model still needs, so a missing key shows at start-up."""
    if _preload_once.acquire(blocking=False):
        threading.Thread(
            target=_preload, args=(settings,), name="litellm-import", daemon=True
        ).start()


def _preload(settings: Settings) -> None:
    try:
        llm = litellm()
        if missing := _missing_env(llm, settings.llm_model, settings):
            logger.warning(_needs(settings.llm_model, missing))
        if not _litellm_callbacks_set(llm):  # they would log the rehearsal as an answer
            asyncio.run(_rehearse(llm))
        _log_stream_path(llm, settings)
{%- if cookiecutter.llm_provider == "local" %}
        # Offered at all, the embedded model loads now: cold, that takes a second or more,
        # which the first answer would otherwise spend silent.
        if any(is_embedded(model) for model in settings.allowed_models):
            from . import local_model

            try:
                local_model.engine()
            except local_model.WeightsError as exc:
                logger.error("%s", exc)  # and its answers fail with it; the others go on
{%- endif %}
    finally:
        _preloaded.set()


async def _rehearse(llm) -> None:
    """Stream one mocked answer (nothing leaves the process): LiteLLM finishes setting up its
    request path on first use, which took the first real answer ~0.3 s longer here."""
    question = [{"role": "user", "content": "Hi"}]
    stream = await llm.acompletion(
        model="openai/rehearsal", messages=question, stream=True, mock_response="Hi"
    )
    async for _ in stream:
        pass
    await stream.aclose()


def is_embedded(model: str) -> bool:
    """The small model that runs inside the app (llama.cpp, LiteLLM's `local` provider)."""
    return model.startswith("local/")


async def file_kinds(model: str, settings: Settings) -> set[str]:
    """The kinds of file `model` reads (see `attachments`): text files, inlined, always; images
    and PDFs when LiteLLM's model list says so (False for a model it does not know), or
    VISION_MODELS and PDF_MODELS do. The embedded model reads text only."""
    llm = await asyncio.to_thread(litellm)
    kinds = {"text"}
    listed = not is_embedded(model)
    if model in settings.vision_models or (listed and llm.supports_vision(model)):
        kinds.add("image")
    if model in settings.pdf_models or (listed and llm.supports_pdf_input(model)):
        kinds.add("pdf")
    return kinds


async def check_model_reads(
    model: str, attachments: Iterable[Attachment], settings: Settings
) -> None:
    """Refuse, before any provider call, a file of a kind `model` does not read (422)."""
    attachments = list(attachments)
    if not attachments:
        return
    kinds = await file_kinds(model, settings)
    for attachment in attachments:
        if attachment.kind not in kinds:
            raise ApiError(422, "model_cannot_read_file", unreadable(model, attachment, kinds))


def _needs(model: str, missing: list[str]) -> str:
    return f"Model {model} needs {', '.join(missing)}; set it in .env and restart."


def describe(model: str, settings: Settings) -> dict:
    """Which provider serves `model` and which of its variables are missing; while LiteLLM (or
    the embedded model) is still loading, only the model, so that health checks never wait."""
    if not _preloaded.is_set():
        preload_in_background(settings)
        return {"model": model, "llm": "loading"}
    llm = litellm()
    _, provider, _, _ = llm.get_llm_provider(model)
    missing = _missing_env(llm, model, settings)
    return {
        "model": model,
        "llm": "ready",
        "provider": provider,
        "missing_env": missing,
        "api_key_configured": not missing,
    }


def _missing_env(llm, model: str, settings: Settings) -> list[str]:
    """LiteLLM's own check; `LLM_API_KEY` and `LLM_API_BASE` stand in for the provider's."""
    checked = llm.validate_environment(
        model=model, api_key=_api_key(settings), api_base=settings.llm_api_base
    )
    return checked["missing_keys"]


def _api_key(settings: Settings) -> str | None:
    return settings.llm_api_key.get_secret_value() if settings.llm_api_key else None


class CompletionStream:
    """An open streamed completion. Iterate it for events; `aclose()` hangs up on the provider.

    Breaking out of LiteLLM's stream does not close the provider connection, `aclose()` does,
    so whoever opens a stream must close it (the chat core does, in `finally`).

    `fast` reads the provider's stream as LiteLLM's provider code parsed it (OpenAI SDK streams
    parsed by LiteLLM's own OpenAI chunk parser), skipping the wrapper that rebuilds every
    chunk, keeps them all and logs them (most of LiteLLM's CPU per token); the events are the
    same either way (`tests/test_fast_stream.py`). It takes private names of LiteLLM and the
    OpenAI SDK, kept in `litellm_compat` and `openai_compat`: without them, it is not taken.

    Only the provider's failures become `ApiError`s; a bug in making events of its chunks goes
    on to the chat core, which logs it.
    """

    def __init__(self, response, fast: bool):
        self._response = response
        self._events = self._read(fast)
        self.path = "provider" if fast else "litellm"  # for the access log

    def __aiter__(self) -> AsyncGenerator[Event]:
        return self._events

    async def aclose(self) -> None:
        await self._events.aclose()
        await self._response.aclose()

    async def _read(self, fast: bool) -> AsyncGenerator[Event]:
        ending = _Ending()
        async for chunk in self._chunks(fast):
            for event in _events_of(chunk, ending):
                yield event
        yield ending.finish()

    async def _chunks(self, fast: bool) -> AsyncGenerator:
        """The provider's chunks. Whatever fails in reading them is the provider's failure, as
        LiteLLM's own stream wrapper has it (it maps every exception of the provider's code to
        its types); a bug in the events made of them is not."""
        chunks = self._response
        try:
            if fast:
                chunks = await litellm_compat.provider_stream(self._response)
                chunks = _parsed_by_litellm(chunks)
            if not hasattr(chunks, "__aiter__"):  # a blocking SDK's stream: the wrapper runs it
                chunks, self.path = self._response, "litellm"
            async for chunk in chunks:
                yield chunk
        except Exception as exc:
            if fast:
                exc = litellm_compat.mapped_exception(self._response, exc)
            raise provider_error(exc) from None
        finally:
            await self._response.aclose()


def _parsed_by_litellm(chunks):
    """An OpenAI SDK stream (the providers LiteLLM reaches through that SDK) with each chunk
    parsed by LiteLLM's own parser of OpenAI chunks; any other stream as it is.

    The SDK builds a typed object of each chunk: 117 µs a chunk here, against 26 µs for
    LiteLLM's parser, and a third of the route's CPU per token under load.
    """
    if not openai_compat.is_sdk_stream(chunks):
        return chunks
    return _openai_chunks(chunks)


async def _openai_chunks(stream) -> AsyncGenerator:
    parse = litellm_compat.openai_chunk_parser()
    async for data in openai_compat.event_data(stream):
        yield parse(json.loads(data))


def fast_path_missing() -> list[str]:
    """What the fast stream path needs that the installed LiteLLM or OpenAI SDK lacks."""
    return litellm_compat.missing_internals() + openai_compat.missing_internals()


@dataclass
class _Ending:
    """What the chunks said so far about how the answer ends."""

    reason: str = "stop"
    usage: object = None

    def finish(self) -> Finish:
        def count(name: str) -> int | None:
            usage = self.usage
            return usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)

        return Finish(self.reason, count("prompt_tokens"), count("completion_tokens"))


def _events_of(chunk, ending: _Ending) -> Iterator[Event]:
    """The deltas of one chunk, in either shape a provider's stream has: objects with `choices`
    (OpenAI's, LiteLLM's), or LiteLLM's `GenericStreamingChunk` dicts."""
    if isinstance(chunk, dict):
        if chunk.get("text"):
            yield TextDelta(chunk["text"])
        if chunk.get("tool_use"):
            yield _tool_call_delta(chunk["tool_use"])
        ending.reason = chunk.get("finish_reason") or ending.reason
        ending.usage = chunk.get("usage") or ending.usage
        return
    ending.usage = getattr(chunk, "usage", None) or ending.usage
    for choice in getattr(chunk, "choices", None) or ():
        if reasoning := getattr(choice.delta, "reasoning_content", None):
            yield ReasoningDelta(reasoning)
        if choice.delta.content:
            yield TextDelta(choice.delta.content)
        for call in getattr(choice.delta, "tool_calls", None) or ():
            yield _tool_call_delta(call)
        ending.reason = choice.finish_reason or ending.reason


def _tool_call_delta(call) -> ToolCallDelta:
    """From an OpenAI-shaped tool call delta: the SDK's object, LiteLLM's, or a plain dict."""

    def field(value, name: str):
        return value.get(name) if isinstance(value, dict) else getattr(value, name, None)

    function = field(call, "function")
    return ToolCallDelta(
        index=field(call, "index") or 0,
        id=field(call, "id"),
        name=field(function, "name"),
        arguments=field(function, "arguments") or "",
    )


def _why_not_fast(llm, settings: Settings) -> str | None:
    """Why answers are read through LiteLLM's stream wrapper instead of the fast path (see
    `CompletionStream`); None when they are not."""
    if not settings.llm_fast_stream:
        return "LLM_FAST_STREAM is off"
    if _litellm_callbacks_set(llm):
        return "LiteLLM callbacks are set"
    if missing := fast_path_missing():
        return f"the installed LiteLLM or OpenAI SDK lacks {', '.join(missing)}"
    return None


def _log_stream_path(llm, settings: Settings) -> None:
    if (why_not := _why_not_fast(llm, settings)) is None:
        logger.info("Answers stream on the fast path (the provider's parsed stream).")
    else:
        log = logger.warning if fast_path_missing() else logger.info
        log("Answers stream through LiteLLM's stream wrapper: %s.", why_not)


def _litellm_callbacks_set(llm) -> bool:
    """Callbacks (logging, cost tracking), post-call rules and response caching run in
    LiteLLM's stream wrapper: keep it for them. ("cache" is listed once any LiteLLM `Cache`
    exists; it acts only when `litellm.cache` is set.)"""
    lists = (llm.callbacks, llm.input_callback, llm.success_callback, llm.failure_callback)
    hooks = [c for callbacks in lists for c in callbacks if c != "cache"] + llm.post_call_rules
    return llm.cache is not None or bool(hooks)


# A provider closes its idle keep-alive connections together (a wave of answers leaves many in
# the pool), so a request can draw one closed connection after another; each try uses one up.
UNANSWERED_TRIES = 5


async def open_stream(
    messages: list[dict], model: str, settings: Settings, tools: list[dict] | None = None
) -> CompletionStream:
    """Send the request (with the definitions of the `tools` the model may call) and wait for
    the provider to accept it.

    Failures up to here (key, model, rate limit, timeout) raise `ApiError` while the client
    can still get a plain HTTP error; later ones surface from iterating the stream.
    """
    llm = await asyncio.to_thread(litellm)
    if missing := _missing_env(llm, model, settings):
        raise ApiError(503, "missing_configuration", _needs(model, missing))
    request = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": settings.max_tokens,
        "api_base": settings.llm_api_base,
        "api_key": _api_key(settings),
        "timeout": settings.llm_timeout_s,
        # LiteLLM's retries would repeat answers the provider refused or failed, which it may
        # have billed; only a request it never received is sent again, below.
        "max_retries": 0,
    }
    if tools and not is_embedded(model):  # the embedded model cannot call tools
        request["tools"] = tools
    fast = _why_not_fast(llm, settings) is None
    tries_left = UNANSWERED_TRIES
    while True:
        tries_left -= 1
        try:
            return CompletionStream(await llm.acompletion(**request), fast)
        except Exception as exc:
            if not is_provider_failure(exc):
                raise  # a bug: the chat core logs it
            if not (tries_left and never_answered(exc)):
                raise provider_error(exc) from None
            logger.info("the provider closed the connection unanswered; sending again")


def never_answered(exc: Exception) -> bool:
    """The connection failed before a byte of the response came back: the provider refused the
    connection, or closed it as the request went out, as it does to an idle keep-alive
    connection the pool then reuses. Such a request did nothing there and is safe to send again
    (browsers do the same). A timeout may have reached the provider: it is not retried."""
    causes = list(_causes(exc))
    if any(isinstance(cause, (httpx.TimeoutException, TimeoutError)) for cause in causes):
        return False
    connection_failures = (httpx.NetworkError, httpx.RemoteProtocolError, ConnectionError)
    return any(isinstance(cause, connection_failures) for cause in causes)


def is_provider_failure(exc: Exception) -> bool:
    """Whether `exc` is the provider's or the HTTP client's failure, as `acompletion` raises
    them (LiteLLM's types are the OpenAI SDK's); anything else is a bug, which must not pass
    for the provider's fault."""
    from openai import APIError

    return isinstance(exc, (APIError, httpx.HTTPError, OSError))  # OSError: TimeoutError too


def provider_error(exc: Exception) -> ApiError:
    """Translate a LiteLLM exception into a status and a message that leaks nothing upstream."""
    errors = litellm().exceptions
    exc = getattr(exc, "original_exception", None) or exc  # unwrap MidStreamFallbackError
    status = getattr(exc, "status_code", None)
    if isinstance(exc, errors.Timeout):
        return ApiError(504, "upstream_timeout", "The model provider did not answer in time.")
    if isinstance(exc, errors.AuthenticationError):
        return ApiError(401, "upstream_auth", "The model provider rejected the API key.")
    if isinstance(exc, errors.RateLimitError):
        return ApiError(
            429,
            "upstream_rate_limited",
            "The model provider is rate-limiting requests.",
            retry_after=_retry_after(exc),
        )
    if isinstance(exc, errors.ContextWindowExceededError):
        return ApiError(400, "context_too_long", "The conversation is too long for this model.")
    if isinstance(exc, errors.NotFoundError):
        return ApiError(400, "unknown_model", "The model provider does not know this model.")
    if isinstance(exc, errors.BadRequestError):
        return ApiError(400, "upstream_bad_request", "The model provider refused the request.")
    if any(isinstance(cause, (ConnectionError, httpx.ConnectError)) for cause in _causes(exc)):
        return ApiError(502, "upstream_unreachable", "The model provider could not be reached.")
    detail = f" (status {status})" if status else ""
    return ApiError(502, "upstream_error", f"The model provider failed{detail}.")


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc` and the exceptions behind it: LiteLLM re-raises a refused connection under
    provider-specific types, but the original stays in the chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _retry_after(exc: Exception, default: int = 5) -> int:
    # LiteLLM keeps the provider's headers here for every provider; `.response` not always.
    headers = getattr(exc, "litellm_response_headers", None) or {}
    value = headers.get("retry-after", "")
    return int(value) if value.isdigit() else default
