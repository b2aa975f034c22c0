"""The chat page. Its backend asks the chat core in process; the HTTP API is for other clients
(`dev` and `prod` serve it too, as `{{ "ui_beside" if cookiecutter.framework == "flask" else "ui_mounted" }}.py` says)."""

import functools

import reflex as rx
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from {{ cookiecutter.package_name }} import llm
{%- if cookiecutter.framework != "flask" %}
from {{ cookiecutter.package_name }}.api import create_app, mount_into_reflex
{%- endif %}
from {{ cookiecutter.package_name }}.security import SecurityHeaders
from {{ cookiecutter.package_name }}.settings import forwarded_allow_ips, get_settings

from . import draft, files, reflex_compat, untrusted
from .answers import ToolCall
from .services import connections_ended_at_exit, open_history
from .state import QUESTION_BOX, ChatState, ConversationItem, FileView, Message

# Named for screen readers, not shown (the drawer's title).
VISUALLY_HIDDEN = {
    "position": "absolute",
    "width": "1px",
    "height": "1px",
    "overflow": "hidden",
    "clip": "rect(0 0 0 0)",
    "white_space": "nowrap",
}
# Radix breakpoints: below 30em, 30-48em, from 48em (768 px) on.
NARROW_ONLY = ["flex", "flex", "none"]
WIDE_ONLY = ["none", "none", "flex"]
# What the empty page offers to ask; the embedded model can answer each (after a fashion).
SUGGESTIONS = (
    "Explain in two sentences what streaming an answer means",
    "Write a Python function that reverses a string",
    "Give me three names for a hackathon project",
    "What is the capital of France?",
)
# Send and Stop swap in the same place: one width, so the text box never jumps.
ACTION_WIDTH = "4.5em"
# Files, not inline: the Content-Security-Policy runs only the page's own scripts.
ESC_STOPS = rx.asset("keys.js", shared=True)
PASTE_ATTACHES = rx.asset("paste.js", shared=True)
# The file picker offers what ATTACHMENT_TYPES allows; text files by their usual extensions,
# as browsers give many of them no text/* type (.json, .py). Dropped and pasted files are not
# filtered here: the backend says what is wrong with one.
TEXT_EXTENSIONS = [
    *[".txt", ".md", ".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".xml"],
    *[".html", ".css", ".js", ".ts", ".tsx", ".py", ".rs", ".go", ".java", ".c", ".h", ".cpp"],
    *[".rb", ".php", ".sh", ".sql", ".log", ".ini", ".cfg"],
]
PICKABLE = {
    media_type: TEXT_EXTENSIONS if media_type.startswith("text/") else []
    for media_type in get_settings().attachment_types
}


def icon_button(icon: str, label: str, **props) -> rx.Component:
    return rx.tooltip(
        rx.icon_button(rx.icon(icon, size=15), aria_label=label, variant="ghost", **props),
        content=label,
    )


def conversation_row(conversation: ConversationItem) -> rx.Component:
    is_open = conversation.id == ChatState.conversation_id
    return rx.hstack(
        rx.button(
            # min_width: a flex item otherwise keeps its text's width and never shows the ellipsis.
            rx.text(
                conversation.title,
                white_space="nowrap",
                overflow="hidden",
                text_overflow="ellipsis",
                width="100%",
                min_width="0",
                align="left",
            ),
            on_click=ChatState.open_conversation(conversation.id),
            title=conversation.title,  # the whole title, where it is cut short
            variant=rx.cond(is_open, "soft", "ghost"),
            aria_current=rx.cond(is_open, "page", "false"),
            justify="start",
            # A ghost button otherwise sits outside its padding, and has less of it than a soft
            # one: the open conversation's title would start 4 px right of the others'.
            margin="0",
            padding_x="var(--space-3)",
            flex="1",
            min_width="0",
        ),
        icon_button(
            "pencil",
            "Rename " + conversation.title,
            on_click=ChatState.start_rename(conversation.id),
            size="1",
        ),
        icon_button(
            "trash-2",
            "Delete " + conversation.title,
            on_click=ChatState.delete_conversation(conversation.id),
            size="1",
            color_scheme="red",
        ),
        width="100%",
        align="center",
        spacing="1",
    )


def cancel_or_submit(on_cancel: rx.EventHandler, submit: str) -> rx.Component:
    return rx.hstack(
        rx.button("Cancel", type="button", variant="soft", color_scheme="gray", on_click=on_cancel),
        rx.button(submit, type="submit"),
        justify="end",
        width="100%",
    )


def rename_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Rename conversation"),
            rx.form(
                rx.vstack(
                    rx.input(name="title", aria_label="Title", auto_focus=True, required=True),
                    cancel_or_submit(ChatState.cancel_rename, "Save"),
                ),
                on_submit=ChatState.finish_rename,
            ),
        ),
        open=ChatState.renaming_id != 0,
        on_open_change=ChatState.cancel_rename,
    )


