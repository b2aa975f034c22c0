"""Chat state: the conversation, the answer being streamed, and Stop.

The in-progress answer lives in its own small var (`draft`) and is pushed at most once per
`UI_FLUSH_MS`: Reflex resends a changed var whole, so appending every token to the message
list would cost quadratic bytes. The finished answer moves into `messages` once.
"""

import asyncio
import dataclasses
import time

import httpx
import reflex as rx

from {{ cookiecutter.package_name }}.settings import get_settings

from .client import AnswerError, api_client, stream_answer


@dataclasses.dataclass
class Message:
    role: str
    content: str
    status: str = "done"  # done | stopped | error
    error: str = ""
    details: str = ""  # model, tokens and timing of an answer


def describe_finish(metadata: dict) -> str:
    """The quiet line under an answer: model, tokens, time to first token, duration."""
    parts = [metadata.get("model") or ""]
    usage = metadata.get("usage") or {}
    if usage.get("outputTokens") is not None:
        parts.append(f"{usage.get('inputTokens')} in / {usage['outputTokens']} out tokens")
    if metadata.get("ttftMs") is not None:
        parts.append(f"first token {metadata['ttftMs']} ms")
    if metadata.get("durationMs") is not None:
        parts.append(f"{metadata['durationMs'] / 1000:.1f} s")
    return " · ".join(part for part in parts if part)


class ChatState(rx.State):
    messages: list[Message] = []
    draft: str = ""
    streaming: bool = False
    models: list[str] = []
    model: str = ""

    @rx.event
    async def load_models(self):
        """Fill the model picker from the API's allow-list."""
        async with api_client(timeout=10) as client:
            response = await client.get("/api/models")
        if response.status_code == 200:
            self.models = response.json()["models"]
            self.model = self.model or response.json()["default"]

    @rx.event
    def set_model(self, model: str):
        self.model = model

    @rx.event
    def send(self, form_data: dict):
        question = (form_data.get("question") or "").strip()
        if not question or self.streaming:
            return None
        self.messages.append(Message(role="user", content=question))
        return ChatState.start_answer

    @rx.event
    def retry(self):
        """Drop the failed or stopped answer and ask again."""
        if self.streaming or not self.messages or self.messages[-1].role != "assistant":
            return None
        self.messages.pop()
        return ChatState.start_answer

    @rx.event
    def start_answer(self):
        self.streaming = True
        self.draft = ""
        return ChatState.generate(False)

    @rx.event
    def stop(self):
        # A newer call of a `supersedes` handler cancels the running one, even mid-read.
        return ChatState.generate(True)

    @rx.event(background=True, supersedes=True)
    async def generate(self, stop: bool):
        if stop:
            return
        async with self:
            history = [{"role": m.role, "content": m.content} for m in self.messages]
            model = self.model or None
        answer = Message(role="assistant", content="")
        pending: list[str] = []
        flush_s = get_settings().ui_flush_ms / 1000
        last_flush = time.monotonic()
        try:
            async for item in stream_answer(history, model):
                if isinstance(item, dict):
                    answer.details = describe_finish(item)
                    continue
                pending.append(item)
                if time.monotonic() - last_flush >= flush_s:
                    async with self:
                        self.draft += "".join(pending)
                    pending.clear()
                    last_flush = time.monotonic()
        except asyncio.CancelledError:
            answer.status = "stopped"
            raise
        except AnswerError as exc:
            answer.status, answer.error = "error", str(exc)
        except httpx.HTTPError:
            answer.status, answer.error = "error", "The API could not be reached."
        finally:
            async with self:
                answer.content = self.draft + "".join(pending)
                self.messages.append(answer)
                self.draft = ""
                self.streaming = False
