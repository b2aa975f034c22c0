"""A conversation's title, asked of the model after its first answer: a few words naming what it
is about, so that two conversations begun alike can be told apart in the list."""

import asyncio
import logging
import re

from . import llm
from .errors import ApiError
from .settings import Settings

logger = logging.getLogger(__name__)
TITLE_CHARS = 60
# What the model is asked, as one message ending where the title begins: the small embedded
# model answers a system instruction's question instead, but completes this.
INSTRUCTION = "Summarize this request as a title of at most five words."
PROMPT = INSTRUCTION + "\n\nRequest: {}\n\nTitle:"
# A label or quotes a model may put around the title.
_WRAPPING = re.compile(r'^\s*(title\s*:\s*)?["\'*`#]*|["\'*`.]*\s*$', re.IGNORECASE)


async def suggest_title(question: str, model: str, settings: Settings) -> str | None:
    """The model's title for a conversation that begins with `question`; None if it fails or
    says nothing usable, within LLM_TIMEOUT_S. Short: at most a few dozen tokens."""
    messages = [{"role": "user", "content": PROMPT.format(question[:2000])}]
    brief = settings.model_copy(update={"max_tokens": 24})
    try:
        stream = await llm.open_stream(messages, model, brief)  # bounded by LLM_TIMEOUT_S
        try:
            async with asyncio.timeout(settings.llm_timeout_s):
                text = "".join([e.text async for e in stream if isinstance(e, llm.TextDelta)])
        finally:
            await stream.aclose()
    except (ApiError, TimeoutError) as exc:  # the title is a nicety: the first words stay
        logger.info("No title from %s: %r", model, exc)
        return None
    return cleaned(text)


def cleaned(text: str) -> str | None:
    """The title in `text`: its first line, without a label or quotes, cut at a word."""
    line = next((line for line in text.strip().splitlines() if line.strip()), "")
    title = _WRAPPING.sub("", line).strip()
    if len(title) > TITLE_CHARS:
        title = title[:TITLE_CHARS].rsplit(" ", 1)[0] + "…"
    return title or None