def sidebar(**props) -> rx.Component:
    """The conversations: a column on a wide screen, the drawer's content on a narrow one."""
    return rx.vstack(
        rx.button(
            rx.icon("plus", size=15),
            "New chat",
            on_click=ChatState.new_chat,
            variant="outline",
            width="100%",
        ),
        # A plain scrolling box: Radix's scroll area lays its content out as a table that
        # grows with the longest title, which then never truncates.
        rx.box(
            rx.vstack(rx.foreach(ChatState.conversations, conversation_row), spacing="1"),
            flex="1",
            width="100%",
            overflow_y="auto",
        ),
        rx.hstack(rx.color_mode.button(aria_label="Toggle dark mode"), justify="end", width="100%"),
        role="navigation",
        aria_label="Conversations",
        width="16em",
        max_width="85vw",
        padding="1em",
        flex_shrink="0",
        **props,
    )


def conversations_drawer() -> rx.Component:
    """Below 48em (768 px) the sidebar would leave the chat too little room: it slides in
    from the left behind the menu button instead."""
    return rx.drawer.root(
        rx.drawer.overlay(z_index="5"),
        rx.drawer.portal(
            rx.drawer.content(
                rx.drawer.title("Conversations", style=VISUALLY_HIDDEN),
                sidebar(height="100%"),
                width="fit-content",
                height="100%",
                position="fixed",
                top="0",
                left="0",
                z_index="10",
                background_color=rx.color("gray", 1),
            ),
        ),
        open=ChatState.menu_open,
        on_open_change=ChatState.set_menu_open,
        direction="left",
    )


def menu_button() -> rx.Component:
    return rx.icon_button(
        rx.icon("menu", size=18),
        aria_label="Conversations",
        aria_expanded=rx.cond(ChatState.menu_open, "true", "false"),
        on_click=ChatState.set_menu_open(True),
        variant="ghost",
        display=NARROW_ONLY,
    )


def question(message: Message) -> rx.Component:
    editing = ChatState.editing_id == message.id
    return rx.cond(
        editing,
        rx.form(
            rx.vstack(
                rx.text_area(
                    name="question",
                    default_value=message.content,
                    aria_label="Edit your question",
                    enter_key_submit=True,
                    auto_focus=True,
                    width="100%",
                ),
                cancel_or_submit(ChatState.cancel_edit, "Send"),
            ),
            on_submit=ChatState.resend_edited,
            width="85%",
            align_self="flex-end",
        ),
        rx.hstack(
            icon_button(
                "pencil",
                "Edit question",
                on_click=ChatState.start_edit(message.id),
                disabled=ChatState.streaming,
                size="1",
            ),
            rx.box(
                rx.cond(
                    message.files,
                    rx.flex(
                        rx.foreach(message.files, sent_file),
                        wrap="wrap",
                        gap="0.5em",
                        margin_y="0.3em",
                    ),
                ),
                rx.cond(message.content, rx.text(message.content, white_space="pre-wrap")),
                background=rx.color("accent", 3),
                padding="0.5em 0.9em",
                border_radius="12px",
            ),
            align_self="flex-end",
            align="center",
            max_width="85%",
        ),
    )


