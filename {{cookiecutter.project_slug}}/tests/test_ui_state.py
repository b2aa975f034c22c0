"""The chat state's handlers, run by Reflex's own event processor against the real API.

No browser: events go through `BaseStateEventProcessor` as they would from a websocket, and
every state delta and script the browser would receive is recorded. (`test_browser.py` runs
the page itself.)
"""

import asyncio
import json
import re
from unittest import mock

import pytest
from reflex.istate.manager.memory import StateManagerMemory
from reflex_base.event import Event
from reflex_base.event.context import EventContext
from reflex_base.event.processor import BaseStateEventProcessor
from reflex_base.utils.format import format_event_handler

from {{ cookiecutter.package_name }}.settings import get_settings
from {{ cookiecutter.package_name }}_ui import history
from {{ cookiecutter.package_name }}_ui.state import ChatState

from .fake_upstream import SCRIPTS, streamed_text

TOKEN = "test-client-token"


class Browser:
    """Sends events like a connected page and keeps every delta and event pushed to it."""

    def __init__(self, processor: BaseStateEventProcessor):
        self.processor = processor
        self.deltas: list[dict] = []
        self.events: list[Event] = []

    async def send(self, handler: str, **payload) -> None:
        name = format_event_handler(ChatState.event_handlers[handler])
        event = Event(name=name, router_data={"query": {}, "path": "/"}, payload=payload)
        await self.processor.enqueue(TOKEN, event)

    def values(self, var: str) -> list:
        """Every value of a ChatState var pushed to the page, in order."""
        return [
            value
            for delta in self.deltas
            for state, changes in delta.items()
            if state.endswith("chat_state")
            for name, value in changes.items()
            if name.split("_rx_state_")[0] == var
        ]

    def draft_pushes(self) -> list[str]:
        """The text of each append to the page's draft, in order."""
        scripts = [event.payload.get("function", "") for event in self.events]
        appended = (re.search(r'\+ ("(?:[^"\\]|\\.)*")\)\)$', script) for script in scripts)
        return [json.loads(match[1]) for match in appended if match]

    async def wait_for(self, var: str, predicate, timeout_s: float = 15) -> None:
        async with asyncio.timeout(timeout_s):
            while not any(predicate(value) for value in self.values(var)):
                await asyncio.sleep(0.01)


@pytest.fixture
async def browser(api, monkeypatch, tmp_path):
    monkeypatch.setenv("API_URL", api)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'chat.db'}")
    history.engine.cache_clear()
    # 4 tokens of the fake-slow script (one per 50 ms) per push to the page.
    monkeypatch.setenv("UI_FLUSH_MS", "200")
    get_settings.cache_clear()
    processor = BaseStateEventProcessor(
        backend_exception_handler=pytest.fail, graceful_shutdown_timeout=2
    )
    browser = Browser(processor)

    async def emit_delta(token: str, delta) -> None:
        browser.deltas.append(delta)

    async def emit_event(token: str, *events) -> None:
        browser.events.extend(events)

    state_manager = StateManagerMemory()
    processor._root_context = EventContext(
        token="",
        state_manager=state_manager,
        enqueue_impl=processor.enqueue_many,
        emit_delta_impl=emit_delta,
        emit_event_impl=emit_event,
    )
    with mock.patch.object(processor, "_rehydrate", new=mock.AsyncMock()):
        async with processor:
            yield browser
    await state_manager.close()
    get_settings.cache_clear()
    history.engine.cache_clear()


def saved_messages(browser: Browser) -> list[history.StoredMessage]:
    conversation_id = browser.values("conversation_id")[-1]
    return history.messages(conversation_id)


async def test_answer_is_pushed_as_new_text_only_then_lands_in_the_history(browser, upstream):
    await browser.send("set_model", model="openai/fake-slow")
    await browser.send("send", form_data={"question": "Count for me"})
    await browser.wait_for("streaming", lambda streaming: streaming is False, timeout_s=30)

    full = streamed_text(SCRIPTS["fake-slow"].tokens)
    pushes = browser.draft_pushes()
    # Only what is new, coalesced: several pushes, far fewer than tokens, each continuing the
    # text; the rest comes with the finished answer.
    assert full.startswith("".join(pushes))
    assert 3 <= len(pushes) < SCRIPTS["fake-slow"].tokens / 2
    answer = browser.values("messages")[-1][-1]
    assert (answer.role, answer.content, answer.status) == ("assistant", full, "done")
    assert "openai/fake-slow" in answer.details
    saved = saved_messages(browser)
    assert [(m.role, m.content, m.status) for m in saved] == [
        ("user", "Count for me", "done"),
        ("assistant", full, "done"),
    ]


async def test_stop_keeps_the_partial_answer_and_closes_the_upstream(browser, upstream):
    await browser.send("set_model", model="openai/fake-slow")
    await browser.send("send", form_data={"question": "Count for me"})
    async with asyncio.timeout(15):
        while not browser.draft_pushes():
            await asyncio.sleep(0.01)
    await browser.send("stop")
    await browser.wait_for("streaming", lambda streaming: streaming is False)

    answer = browser.values("messages")[-1][-1]
    assert answer.status == "stopped"
    assert 0 < len(answer.content) < len(streamed_text(SCRIPTS["fake-slow"].tokens))
    assert saved_messages(browser)[-1].status == "stopped"
    record = upstream.last("fake-slow")
    assert record.closed.wait(timeout=2)
    assert not record.completed


async def test_provider_failure_shows_next_to_the_partial_text(browser):
    await browser.send("set_model", model="openai/fake-fail-mid")
    await browser.send("send", form_data={"question": "Try"})
    await browser.wait_for("streaming", lambda streaming: streaming is False)

    answer = browser.values("messages")[-1][-1]
    assert answer.status == "error"
    assert answer.content == streamed_text(SCRIPTS["fake-fail-mid"].fail_after)
    assert answer.error
    assert (saved_messages(browser)[-1].status, saved_messages(browser)[-1].error) == (
        "error",
        answer.error,
    )


async def test_the_system_prompt_goes_first_to_the_model(browser, upstream):
    await browser.send("set_model", model="openai/fake-fast")
    await browser.send("set_system_prompt", system_prompt="Answer in French.")
    await browser.send("send", form_data={"question": "Hello"})
    await browser.wait_for("streaming", lambda streaming: streaming is False)

    assert history.get_conversation(browser.values("conversation_id")[-1]).system_prompt == (
        "Answer in French."
    )
    assert upstream.last("fake-fast").messages == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
    ]
