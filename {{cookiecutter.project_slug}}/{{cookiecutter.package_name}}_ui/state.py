"""Chat state: the conversations, the open one, the answer being streamed, and Stop.

Every question and answer is saved (see `history`), answers with how they ended, in the history
of the browser's owner id (a cookie); with `UI_PASSWORD` set, nothing is read or saved until
the browser holds a session from the gate (see `gate`). The answer in progress is not state:
the page holds it (see `draft`), and the background task sends it only what is new, at most
once per `UI_FLUSH_MS`. The finished answer lands in `messages` once.

The page asks the chat core in process (see `answers`), as the visitor: their own limits,
their address, their line in the access log. Its answers are resumable: a reloaded page, in
this process or another one sharing the Redis, follows the answer again from its start; Stop
ends it at once, and so does a tab gone for `RESUME_GRACE_S` (closed, not reloaded).

A question may bring files: checked as they are attached, as the core checks them, stored
with it, and sent to the core as AI SDK file parts (see `files` and the core's `attachments`).
After a conversation's first answer, the model names it (the core's `titles`).
"""

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import reflex as rx
from reflex.config import get_config

from {{ cookiecutter.package_name }}.access import Caller
from {{ cookiecutter.package_name }}.attachments import data_url, kind_of, read_file, unreadable
from {{ cookiecutter.package_name }}.errors import ApiError
from {{ cookiecutter.package_name }}.llm import file_kinds
from {{ cookiecutter.package_name }}.titles import suggest_title

from . import draft, history
from .answers import (
    AnswerError,
    AnswerStopped,
    ToolCall,
    continued_turn,
    follow_answer,
    open_answer,
    stop_answer,
    visitor,
)
from .gate import SESSION_S, WrongPassword
from .models import ModelChoice, label, who_answers
from .reflex_compat import tab_is_connected
from .services import services

logger = logging.getLogger(__name__)
TITLE_CHARS = 48
HISTORY_DOWN = "Your conversations cannot be reached right now, so nothing new is saved."
QUESTION_BOX = "question"  # the composer's id
# The cookies are the app's own even beside other apps on localhost (cookies ignore the port).
OWNER_COOKIE = "{{ cookiecutter.package_name }}_owner"
SESSION_COOKIE = "{{ cookiecutter.package_name }}_session"
# Secure when the page is served over HTTPS: its public address (PUBLIC_URL in compose.yaml,
# REFLEX_API_URL) is built into the page with them.
SECURE_COOKIES = get_config().api_url.startswith("https://")
TOO_MANY_FILES = "A question may bring up to {} files."
# Where the backend serves a stored file to its owner (see `files`).
ATTACHMENT_URL = "/_attachments/{}"


@dataclasses.dataclass
class FileView:
    """A file of a question, as the page shows it."""

    id: int
    filename: str
    kind: str  # image | pdf | text
    url: str
    size: int

    @classmethod
    def of(cls, stored: history.StoredAttachment) -> "FileView":
        attachment_id = stored.id or 0
        return cls(
            attachment_id,
            stored.filename,
            kind_of(stored.media_type),
            ATTACHMENT_URL.format(attachment_id),
            stored.size,
        )


@dataclasses.dataclass
class Message:
    id: int
    role: str
    content: str
    status: str = "done"  # done | stopped | error
    error: str = ""
    action: str = "retry"  # what the page offers beside an error (see answers.AnswerError)
    details: str = ""  # model, tokens and timing of an answer
    tools: list[ToolCall] = dataclasses.field(default_factory=list)
    files: list[FileView] = dataclasses.field(default_factory=list)  # a question's

    @classmethod
    def of(
        cls, stored: history.StoredMessage, files: Sequence[history.StoredAttachment] = ()
    ) -> "Message":
        return cls(
            id=stored.id or 0,
            role=stored.role,
            content=stored.content,
            status=stored.status,
            error=stored.error,
            action=stored.action,
            details=stored.details,
            tools=[ToolCall(**call) for call in json.loads(stored.tools)],
            files=[FileView.of(file) for file in files],
        )


@dataclasses.dataclass
class ConversationItem:
    id: int
    title: str


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