def file_preview(file: FileView) -> rx.Component:
    """An image as a thumbnail; any other file as its icon and name."""
    return rx.cond(
        file.kind == "image",
        rx.image(src=file.url, alt=file.filename, height="4em", border_radius="var(--radius-2)"),
        rx.hstack(
            rx.cond(file.kind == "pdf", rx.icon("file-text", size=16), rx.icon("file", size=16)),
            rx.text(file.filename, size="1", max_width="12em", truncate=True),
            align="center",
            spacing="1",
            padding="0.3em 0.5em",
            border=f"1px solid {rx.color('gray', 7)}",
            border_radius="var(--radius-2)",
        ),
    )


def sent_file(file: FileView) -> rx.Component:
    """A question's file, opened in a new tab (served to its owner only)."""
    return rx.link(
        file_preview(file),
        href=file.url,
        target="_blank",
        rel="noopener noreferrer",
        title=file.filename,
        class_name="sent-file",
    )


def composer_file(file: FileView) -> rx.Component:
    return rx.hstack(
        file_preview(file),
        icon_button(
            "x",
            "Remove " + file.filename,
            on_click=ChatState.remove_file(file.id),
            size="1",
            type="button",  # in the form: not a Send
        ),
        align="center",
        spacing="1",
        class_name="composer-file",
    )


def error_action(message: Message) -> rx.Component:
    """Retry; Edit for a question the API refused as it is; New chat for a conversation that
    cannot go on; nothing when only the server's configuration can help (the error says what
    to set)."""
    # High contrast: a soft button's own red is under 4.5:1 on the callout's.
    button = functools.partial(rx.button, size="1", variant="soft", high_contrast=True)
    return rx.match(
        message.action,
        ("retry", button("Retry", on_click=ChatState.regenerate)),
        ("edit", button("Edit", on_click=ChatState.edit_last_question)),
        ("new_chat", button("New chat", on_click=ChatState.new_chat)),
        rx.fragment(),
    )


def tool_name(call: ToolCall) -> rx.Component:
    """A local tool by its name; an MCP server's `mcp__notes__add_note` as `notes · add_note`."""
    name = rx.cond(
        call.name.startswith("mcp__"),
        call.name.replace("mcp__", "").replace("__", " · "),
        call.name,
    )
    return rx.code(name, variant="ghost", word_break="break-word")


def tool_call(call: ToolCall, decidable: bool | rx.Var = False) -> rx.Component:
    """A tool call: its name and a spinner while it runs; opened, its arguments and result.
    One that waits for the visitor's approval shows its arguments, and Approve / Deny where
    the answer can go on (`decidable`: the last answer, not streaming)."""
    detail = functools.partial(
        rx.el.pre, font_size="var(--font-size-1)", white_space="pre-wrap", word_break="break-all"
    )
    return rx.cond(
        call.state == "approval",
        approval_request(call, detail(call.arguments), decidable),
        rx.el.details(
            rx.el.summary(
                rx.match(
                    call.state,
                    ("running", "approved", rx.spinner(size="1")),
                    ("error", rx.icon("circle-x", size=14, color=rx.color("red", 11))),
                    ("denied", "declined", rx.icon("ban", size=14)),
                    rx.icon("wrench", size=14),
                ),
                tool_name(call),
                rx.text(
                    rx.match(
                        call.state,
                        ("running", "approved", "running…"),
                        ("error", "failed"),
                        ("denied", "declined", "not allowed"),
                        "done",
                    ),
                    size="1",
                    color_scheme="gray",
                    white_space="nowrap",
                ),
                display="flex",
                align_items="center",
                gap="0.5em",
                cursor="pointer",
            ),
            rx.text("Arguments", size="1", weight="medium"),
            detail(call.arguments),
            rx.cond(
                (call.state == "done") | (call.state == "error"),
                rx.fragment(
                    rx.text(
                        rx.cond(call.state == "error", "Error", "Result"),
                        size="1",
                        weight="medium",
                    ),
                    detail(call.result),
                ),
            ),
            class_name="tool-call",
            data_state=call.state,
            **TOOL_CALL_FRAME,
        ),
    )


