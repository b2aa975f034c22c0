"""The chat state's handlers and their seam to the chat core (`answers`), in process: real
LiteLLM against the fake provider, no server of the app's and no browser.

Events go through Reflex's own `BaseStateEventProcessor` as they would from a websocket, and
every state delta and script the browser would receive is recorded. (`test_browser.py` runs
the page itself.)
"""

import asyncio
import io
import itertools
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import reflex as rx
from reflex.istate.manager.memory import StateManagerMemory
from reflex.state import StateUpdate
from reflex_base.event import Event
from reflex_base.event.processor import BaseStateEventProcessor, EventFuture
from reflex_base.utils.format import format_event_handler
from sqlmodel import Session, select
from starlette.datastructures import Headers

from {{ cookiecutter.package_name }} import tools
from {{ cookiecutter.package_name }}.chat import Chat, access_log
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}_ui import history
from {{ cookiecutter.package_name }}_ui.answers import (
    AnswerError,
    ToolCall,
    follow_answer,
    open_answer,
    stop_answer,
    visitor,
)
from {{ cookiecutter.package_name }}_ui.models import label
from {{ cookiecutter.package_name }}_ui.services import Services, services, use
from {{ cookiecutter.package_name }}_ui.state import ChatState, title_of

from .conftest import DEFAULT_MODEL, FAKE_KEY, RESUME_GRACE_S, TEST_MODELS
from .fake_upstream import SCRIPTS, streamed_text
from .support import CSV, PNG, wait_until_async

TOKEN = "test-client-token"
ADDRESS = "203.0.113.7"  # the page's websocket peer
SLOW_TEXT = streamed_text(SCRIPTS["fake-slow"].tokens)


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
        router_data = {"query": {}, "path": "/", "ip": ADDRESS}
        event = Event(name=name, router_data=router_data, payload=payload)
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
        """Each change to the page's draft, in order: an append (where it starts, its text),
        or the draft cleared (`(0, None)`)."""
        pushes = []
        for event in self.events:
            script = event.payload.get("function", "")
            if appended := re.search(r'slice\(0, (\d+)\) \+ ("(?:[^"\\]|\\.)*")', script):
                pushes.append((int(appended[1]), json.loads(appended[2])))
            elif "draft" in script and '("")' in script:
                pushes.append((0, None))
        return pushes

    def draft(self, pushes: list[tuple[int, str | None]]) -> str:
        """The page's draft after these pushes, as the page's own script puts each."""
        text = ""
        for at, appended in pushes:
            if appended is None:
                text = ""
            elif at <= len(text) < at + len(appended):
                text = text[:at] + appended
        return text

    async def wait_for(self, var: str, predicate, timeout_s: float = 15) -> None:
        def seen() -> bool:
            return any(predicate(value) for value in self.values(var))

        await wait_until_async(seen, f"the page's {var} as expected", timeout_s)


def page_settings(upstream, tmp_path, **settings) -> Settings:
    """The page's settings against the fake provider, with the default limits (no password
    unless given)."""
    page = {
        "llm_model": DEFAULT_MODEL,
        "llm_models": TEST_MODELS,
        "llm_api_base": upstream.base_url,
        "llm_api_key": FAKE_KEY,
        "tools": ["calculate", "current_time"],
        "resume_grace_s": RESUME_GRACE_S,
        "database_url": f"sqlite:///{tmp_path / 'chat.db'}",
        # 4 tokens of the fake-slow script (one per 50 ms) per push to the page.
        "ui_flush_ms": 200,
        "ui_password": None,
        "redis_url": None,
    }
    return Settings(**(page | settings))


@pytest.fixture
async def browser(upstream, tmp_path):
    with use(Services(page_settings(upstream, tmp_path))):
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

    full = SLOW_TEXT
    cleared, *pushes = browser.draft_pushes()
    assert cleared == (0, None)
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


def upload(name: str, media_type: str, data: bytes) -> rx.UploadFile:
    """A file as Reflex hands an upload to its handler."""
    headers = Headers({"content-type": media_type})
    return rx.UploadFile(file=io.BytesIO(data), path=Path(name), headers=headers)


