"""The chat state's handlers, run by Reflex's own event processor against the real API.

No browser: events go through `BaseStateEventProcessor` as they would from a websocket, and
every state delta and script the browser would receive is recorded. (`test_browser.py` runs
the page itself.)
"""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import reflex as rx
from reflex.istate.manager.memory import StateManagerMemory
from reflex.state import StateUpdate
from reflex_base.event import Event
from reflex_base.event.processor import BaseStateEventProcessor, EventFuture
from reflex_base.utils.format import format_event_handler
from sqlmodel import Session, select

from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}_ui import history
from {{ cookiecutter.package_name }}_ui.services import Services, services, use
from {{ cookiecutter.package_name }}_ui.state import ChatState

from .fake_upstream import SCRIPTS, streamed_text
from .support import wait_until_async

TOKEN = "test-client-token"


class Browser:
    """Sends events like a connected page and keeps every delta and event pushed to it: Reflex's
    event processor sends them to this object as it would to the websocket's namespace."""

    def __init__(self, processor: BaseStateEventProcessor):
        self.processor = processor
        self.deltas: list[dict] = []
        self.events: list[Event] = []
        self.errors: list[Exception] = []  # raised by a handler; the page would show a toast

    async def emit_update(self, update: StateUpdate, token: str) -> None:
        self.deltas.append(update.delta)
        self.events.extend(update.events)

    async def connect(self) -> None:
        """What a page does first on its websocket: ask for the whole state (hydrate). The
        tests look only at what changes afterwards."""
        await self.handle("hydrate", state=rx.State)
        self.deltas.clear()
        self.events.clear()

    async def send(self, handler: str, state: type[rx.State] = ChatState, **payload) -> EventFuture:
        name = format_event_handler(state.event_handlers[handler])
        event = Event(name=name, router_data={"query": {}, "path": "/"}, payload=payload)
        return await self.processor.enqueue(TOKEN, event)

    async def handle(self, handler: str, **payload) -> None:
        """Send an event and wait until it has been handled."""
        async with asyncio.timeout(15):
            await asyncio.wait([await self.send(handler, **payload)])

    def values(self, var: str) -> list:
        """Every value of a ChatState var pushed to the page, in order."""
        return [
            value
            for delta in self.deltas
            for name, value in delta.get(ChatState.get_full_name(), {}).items()
            if name == str(getattr(ChatState, var)).rsplit(".", 1)[1]  # as the page names it
        ]

    def history(self) -> history.History:
        """The history of this browser's owner id (its cookie)."""
        return history.History(self.values("owner")[-1], services().database)

    def draft_pushes(self) -> list[tuple[int, str]]:
        """Each append to the page's draft, in order: where it starts, and its text."""
        scripts = [event.payload.get("function", "") for event in self.events]
        appended = (re.search(r'slice\(0, (\d+)\) \+ ("(?:[^"\\]|\\.)*")', s) for s in scripts)
        return [(int(match[1]), json.loads(match[2])) for match in appended if match]

    def draft_shown(self) -> list[str]:
        """Each time the page's draft was set whole (a reload), its text."""
        scripts = [event.payload.get("function", "") for event in self.events]
        shown = (re.search(r'\(("(?:[^"\\]|\\.)*")\)\)$', s) for s in scripts)
        return [json.loads(match[1]) for match in shown if match]

    async def wait_for(self, var: str, predicate, timeout_s: float = 15) -> None:
        def seen() -> bool:
            return any(predicate(value) for value in self.values(var))

        await wait_until_async(seen, f"the page's {var} as expected", timeout_s)


def page_settings(api: str, tmp_path, **settings) -> Settings:
    """The page's settings (no password unless given) against the session's API."""
    database_url = f"sqlite:///{tmp_path / 'chat.db'}"
    # 4 tokens of the fake-slow script (one per 50 ms) per push to the page.
    page = {"api_url": api, "database_url": database_url, "ui_flush_ms": 200, "ui_password": None}
    return Settings(**(page | {"redis_url": None} | settings))


@pytest.fixture
async def browser(api, tmp_path):
    with use(Services(page_settings(api, tmp_path))):
        async with a_browser() as browser:
            yield browser


@asynccontextmanager
async def a_browser() -> AsyncIterator["Browser"]:
    browser = Browser(processor := BaseStateEventProcessor(graceful_shutdown_timeout=2))
    processor.backend_exception_handler = browser.errors.append
    state_manager = StateManagerMemory()
    processor.configure(state_manager=state_manager, event_namespace=browser)
    async with processor:
        await browser.connect()
        yield browser
    await state_manager.close()


def saved_messages(browser: Browser) -> list[history.StoredMessage]:
    return browser.history().messages(browser.values("conversation_id")[-1])


async def test_answer_is_pushed_as_new_text_only_then_lands_in_the_history(browser, upstream):
    await browser.send("set_model", model="openai/fake-slow")
    await browser.send("send", form_data={"question": "Count for me"})
    await browser.wait_for("streaming", lambda streaming: streaming is False, timeout_s=30)

    full = streamed_text(SCRIPTS["fake-slow"].tokens)
    pushes = browser.draft_pushes()
    # Only what is new, coalesced: several pushes, far fewer than tokens, each continuing the
    # text where the last one ended; the rest comes with the finished answer.
    assert full.startswith("".join(text for _, text in pushes))
    assert [at for at, _ in pushes] == [
        len("".join(text for _, text in pushes[:index])) for index in range(len(pushes))
    ]
    assert 3 <= len(pushes) < SCRIPTS["fake-slow"].tokens / 2
    answer = browser.values("messages")[-1][-1]
    assert (answer.role, answer.content, answer.status) == ("assistant", full, "done")
    assert "openai/fake-slow" in answer.details
    saved = saved_messages(browser)
    assert [(m.role, m.content, m.status) for m in saved] == [
        ("user", "Count for me", "done"),
        ("assistant", full, "done"),
    ]