TOOL_CALL_FRAME = {
    "border": f"1px solid {rx.color('gray', 6)}",
    "border_radius": "var(--radius-2)",
    "padding": "0.3em 0.6em",
    "margin_bottom": "0.5em",
}


def approval_request(
    call: ToolCall, arguments: rx.Component, decidable: bool | rx.Var
) -> rx.Component:
    """A call that runs only if the visitor approves it: what it is, and their choice."""
    return rx.box(
        rx.hstack(
            rx.icon("shield-question", size=16),
            rx.text("Run ", tool_name(call), "?", size="2", weight="medium"),
            align="center",
            spacing="2",
        ),
        arguments,
        rx.cond(
            decidable,
            rx.hstack(
                rx.button("Approve", size="1", on_click=ChatState.decide(call.id, True)),
                rx.button(
                    "Deny",
                    size="1",
                    variant="soft",
                    high_contrast=True,
                    on_click=ChatState.decide(call.id, False),
                ),
                spacing="2",
            ),
            rx.text("Not answered.", size="1", color_scheme="gray"),
        ),
        class_name="tool-call",
        data_state=call.state,
        role="group",
        aria_label="A tool call waiting for approval",
        **TOOL_CALL_FRAME,
        border_color=rx.color("amber", 8),
    )


def answer(message: Message, is_last: bool) -> rx.Component:
    decidable = is_last & ~ChatState.streaming
    return rx.box(
        rx.foreach(message.tools, lambda call: tool_call(call, decidable)),
        untrusted.markdown(message.content),
        rx.cond(
            message.status == "error",
            rx.callout(
                rx.hstack(
                    rx.text(message.error),
                    error_action(message),
                    align="center",
                    wrap="wrap",
                ),
                icon="triangle_alert",
                color_scheme="red",
                size="1",
                role="alert",
            ),
        ),
        rx.hstack(
            rx.cond(
                message.content != "",
                icon_button(
                    "copy", "Copy answer", on_click=rx.set_clipboard(message.content), size="1"
                ),
            ),
            # A failed answer has its Retry (or Edit) beside the error instead.
            rx.cond(
                is_last & ~ChatState.streaming & (message.status != "error"),
                icon_button(
                    "refresh-cw", "Regenerate answer", on_click=ChatState.regenerate, size="1"
                ),
            ),
            rx.cond(message.status == "stopped", rx.badge("stopped", color_scheme="gray")),
            rx.text(message.details, size="1", color_scheme="gray"),
            align="center",
            spacing="3",
        ),
        class_name="answer",
        data_status=message.status,
        padding="0.5em 0.9em",
        max_width="85%",
        align_self="flex-start",
    )


def message_view(message: Message, index: int) -> rx.Component:
    return rx.cond(
        message.role == "user",
        question(message),
        answer(message, index == ChatState.messages.length() - 1),
    )


def live_answer() -> rx.Component:
    """The answer being streamed, read out by screen readers as it grows."""
    return rx.box(
        draft.draft,
        rx.cond(
            ChatState.streaming,
            rx.box(
                rx.foreach(ChatState.live_tools, tool_call),
                untrusted.markdown(draft.renderable(draft.draft.value)),
                rx.hstack(
                    rx.spinner(size="1"), rx.text("Generating…", size="1", color_scheme="gray")
                ),
                id="live-answer",
                padding="0.5em 0.9em",
            ),
        ),
        aria_live="polite",
        aria_busy=rx.cond(ChatState.streaming, "true", "false"),
        align_self="flex-start",
        max_width="85%",
    )


def empty_state() -> rx.Component:
    """A new chat: which model answers, and a few questions to start with."""
    return rx.vstack(
        rx.heading("Welcome to {{ cookiecutter.project_name }}", size="6", as_="h2"),
        rx.text(ChatState.model_line, color_scheme="gray", max_width="36em"),
        rx.flex(
            *[
                rx.button(
                    suggestion,
                    on_click=ChatState.ask(suggestion),
                    variant="surface",
                    color_scheme="gray",
                    height="auto",
                    max_width="100%",  # a button does not shrink; its text wraps instead
                    padding="0.6em 0.9em",
                    white_space="normal",
                    text_align="left",
                )
                for suggestion in SUGGESTIONS
            ],
            role="group",
            aria_label="Suggested questions",
            wrap="wrap",
            gap="0.5em",
        ),
        spacing="4",
        padding_top="12vh",
    )