async def test_files_are_checked_as_they_come_and_go_with_the_question_and_its_edits(
    browser, upstream
):
    await browser.send("set_model", model="openai/fake-fast")
    await browser.handle("attach", files=[upload("dot.png", "image/png", PNG)])
    refused = browser.values("file_notice")[-1]
    await browser.handle("attach", files=[upload("cities.csv", "text/csv", CSV)])
    await browser.send("send", form_data={"question": "Which city?"})
    await wait_until_async(lambda: browser.values("streaming") == [True, False], "an answer", 15)
    await browser.handle("start_edit", message_id=browser.values("messages")[-1][0].id)
    await browser.send("resend_edited", form_data={"question": "Which city is it?"})
    await wait_until_async(lambda: browser.values("streaming").count(False) == 2, "another", 15)

    model = label("openai/fake-fast", upstream.base_url)
    assert refused == f"{model} cannot read images (dot.png); it reads text files."
    asked, edited = [r.question()[0] for r in upstream.records if r.model == "fake-fast"][-2:]
    assert asked.startswith('Which city?\n<file name="cities.csv">\ncity,people\nParis')
    assert edited.startswith('Which city is it?\n<file name="cities.csv">')
    [question] = [m for m in saved_messages(browser) if m.role == "user"]
    [kept] = browser.history().attachments([question.id or 0], with_data=True)
    assert (kept.filename, kept.media_type, kept.data) == ("cities.csv", "text/csv", CSV)
    assert browser.values("composer_files")[-1] == []


async def test_after_its_first_answer_a_conversation_is_named_by_the_model(browser, upstream):
    question = "Write a long story about a dragon who learns to read"
    await browser.send("set_model", model="openai/fake-fast")
    await browser.send("send", form_data={"question": question})
    named = "who learns to read"  # the fake model's title: the question's last four words
    await browser.wait_for("conversations", lambda items: items and items[0].title == named)

    titles = [[item.title for item in items] for items in browser.values("conversations")]
    assert titles[0] == [title_of(question)]  # its first words, while it answers
    [saved] = browser.history().conversations()
    assert saved.title == named


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


@pytest.fixture
def erased():
    """What `erase` erased: a tool that waits for approval, registered for the test."""
    erased: list[str] = []

    @tools.tool(needs_approval=True)
    def erase(what: str) -> str:
        """Erase `what` for good."""
        erased.append(what)
        return f"{what} erased"

    yield erased
    del tools.REGISTRY["erase"]


@pytest.mark.parametrize("approved", [True, False])
async def test_a_call_waits_for_the_visitors_decision_then_the_same_answer_goes_on(
    upstream, tmp_path, erased, approved
):
    with use(Services(page_settings(upstream, tmp_path, tools=["calculate", "erase"]))):
        async with a_browser() as browser:
            await browser.send("set_model", model="openai/fake-tool-approval")
            await browser.send("send", form_data={"question": "Erase my notes"})
            await browser.wait_for("streaming", lambda streaming: streaming is False)
            [asking] = browser.values("messages")[-1][-1].tools
            [saved_asking] = json.loads(saved_messages(browser)[-1].tools)

            await browser.send("decide", call_id=asking.id, approved=approved)
            await wait_until_async(
                lambda: browser.values("streaming").count(False) == 2, "the answer goes on", 15
            )

            assert (asking.name, asking.state) == ("erase", "approval")
            assert saved_asking["approval_id"] == asking.approval_id  # a reload shows it
            answer = browser.values("messages")[-1][-1]
            [call] = answer.tools
            [result] = upstream.last("fake-tool-approval").tool_results
            if approved:
                assert (call.state, call.result, erased) == ("done", "notes erased", ["notes"])
                assert "notes erased" in answer.content  # the model read the result
            else:
                assert (call.state, erased) == ("denied", [])
                assert "did not allow" in result
            _question, saved = saved_messages(browser)  # the answer saved over itself
            assert (saved.content, saved.status) == (answer.content, "done")