class TabPresence:
    """Whether a tab is still there: a reload drops its websocket for a moment, a closed tab
    stays away; it is gone for good after `grace_s` away."""

    def __init__(self, token: str, grace_s: float) -> None:
        self._token = token
        self._grace_s = grace_s
        self._away_since: float | None = None

    async def gone_for_good(self) -> bool:
        if await tab_is_connected(self._token):
            self._away_since = None
            return False
        now = time.monotonic()
        self._away_since = self._away_since or now
        return now - self._away_since >= self._grace_s


def title_of(question: str) -> str:
    line = question.strip().splitlines()[0]
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


class Locked(Exception):
    """An event from a page without a valid session: forged, or its session ended while open."""


class ChatState(rx.State):
    # A year, renewed by every visit. Reflex reads and writes its cookies in the page, so they
    # cannot be HttpOnly (README, "Security").
    owner: str = rx.Cookie(
        "", name=OWNER_COOKIE, max_age=365 * 24 * 3600, same_site="strict", secure=SECURE_COOKIES
    )
    session: str = rx.Cookie(
        "", name=SESSION_COOKIE, max_age=SESSION_S, same_site="strict", secure=SECURE_COOKIES
    )
    locked: bool = not services().gate.is_open  # the gate instead of the chat, from the first paint
    gate_error: str = ""
    conversations: list[ConversationItem] = []
    conversation_id: int = 0  # 0: a new chat, saved with its first question
    messages: list[Message] = []
    system_prompt: str = ""
    streaming: bool = False
    live_tools: list[ToolCall] = []  # the tool calls of the answer being streamed
    models: list[ModelChoice] = []
    model: str = ""
    editing_id: int = 0  # the question being edited
    renaming_id: int = 0  # the conversation being renamed
    menu_open: bool = False  # the conversations' drawer, on a narrow screen
    loaded: bool = False  # the open conversation is known: until then, no welcome either
    history_notice: str = ""  # the database failed the last time it was asked
    composer_files: list[FileView] = []  # attached to the question being written
    file_notice: str = ""  # why the last file given was not attached
    uploading: bool = False
    upload_percent: int = 0
    _answer_id: str = ""  # the core's id of the answer being streamed: to follow or stop it

    @rx.var
    def model_line(self) -> str:
        return who_answers(self.model, services().settings.llm_api_base)

    @rx.event
    async def load(self):
        """On page load: the allow-list, the saved conversations, the open one's messages;
        only the gate while the page has no session."""
        self.locked = not services().gate.admits(self.session)
        if self.locked:
            self.conversations, self.messages, self.conversation_id = [], [], 0
            return
        settings = services().settings
        self.models = [ModelChoice.of(m, settings.llm_api_base) for m in settings.allowed_models]
        self.model = self.model or settings.llm_model
        self.loaded = True
        if self.streaming:  # a reload: the page's draft is gone
            with self._history_trouble_shown():
                self._list_conversations()
            return ChatState.follow
        with self._history_trouble_shown():
            self._list_conversations()
            self._open(self.conversation_id)
            # The files attached to the question being written are still there after a reload.
            self._list_composer_files()
        return None

    @rx.event
    async def unlock(self, form_data: dict):
        try:
            self.session = await services().gate.enter(
                form_data.get("password") or "", self.router.session.client_ip
            )
        except WrongPassword as exc:
            self.gate_error = str(exc)
            return None
        self.gate_error = ""
        return ChatState.load

    @rx.event
    def new_chat(self):
        self.menu_open = False
        if not self.streaming:
            self._open(0)

    @rx.event
    def open_conversation(self, conversation_id: int):
        self.menu_open = False
        if not self.streaming:
            with self._history_trouble_shown():
                self._open(conversation_id)

    @rx.event
    def set_menu_open(self, is_open: bool):
        self.menu_open = is_open

    @rx.event
    def start_rename(self, conversation_id: int):
        self.renaming_id = conversation_id

    @rx.event
    def finish_rename(self, form_data: dict):
        title = (form_data.get("title") or "").strip()
        if title and self.renaming_id:
            with self._history_trouble_shown():
                self._history().update(self.renaming_id, title=title[:200])
                self._list_conversations()
        self.renaming_id = 0

    @rx.event
    def cancel_rename(self):
        self.renaming_id = 0

    @rx.event
    def delete_conversation(self, conversation_id: int):
        if self.streaming and conversation_id == self.conversation_id:
            return
        with self._history_trouble_shown():
            self._history().delete(conversation_id)
            if conversation_id == self.conversation_id:
                self._open(0)
            self._list_conversations()

    @rx.event
    def set_system_prompt(self, system_prompt: str):
        self.system_prompt = system_prompt
        if self.conversation_id:
            with self._history_trouble_shown():
                self._history().update(self.conversation_id, system_prompt=system_prompt)

    @rx.event
    def set_model(self, model: str):
        self.model = model
        if self.conversation_id:
            with self._history_trouble_shown():
                self._history().update(self.conversation_id, model=model)

    @rx.event
    def upload_progress(self, progress: dict):
        self.upload_percent = round(100 * (progress.get("progress") or 0))
        self.uploading = self.upload_percent < 100

    @rx.event
    async def attach(self, files: list[rx.UploadFile]):
        """Files picked, dropped or pasted: checked as the core will check them (a kind the
        chosen model cannot read is said now, not after sending), kept for the question."""
        settings = services().settings
        model = self.model or settings.llm_model
        kinds = await file_kinds(model, settings)
        self.file_notice, self.uploading = "", False
        # The conversation's files go with each question (see `attachments.RequestFiles`).
        taken = sum(f.size for m in self.messages for f in m.files)
        taken += sum(f.size for f in self.composer_files)
        for upload in files:
            name = upload.filename or "file"
            if len(self.composer_files) >= settings.max_attachments:
                self.file_notice = TOO_MANY_FILES.format(settings.max_attachments)
                return
            data = await upload.read()
            try:
                checked = read_file(data, name, upload.content_type or "", settings)
            except ApiError as exc:
                self.file_notice = exc.message
                continue
            if checked.kind not in kinds:
                self.file_notice = unreadable(label(model, settings.llm_api_base), checked, kinds)
                continue
            if taken + checked.size > settings.max_attachments_bytes:
                limit = settings.max_attachments_bytes
                self.file_notice = (
                    f"A conversation's files may add up to {limit} bytes; "
                    "start a new chat for more."
                )
                return
            with self._history_trouble_shown():
                stored = self._history().add_attachment(name, checked.media_type, data)
                self.composer_files.append(FileView.of(stored))
                taken += checked.size

    @rx.event
    def refuse_files(self, rejections: list[dict]):
        """Files the page did not upload: too many at once, or larger than a file may be."""
        settings = services().settings
        codes = {error.get("code") for r in rejections for error in r.get("errors") or []}
        if "too-many-files" in codes:
            self.file_notice = TOO_MANY_FILES.format(settings.max_attachments)
            return
        names = ", ".join((r.get("file") or {}).get("path") or "a file" for r in rejections)
        limit = settings.max_attachment_bytes
        self.file_notice = f"{names}: files of up to {limit} bytes are accepted."

    @rx.event
    def remove_file(self, attachment_id: int):
        with self._history_trouble_shown():
            self._history().discard_attachment(attachment_id)
            self._list_composer_files()

    @rx.event
    def send(self, form_data: dict):
        return self._ask(form_data.get("question") or "")

    @rx.event
    def ask(self, question: str):
        """A suggested prompt, clicked."""
        return self._ask(question)

    @rx.event
    def regenerate(self):
        """Drop the last answer (done, stopped or failed) and ask again."""
        if self.streaming or not self.messages or self.messages[-1].role != "assistant":
            return None
        with self._history_trouble_shown():
            self._truncate_after(self.messages[-2].id)
            return ChatState.start_answer
        return None

    @rx.event
    def start_edit(self, message_id: int):
        if not self.streaming:
            self.editing_id = message_id

    @rx.event
    def edit_last_question(self):
        """The action beside a refusal of the question itself (too long, too large)."""
        questions = [message for message in self.messages if message.role == "user"]
        if questions and not self.streaming:
            self.editing_id = questions[-1].id

    @rx.event
    def cancel_edit(self):
        self.editing_id = 0

    @rx.event
    def resend_edited(self, form_data: dict):
        """Replace the question, forget everything after it, and ask again."""
        question = (form_data.get("question") or "").strip()
        message_id, self.editing_id = self.editing_id, 0
        if not question or self.streaming or not message_id:
            return None
        with self._history_trouble_shown():
            self._history().update_message(self.conversation_id, message_id, question)
            self._truncate_after(message_id)
            self.messages[-1].content = question
            return ChatState.start_answer
        return None

    @rx.event
    def decide(self, call_id: str, approved: bool):
        """Approve or deny a call of the last answer; once none of its calls waits, the answer
        goes on."""
        if self.streaming or not self.messages or self.messages[-1].role != "assistant":
            return None
        last = self.messages[-1]
        decision = "approved" if approved else "declined"
        calls = [
            dataclasses.replace(call, state=decision)
            if (call.id, call.state) == (call_id, "approval")
            else call
            for call in last.tools
        ]
        if calls == last.tools:  # nothing waited for this decision (a second click, say)
            return None
        self.messages[-1] = dataclasses.replace(last, tools=calls)
        if any(call.state == "approval" for call in calls):
            return None
        self.streaming = True  # from now: a click meanwhile finds the answer going on
        return ChatState.start_answer

    @rx.event
    def start_answer(self):
        self.streaming = True
        return [draft.clear(), ChatState.generate(False)]

    @rx.event
    async def stop(self):
        """A running answer is ended by the core at once, even mid-read of a stalled provider,
        and the task answering saves it as stopped. Cancelling that task instead can land in
        Reflex's own code between two pushes, and then it never saves; so it is cancelled
        only while the core has no answer yet (before the provider's first chunk), when it
        has pushed nothing."""
        if not self.streaming:
            return None
        if await stop_answer(services().chat, self._caller(), self._answer_id):
            return None
        return ChatState.generate(True)  # a newer call of a `supersedes` handler cancels it

    @rx.event(background=True, supersedes=True)
    async def generate(self, stop: bool):
        chat = services().chat
        if stop:  # it was cancelled while opening its answer, which may have opened since
            async with self:
                answer_id, caller = self._answer_id, self._caller()
            await stop_answer(chat, caller, answer_id)
            return
        async with self:
            # An answer the visitor has decided on goes on: it is shown as the draft until then.
            continued = self._decided_answer()
            # Nothing streams for a page behind the gate.
            if not services().gate.admits(self.session):
                self.streaming, self.locked = False, True
                self._undecide()
                return
            tab = TabPresence(self.router.session.client_token, chat.settings.resume_grace_s)
            caller, model = self._caller(), self.model or None
            turns = None
            with self._history_trouble_shown():  # it reads the conversation's files
                turns = self._turns(continued)
            if turns is None:
                self.streaming = False
                self._undecide()
                return
            self._answer_id = answer_id = uuid.uuid4().hex
            conversation_id = self.conversation_id
            if continued is not None:
                self.messages, self.live_tools = self.messages[:-1], continued.tools
        answer = history.StoredMessage(
            role="assistant",
            content="",
            conversation_id=conversation_id,
            details=continued.details if continued else "",
        )
        first_answer = False
        pushes = draft.Pushes(chat.settings.ui_flush_ms / 1000)
        known = continued.tools if continued else []
        calls = {call.id: dataclasses.replace(call) for call in known}
        conversation = f"conversation-{conversation_id}"
        items = open_answer(chat, caller, turns, model, answer_id, known, conversation)
        began = False  # the core took it: an answer going on is saved over the one it continues
        try:
            if continued and continued.content:
                yield pushes.add(continued.content + "\n\n")  # the first add is pushed at once
            async for item in items:
                began = True
                if isinstance(item, dict):
                    answer.details = describe_finish(item)
                elif isinstance(item, ToolCall):  # a few per answer: each is shown at once
                    calls[item.id] = item
                    async with self:
                        self.live_tools = list(calls.values())
                elif (push := pushes.add(item)) is not None:
                    # Reflex runs a background task to its end after the tab closes (its
                    # updates go nowhere): the answer stops instead.
                    if await tab.gone_for_good():
                        answer.status = "stopped"
                        await stop_answer(chat, caller, answer_id)
                        break
                    yield push
        except asyncio.CancelledError:
            answer.status = "stopped"
            raise
        except AnswerStopped:  # by Stop, in this tab or another one
            answer.status = "stopped"
        except AnswerError as exc:
            answer.status, answer.error, answer.action = "error", str(exc), exc.action
        except Exception:
            logger.exception("The answer %s failed", answer_id)
            answer.status, answer.error = "error", "The answer failed on the server."
        finally:
            await items.aclose()  # after a `break`, too: the answer is not followed any more
            answer.content = pushes.text
            for call in calls.values():
                if call.state in ("running", "approved"):  # the answer ended first
                    call.state, call.result = "error", "Stopped before it finished."
                elif call.state == "declined":
                    call.state = "denied"
            answer.tools = json.dumps([dataclasses.asdict(call) for call in calls.values()])
            async with self:
                self.streaming, self.live_tools = False, []
                # The conversation stays open while it streams: switching waits for the end.
                if continued is not None and not began:
                    # Refused (an expired approval, a limit): saved as it was, it waits for the
                    # decisions again; another tab may have gone on with it meanwhile.
                    ended = dataclasses.replace(continued, status=answer.status)
                    ended.error, ended.action = answer.error, answer.action
                    self.messages.append(ended)
                    self._undecide()
                else:
                    self._keep(answer, replacing=continued)
                answers = [m for m in self.messages if m.role == "assistant"]
                first_answer = len(answers) == 1 and answer.status == "done" and not continued
        if first_answer:  # the answer is shown and saved: nothing waits for this
            await self._name_conversation(conversation_id)

    @rx.event(background=True, supersedes=True)
    async def follow(self):
        """A reloaded page: the answer being streamed, sent again from its start, then live,
        from whichever process runs it. The task that started it saves it."""
        chat = services().chat
        async with self:
            if not services().gate.admits(self.session):
                return
            answer_id = self._answer_id
        pushes = draft.Pushes(chat.settings.ui_flush_ms / 1000)
        try:
            async for item in follow_answer(chat, answer_id):
                if isinstance(item, str) and (push := pushes.add(item)) is not None:
                    yield push
        except AnswerError:
            pass  # the task that started it shows how it ended, with the answer it saves

    async def _name_conversation(self, conversation_id: int) -> None:
        """After a conversation's first answer, the model's title for it in place of the first
        words of its question; unless it was renamed meanwhile, or the model gives none. (A
        next question cancels it: the first words stay.)"""
        question = ""
        async with self:
            with self._history_trouble_shown():
                stored = self._history().messages(conversation_id)
                question = next((m.content for m in stored if m.role == "user"), "")
            model = self.model or services().settings.llm_model
        if not question:
            return
        title = await suggest_title(question, model, services().settings)
        async with self:
            with self._history_trouble_shown():
                conversation = self._history().get(conversation_id)
                if title and conversation and conversation.title == title_of(question):
                    self._history().update(conversation_id, title=title)
                    self._list_conversations()

    def _turns(self, continued: Message | None = None) -> list[dict]:
        """The conversation as the core takes it: a question's files as AI SDK file parts; the
        answer going on (the last), with its calls and the visitor's decisions."""
        turns: list[dict] = [{"role": m.role, "content": m.content} for m in self.messages]
        if asked := [m.id for m in self.messages if m.files]:
            files = self._history().attachments(asked, with_data=True)
            for turn, message in zip(turns, self.messages, strict=True):
                if not message.files:
                    continue
                turn["parts"] = [{"type": "text", "text": turn.pop("content")}] + [
                    {
                        "type": "file",
                        "mediaType": file.media_type,
                        "filename": file.filename,
                        "url": data_url(file.media_type, file.data),
                    }
                    for file in files
                    if file.message_id == message.id
                ]
        if continued is not None:
            turns[-1] = continued_turn(continued.id, continued.content, continued.tools)
        if self.system_prompt.strip():
            turns.insert(0, {"role": "system", "content": self.system_prompt})
        return turns

    def _undecide(self) -> None:
        """The last answer's decisions were not sent: it waits for them again."""
        if last := self._decided_answer():
            waiting = [
                dataclasses.replace(call, state="approval") if call.is_decided else call
                for call in last.tools
            ]
            self.messages[-1] = dataclasses.replace(last, tools=waiting)

    def _decided_answer(self) -> Message | None:
        """The last answer, if the visitor has decided on its calls and it has not gone on."""
        last = self.messages[-1] if self.messages else None
        if last and last.role == "assistant" and any(call.is_decided for call in last.tools):
            return last
        return None

    def _ask(self, question: str):
        """Save the question with its files (the first one opens a conversation) and answer it."""
        question = question.strip()
        files = self.composer_files
        if not (question or files) or self.streaming:
            return None
        if self.uploading:  # not all its files are here yet: the question waits in its box
            return rx.set_value(QUESTION_BOX, question)
        with self._history_trouble_shown():
            if not self.conversation_id:
                title = title_of(question or files[0].filename)
                conversation = self._history().create(title, self.system_prompt, self.model)
                self.conversation_id = conversation.id or 0
            question_message = history.StoredMessage(
                role="user", content=question, conversation_id=self.conversation_id
            )
            self._save(question_message)
            if files and (message_id := self.messages[-1].id):
                taken = self._history().attach(message_id, [file.id for file in files])
                self.messages[-1].files = [FileView.of(file) for file in taken]
                self.composer_files = []
            self._list_conversations()
            return ChatState.start_answer
        # Not asked: an answer that cannot be saved would be lost on the next reload.
        return rx.set_value(QUESTION_BOX, question)

    def _open(self, conversation_id: int) -> None:
        """Show a saved conversation; a new empty chat for 0, or for one deleted meanwhile."""
        conversation = self._history().get(conversation_id) if conversation_id else None
        self.editing_id = 0
        if conversation is None:
            self.conversation_id, self.messages, self.system_prompt = 0, [], ""
            return
        self.conversation_id = conversation_id
        self.system_prompt = conversation.system_prompt
        self.model = conversation.model or self.model
        stored = self._history().messages(conversation_id)
        files = self._history().attachments([m.id for m in stored if m.role == "user" and m.id])
        self.messages = [
            Message.of(m, [file for file in files if file.message_id == m.id]) for m in stored
        ]

    def _keep(self, answer: history.StoredMessage, replacing: Message | None = None) -> None:
        """Save the ended answer (over the one it went on with); if the database fails, show
        it anyway (not saved)."""
        with self._history_trouble_shown():
            if replacing is not None and replacing.id:
                answer.id = replacing.id
                self._history().update_answer(answer)
                self.messages.append(Message.of(answer))
            else:
                self._save(answer)
            return
        self.messages.append(Message.of(answer))

    def _save(self, message: history.StoredMessage) -> None:
        """Save to its conversation (the open one: it stays open while an answer streams);
        shown anyway if another tab deleted it meanwhile."""
        self.messages.append(Message.of(self._history().add_message(message) or message))

    def _truncate_after(self, message_id: int) -> None:
        self._history().delete_messages_after(self.conversation_id, message_id)
        # By place, not by id: an answer that could not be saved has none (0), after its
        # question; the first message with the id is the one meant.
        kept = next(
            index for index, message in enumerate(self.messages) if message.id == message_id
        )
        self.messages = self.messages[: kept + 1]

    def _list_composer_files(self) -> None:
        """The files attached to the question being written (in this tab or another)."""
        unsent = self._history().unsent_attachments()
        self.composer_files = [FileView.of(file) for file in unsent]

    def _list_conversations(self) -> None:
        self.conversations = [
            ConversationItem(id=c.id or 0, title=c.title) for c in self._history().conversations()
        ]

    @contextmanager
    def _history_trouble_shown(self) -> Iterator[None]:
        """Around what reads or saves the history: if the database fails, what is left of the
        block is skipped and the page says so; once it answers again, the notice goes."""
        try:
            yield
        except history.HistoryUnavailable as exc:
            logger.warning("The history database failed: %s", exc)
            self.history_notice = HISTORY_DOWN
        else:
            if self.history_notice:
                self.history_notice = ""

    def _history(self) -> history.History:
        """This browser's history, the only way to the database: a page behind the gate gets
        none, and a browser without a (well-formed) owner id gets a new, empty one."""
        if not services().gate.admits(self.session):
            raise Locked
        return history.History(self._owner(), services().database)

    def _caller(self) -> Caller:
        """This visitor, as the chat core counts and logs them."""
        return visitor(self._owner(), self.router.session.client_ip)

    def _owner(self) -> str:
        if not history.is_owner_id(self.owner):
            self.owner = history.new_owner_id()
        return self.owner