def settings_bar() -> rx.Component:
    return rx.hstack(
        rx.select.root(
            rx.select.trigger(aria_label="Model"),
            rx.select.content(
                rx.foreach(
                    ChatState.models,
                    # The label reads well; LiteLLM's model string shows on hover (the picker
                    # shows the chosen item's text, this span included).
                    lambda choice: rx.select.item(
                        rx.el.span(choice.label, title=choice.value), value=choice.value
                    ),
                )
            ),
            value=ChatState.model,
            on_change=ChatState.set_model,
            size="1",
        ),
        rx.popover.root(
            rx.popover.trigger(
                rx.button(
                    rx.icon("settings-2", size=15), "System prompt", variant="ghost", size="1"
                )
            ),
            rx.popover.content(
                rx.text_area(
                    value=ChatState.system_prompt,
                    on_change=ChatState.set_system_prompt.debounce(400),
                    placeholder="How the assistant should answer in this conversation",
                    aria_label="System prompt",
                    rows="5",
                    width="24em",
                    max_width="80vw",
                ),
            ),
        ),
        justify="end",
        flex="1",
    )


def notice(text: rx.Var, icon: str) -> rx.Component:
    """A warning, shown while `text` says something: the database failing (the page goes on,
    but saves nothing), a file not taken."""
    return rx.cond(
        text,
        rx.callout(text, icon=icon, color_scheme="amber", size="1", role="alert", width="100%"),
    )


def file_zone(upload_id: str, *children: rx.Component, **props) -> rx.Component:
    """A place files are given to the question (picked or dropped): uploaded as they come,
    within the limits a question has, with their progress shown."""
    return reflex_compat.labelled_upload(
        "Files to attach",
        *children,
        id=upload_id,
        max_size=get_settings().max_attachment_bytes,
        max_files=get_settings().max_attachments,
        on_drop=ChatState.attach(
            rx.upload_files(upload_id=upload_id, on_upload_progress=ChatState.upload_progress)
        ),
        on_drop_rejected=ChatState.refuse_files,
        **props,
    )


def attach_button() -> rx.Component:
    """Opens the file picker (on a phone, the camera too, where the browser offers it)."""
    return file_zone(
        "picked_files",
        icon_button("paperclip", "Attach files", type="button", disabled=ChatState.streaming),
        accept=PICKABLE,
        no_drag=True,
        no_keyboard=True,  # the button inside takes the focus and the keys
    )


def composer_files() -> rx.Component:
    """The files attached so far, with Remove; the upload's progress; why a file was not taken."""
    return rx.fragment(
        rx.cond(
            ChatState.composer_files,
            rx.flex(
                rx.foreach(ChatState.composer_files, composer_file),
                wrap="wrap",
                gap="0.5em",
                aria_label="Attached files",
                role="group",
            ),
        ),
        rx.cond(
            ChatState.uploading,
            rx.progress(value=ChatState.upload_percent, max=100, aria_label="Uploading files"),
        ),
        notice(ChatState.file_notice, "paperclip"),
    )


def composer() -> rx.Component:
    """The question box, with its files: attached by the button, dropped on it, or pasted."""
    return file_zone(
        "dropped_files",
        rx.form(
            rx.vstack(
                composer_files(),
                rx.hstack(
                    attach_button(),
                    rx.text_area(
                        name="question",
                        id=QUESTION_BOX,  # a question the history could not take is put back here
                        placeholder="Ask anything… (Enter sends, Shift+Enter for a new line)",
                        aria_label="Your question",
                        rows="2",
                        width="100%",
                        enter_key_submit=True,
                        auto_focus=True,
                    ),
                    rx.cond(
                        ChatState.streaming,
                        rx.button(
                            "Stop",
                            type="button",
                            id="stop",
                            on_click=ChatState.stop,
                            color_scheme="red",
                            high_contrast=True,  # white on Radix's red is 3.9:1
                            aria_keyshortcuts="Escape",
                            width=ACTION_WIDTH,
                        ),
                        rx.button(
                            "Send", type="submit", width=ACTION_WIDTH, disabled=ChatState.uploading
                        ),
                    ),
                    width="100%",
                    align="end",
                ),
                width="100%",
            ),
            on_submit=ChatState.send,
            reset_on_submit=True,
            width="100%",
        ),
        class_name="composer-drop",
        no_click=True,
        no_keyboard=True,
        drag_active_style={"outline": f"2px dashed {rx.color('accent', 8)}"},
        width="100%",
    )


