"""Every use of the OpenAI SDK's internals, in one module: the fast stream path (`llm.py`) reads
the SDK's server-sent events without building its typed chunk objects, which the SDK has no
public API for. `missing_internals()` runs at start-up: when an SDK upgrade drops one of them,
the app streams through LiteLLM's public path instead and says so.
`tests/unit/test_compat.py` fails when the installed SDK is not the one checked here.
"""

import functools
import inspect
from collections.abc import AsyncGenerator

WRITTEN_FOR = "3.60.0"


def is_sdk_stream(chunks: object) -> bool:
    from openai import AsyncStream

    return isinstance(chunks, AsyncStream)


async def event_data(stream) -> AsyncGenerator[str]:
    """The data of each event of an SDK stream up to `[DONE]`, decoded and with the SDK's own
    error types, as the SDK's iteration reads them; the body read to its end, so the
    connection goes back to the pool."""
    from openai._streaming_cleanup import drain_response_async

    try:
        async for event in stream._iter_events():
            if event.data.startswith("[DONE]"):
                if stream.response.http_version == "HTTP/1.1":
                    await drain_response_async(stream.response)
                return
            yield event.data
    finally:
        await stream.response.aclose()


@functools.cache
def missing_internals() -> list[str]:
    """What `event_data` uses that the installed OpenAI SDK lacks."""
    from openai import AsyncStream

    missing = []
    if not inspect.isasyncgenfunction(getattr(AsyncStream, "_iter_events", None)):
        missing.append("AsyncStream._iter_events")
    try:
        from openai._streaming_cleanup import drain_response_async  # noqa: F401
    except ImportError:
        missing.append("openai._streaming_cleanup.drain_response_async")
    return missing