async def test_tool_calls_show_while_they_run_and_are_saved_with_the_answer(browser):
    await browser.send("set_model", model="openai/fake-tools-2")
    await browser.send("send", form_data={"question": "Compute"})
    await browser.wait_for("streaming", lambda streaming: streaming is False)

    shown = [calls for calls in browser.values("live_tools") if calls]
    assert [call.state for call in shown[0]] == ["running"]  # the first call, as it starts
    assert [(call.state, call.result) for call in shown[-1]] == [("done", "42"), ("done", "4")]
    assert browser.values("live_tools")[-1] == []  # the answer holds them now
    answer = browser.values("messages")[-1][-1]
    assert [(call.name, call.arguments) for call in answer.tools] == [
        ("calculate", '{"expression": "6*7"}'),
        ("calculate", '{"expression": "2+2"}'),
    ]
    assert "42" in answer.content
    saved = saved_messages(browser)[-1]
    assert [call["result"] for call in json.loads(saved.tools)] == ["42", "4"]


async def test_a_reload_mid_answer_gets_the_whole_answer_so_far_and_it_is_saved_once(browser):
    await browser.send("set_model", model="openai/fake-slow")
    await browser.send("send", form_data={"question": "Count for me"})
    await wait_until_async(lambda: len(browser.draft_pushes()) >= 2, "two pushes", 15)
    await browser.handle("load")  # what a reloaded page sends first

    cleared, shown = browser.draft_shown()  # when the answer started, then for the reload
    assert cleared == ""
    assert len(shown) >= len("".join(text for _, text in browser.draft_pushes()[:2]))
    await browser.wait_for("streaming", lambda streaming: streaming is False, timeout_s=30)
    full = streamed_text(SCRIPTS["fake-slow"].tokens)
    assert full.startswith(shown)
    assert [(m.role, m.content) for m in saved_messages(browser)] == [
        ("user", "Count for me"),
        ("assistant", full),
    ]


async def test_stop_keeps_the_partial_answer_and_closes_the_upstream(browser, upstream):
    await browser.send("set_model", model="openai/fake-slow")
    await browser.send("send", form_data={"question": "Count for me"})
    await wait_until_async(browser.draft_pushes, "the first text is pushed to the page", 15)
    await browser.send("stop")
    await browser.wait_for("streaming", lambda streaming: streaming is False)

    answer = browser.values("messages")[-1][-1]
    assert answer.status == "stopped"
    assert 0 < len(answer.content) < len(streamed_text(SCRIPTS["fake-slow"].tokens))
    assert saved_messages(browser)[-1].status == "stopped"
    record = upstream.last("fake-slow")
    # Within the API's RESUME_GRACE_S (3 s): Stop stopped the answer, not the grace period.
    assert await asyncio.to_thread(record.closed.wait, 2)
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

    assert browser.history().get(browser.values("conversation_id")[-1]).system_prompt == (
        "Answer in French."
    )
    assert upstream.last("fake-fast").messages == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
    ]


async def test_another_visitors_conversation_opens_nothing_and_changes_nothing(browser):
    """Ids are sequential, so any page can name one: the events a page sends with it."""
    someone = history.History(history.new_owner_id(), services().database)
    theirs = someone.create("Someone's chat").id
    someone.add_message(history.StoredMessage(conversation_id=theirs, role="user", content="Hi"))
    await browser.handle("load")
    await browser.handle("open_conversation", conversation_id=theirs)
    await browser.handle("start_rename", conversation_id=theirs)
    await browser.handle("finish_rename", form_data={"title": "Mine now"})
    await browser.handle("delete_conversation", conversation_id=theirs)

    assert set(browser.values("conversation_id")) <= {0}
    assert all(messages == [] for messages in browser.values("messages"))
    assert all(conversations == [] for conversations in browser.values("conversations"))
    assert someone.get(theirs).title == "Someone's chat"
    assert [m.content for m in someone.messages(theirs)] == ["Hi"]
    assert browser.errors == []


async def test_behind_the_gate_nothing_is_read_or_saved_until_the_password(browser, api, tmp_path):
    # With API_TOKEN, as a gated deployment has it (the gate warns without one).
    gated = page_settings(api, tmp_path, ui_password="correct horse", api_token="s3cret")
    with use(Services(gated)):
        await browser.handle("load")
        assert browser.values("locked")[-1] is True
        await browser.handle("send", form_data={"question": "Sneaking past the gate"})
        assert [type(error).__name__ for error in browser.errors] == ["Locked"]
        with Session(services().database) as session:
            assert session.exec(select(history.Conversation)).all() == []

        await browser.handle("unlock", form_data={"password": "wrong"})
        assert browser.values("gate_error")[-1] == "That is not the password."
        assert browser.values("session") == []
        await browser.handle("unlock", form_data={"password": "correct horse"})
        assert services().gate.admits(browser.values("session")[-1])
        await browser.wait_for("locked", lambda locked: locked is False)  # then it loads
        assert browser.values("gate_error")[-1] == ""