async def test_an_expired_approval_runs_nothing_and_the_answer_waits_as_it_was(
    upstream, tmp_path, erased
):
    settings = page_settings(upstream, tmp_path, tools=["erase"], approval_ttl_s=0.1)
    with use(Services(settings)):
        async with a_browser() as browser:
            await browser.send("set_model", model="openai/fake-tool-approval")
            await browser.send("send", form_data={"question": "Erase my notes"})
            await browser.wait_for("streaming", lambda streaming: streaming is False)
            [asking] = browser.values("messages")[-1][-1].tools
            saved_before = saved_messages(browser)[-1]
            await asyncio.sleep(0.2)

            await browser.send("decide", call_id=asking.id, approved=True)
            await wait_until_async(
                lambda: browser.values("streaming").count(False) == 2, "the refusal", 15
            )

            shown = browser.values("messages")[-1][-1]
            assert "expired" in shown.error
            assert [call.state for call in shown.tools] == ["approval"]
            assert erased == []
            saved = saved_messages(browser)[-1]
            assert (saved.id, saved.tools, saved.status) == (
                saved_before.id,
                saved_before.tools,
                "done",
            )


async def test_a_reload_mid_answer_is_sent_all_of_it_again_and_it_is_saved_once(browser):
    await browser.send("set_model", model="openai/fake-slow")
    await browser.send("send", form_data={"question": "Count for me"})
    await wait_until_async(lambda: len(browser.draft_pushes()) >= 3, "two appends", 15)
    before = browser.draft(browser.draft_pushes())
    reloaded_at = len(browser.draft_pushes())
    await browser.handle("load")  # what a reloaded page sends first: its draft is empty
    await browser.wait_for("streaming", lambda streaming: streaming is False, timeout_s=30)

    # From the answering task and from the one sending it again, in whatever order: the
    # reloaded page's draft grows from where it was and never loses or doubles text.
    after_reload = browser.draft_pushes()[reloaded_at:]
    drafts = [browser.draft(after_reload[:count]) for count in range(len(after_reload) + 1)]
    assert drafts[-1].startswith(before) and SLOW_TEXT.startswith(drafts[-1])
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(drafts))
    assert [(m.role, m.content) for m in saved_messages(browser)] == [
        ("user", "Count for me"),
        ("assistant", SLOW_TEXT),
    ]


async def test_stop_keeps_the_partial_answer_and_closes_the_upstream(browser, upstream):
    await browser.send("set_model", model="openai/fake-slow")
    await browser.send("send", form_data={"question": "Count for me"})
    await wait_until_async(
        lambda: len(browser.draft_pushes()) > 1, "the first text is pushed to the page", 15
    )
    await browser.send("stop")
    await browser.wait_for("streaming", lambda streaming: streaming is False)

    answer = browser.values("messages")[-1][-1]
    assert answer.status == "stopped"
    assert 0 < len(answer.content) < len(SLOW_TEXT)
    assert saved_messages(browser)[-1].status == "stopped"
    record = upstream.last("fake-slow")
    # Within RESUME_GRACE_S (3 s): Stop stopped the answer, not the grace period.
    assert await asyncio.to_thread(record.closed.wait, 2)
    assert not record.completed


async def test_stop_before_the_first_token_ends_the_opening_call(browser, upstream):
    before = len(upstream.records)
    await browser.send("set_model", model="openai/fake-stall-first")  # its first token at 30 s
    await browser.send("send", form_data={"question": "Wait"})
    await wait_until_async(lambda: len(upstream.records) > before, "the provider is asked", 15)
    await browser.send("stop")
    await browser.wait_for("streaming", lambda streaming: streaming is False)

    assert browser.values("messages")[-1][-1].status == "stopped"
    assert saved_messages(browser)[-1].status == "stopped"
    assert await asyncio.to_thread(upstream.last("fake-stall-first").closed.wait, 2)


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


async def test_behind_the_gate_nothing_is_read_or_saved_until_the_password(
    browser, upstream, tmp_path
):
    # With API_TOKEN, as a gated deployment has it (the gate warns without one).
    gated = page_settings(upstream, tmp_path, ui_password="correct horse", api_token="s3cret")
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