def gate() -> rx.Component:
    """All a page behind `UI_PASSWORD` shows until the password is given."""
    return rx.center(
        rx.form(
            rx.vstack(
                rx.heading("{{ cookiecutter.project_name }}", size="5", as_="h1"),
                rx.text("This page is private. Enter its password to continue."),
                rx.input(
                    name="password",
                    type="password",
                    aria_label="Password",
                    auto_focus=True,
                    required=True,
                ),
                rx.cond(
                    ChatState.gate_error,
                    rx.callout(
                        ChatState.gate_error,
                        icon="triangle_alert",
                        color_scheme="red",
                        role="alert",
                    ),
                ),
                rx.button("Enter", type="submit"),
                align="stretch",
            ),
            on_submit=ChatState.unlock,
            reset_on_submit=True,
            # Reflex's form is full width by default; the gate is a narrow card.
            width="20em",
            max_width="100%",
        ),
        role="main",
        width="100%",
        height="100vh",
        padding="1em",
    )


def chat() -> rx.Component:
    return rx.hstack(
        sidebar(display=WIDE_ONLY, height="100vh", border_right=f"1px solid {rx.color('gray', 5)}"),
        conversations_drawer(),
        rename_dialog(),
        rx.vstack(
            rx.hstack(
                menu_button(),
                rx.heading("{{ cookiecutter.project_name }}", size="5", as_="h1", white_space="nowrap"),
                settings_bar(),
                width="100%",
                align="center",
                flex_wrap="wrap",
            ),
            rx.auto_scroll(
                rx.vstack(
                    rx.cond(ChatState.loaded & (ChatState.messages.length() == 0), empty_state()),
                    rx.foreach(ChatState.messages, message_view),
                    live_answer(),
                    spacing="3",
                    width="100%",
                ),
                role="log",
                aria_label="Messages",
                flex="1",
                width="100%",
                # A long URL or word wraps inside its bubble instead of widening the page.
                overflow_wrap="anywhere",
            ),
            notice(ChatState.history_notice, "database"),
            composer(),
            rx.script(src=ESC_STOPS),
            rx.script(src=PASTE_ATTACHES),
            role="main",
            height="100vh",
            padding="1em",
            flex="1",
            min_width="0",
            max_width="60em",
            margin="0 auto",
        ),
        spacing="0",
        width="100%",
    )


def index() -> rx.Component:
    return rx.cond(ChatState.locked, gate(), chat())


app = rx.App(
    head_components=[rx.el.link(rel="icon", href="/favicon.svg", type="image/svg+xml")],
    api_transformer=[
{%- if cookiecutter.framework != "flask" %}
        mount_into_reflex(create_app()),
{%- endif %}
        files.serve_files,
        # Around everything the backend serves, the security headers...
        functools.partial(SecurityHeaders, settings=get_settings(), page=True),
        # ...and around them, the client's address and scheme as a trusted proxy states them
        # (FORWARDED_ALLOW_IPS, as for `api`: Reflex's server, granian, reads no proxy headers).
        functools.partial(ProxyHeadersMiddleware, trusted_hosts=forwarded_allow_ips()),
    ],
)
reflex_compat.quiet_reloaded_tabs()
reflex_compat.quiet_package_installs()
app.register_lifespan_task(llm.preload_in_background, settings=get_settings())
app.register_lifespan_task(open_history)
app.register_lifespan_task(connections_ended_at_exit)
app.add_page(index, title="{{ cookiecutter.project_name }}", on_load=ChatState.load)
