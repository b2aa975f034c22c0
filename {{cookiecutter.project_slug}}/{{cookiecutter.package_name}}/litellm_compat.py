"""Every use of LiteLLM's internals, in one module: what the fast stream path (`llm.py`) needs
and LiteLLM has no public API for. `missing_internals()` runs at start-up: when a LiteLLM
upgrade drops one of them, the app streams through LiteLLM's public path instead and says so.
`tests/unit/test_compat.py` fails when the installed LiteLLM is not the one checked here.
"""

import functools
import inspect
from collections.abc import Callable

WRITTEN_FOR = "1.110.2"


async def provider_stream(wrapper):
    """The provider's own stream inside LiteLLM's stream wrapper; some providers (Gemini)
    send the request only now."""
    return await wrapper.fetch_stream()


def openai_chunk_parser() -> Callable[[dict], object]:
    """LiteLLM's parser of an OpenAI chunk (a dict), as its wrapper would use it."""
    from litellm.llms.openai.chat.gpt_transformation import (
        OpenAIChatCompletionStreamingHandler,
    )

    handler = OpenAIChatCompletionStreamingHandler(streaming_response=None, sync_stream=False)
    return handler.chunk_parser


def mapped_exception(wrapper, exc: Exception) -> Exception:
    """The provider's exception as LiteLLM's type for it, as LiteLLM's wrapper would raise it
    (the wrapper's own exceptions are that type already, and come back unchanged)."""
    from litellm.litellm_core_utils.exception_mapping_utils import exception_type

    try:
        return exception_type(
            model=wrapper.model,
            custom_llm_provider=wrapper.custom_llm_provider,
            original_exception=exc,
        )
    except Exception as mapped:  # it raises the mapped exception rather than returning it
        return mapped


@functools.cache
def missing_internals() -> list[str]:
    """What the functions above use that the installed LiteLLM lacks."""
    from litellm.litellm_core_utils import exception_mapping_utils
    from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper
    from litellm.llms.openai.chat import gpt_transformation

    missing = []
    if not inspect.iscoroutinefunction(getattr(CustomStreamWrapper, "fetch_stream", None)):
        missing.append("CustomStreamWrapper.fetch_stream")
    wrapper_fields = inspect.signature(CustomStreamWrapper.__init__).parameters
    missing += [
        f"CustomStreamWrapper.{name}"
        for name in ("model", "custom_llm_provider")
        if name not in wrapper_fields
    ]
    handler = getattr(gpt_transformation, "OpenAIChatCompletionStreamingHandler", None)
    if not callable(getattr(handler, "chunk_parser", None)):
        missing.append("OpenAIChatCompletionStreamingHandler.chunk_parser")
    if not callable(getattr(exception_mapping_utils, "exception_type", None)):
        missing.append("exception_mapping_utils.exception_type")
    return missing