async def test_the_core_sees_each_visitor_by_their_address_and_a_digest_of_their_id(
    browser, caplog
):
    with caplog.at_level(logging.INFO, logger=access_log.name):
        await browser.send("send", form_data={"question": "Hello"})
        await browser.wait_for("streaming", lambda streaming: streaming is False)
    [entry] = [json.loads(record.getMessage()) for record in caplog.records]
    owner = browser.values("owner")[-1]
    assert entry["visitor"] == visitor(owner, "").visitor
    assert owner not in json.dumps(entry)  # the key to their history stays out of the log
    assert entry["client"] == ADDRESS


# The seam itself: what the page's handlers ask of the core, and what they get back.


@pytest.fixture
def core(upstream, tmp_path) -> Chat:
    return Chat(page_settings(upstream, tmp_path))


def a_visitor(name: str = "alice") -> object:
    return visitor(f"owner-{name}", "10.0.0.1")


def question(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def test_an_answer_is_its_text_then_tool_calls_as_they_change_then_its_finish(core):
    items = [
        item
        async for item in open_answer(
            core, a_visitor(), question("Compute"), "openai/fake-tools-2", "answer-0123456789abcdef"
        )
    ]
    calls = [item for item in items if isinstance(item, ToolCall)]
    assert [call.state for call in calls].count("done") == 2
    assert isinstance(items[-1], dict) and items[-1]["usage"]["outputTokens"]
    assert "42" in "".join(item for item in items if isinstance(item, str))


async def test_an_answer_is_followed_from_its_start_and_stopped_by_its_id(core, upstream):
    answer_id = "answer-0123456789abcdef"
    started = open_answer(core, a_visitor(), question("Count"), "openai/fake-slow", answer_id)
    first = [await anext(started), await anext(started)]
    followed = follow_answer(core, answer_id)
    replayed = await anext(followed)
    assert replayed.startswith("".join(first))  # all of it so far, in one piece
    await stop_answer(core, a_visitor(), answer_id)
    with pytest.raises(AnswerError, match="stopped"):
        async for _ in followed:
            pass
    await started.aclose()
    assert await asyncio.to_thread(upstream.last("fake-slow").closed.wait, 2)
    await stop_answer(core, a_visitor(), answer_id)  # ended: no error


async def test_a_visitor_over_their_own_limit_is_refused_and_another_is_not(core):
    answer_ids = (f"answer-{n}-0123456789abcdef" for n in range(10))
    limit = core.settings.max_streams_per_client

    async def ask(who: str):
        answer = open_answer(
            core, a_visitor(who), question("Count"), "openai/fake-slow", next(answer_ids)
        )
        await anext(answer)  # streaming
        return answer

    streaming = [await ask("alice") for _ in range(limit)]
    refused = f"At most {limit} answers may stream at once per visitor"
    with pytest.raises(AnswerError, match=refused):
        await ask("alice")
    streaming.append(await ask("bob"))  # same address, their own limit
    for answer in streaming:
        await answer.aclose()


async def test_every_way_an_answer_ends_gives_the_visitors_stream_back(upstream, tmp_path):
    core = Chat(page_settings(upstream, tmp_path, max_streams_per_client=1))
    ids = (f"answer-{n}-0123456789abcdef" for n in range(10))

    def ask(model: str = "openai/fake-slow"):
        return open_answer(core, a_visitor(), question("Count"), model, next(ids))

    [item async for item in ask("openai/fake-fast")]  # to its end
    stopped = ask()
    await anext(stopped)
    await stop_answer(core, a_visitor(), "answer-1-0123456789abcdef")
    with pytest.raises(AnswerError, match="stopped"):
        [item async for item in stopped]
    left = ask()  # the tab went away: its reader is closed, the answer stopped
    await anext(left)
    await left.aclose()
    await stop_answer(core, a_visitor(), "answer-2-0123456789abcdef")
    with pytest.raises(AnswerError, match="stopped"):  # followed to its end
        [item async for item in follow_answer(core, "answer-2-0123456789abcdef")]
    failed = ask("openai/fake-fail-mid")
    with pytest.raises(AnswerError):
        [item async for item in failed]
    last = ask("openai/fake-fast")  # admitted: one stream at a time, and none is held
    assert isinstance([item async for item in last][-1], dict)
