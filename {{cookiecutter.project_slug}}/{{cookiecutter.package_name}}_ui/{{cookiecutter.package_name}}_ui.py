{%- if cookiecutter.framework == "flask" -%}
"""The chat page. It talks to the API served beside it (`API_URL`)."""

import reflex as rx
{%- else -%}
"""The chat page. The API is mounted into Reflex's backend, so one server serves both."""

import reflex as rx

from {{ cookiecutter.package_name }} import llm
from {{ cookiecutter.package_name }}.api import create_app, mount_into_reflex
{%- endif %}

from .state import ChatState, Message

# LLM output needs no math or raw-HTML rendering; each plugin costs time on every update.
MARKDOWN_PLUGINS = {"remark_plugins": [], "rehype_plugins": []}


def bubble(message: Message) -> rx.Component:
    is_user = message.role == "user"
    return rx.box(
        rx.cond(is_user, rx.text(message.content), rx.markdown(message.content)),
        rx.cond(
            message.status == "stopped",
            rx.hstack(
                rx.badge("stopped", color_scheme="gray"),
                rx.button("Retry", size="1", variant="ghost", on_click=ChatState.retry),
            ),
        ),
        rx.cond(
            message.status == "error",
            rx.callout(
                rx.hstack(
                    rx.text(message.error),
                    rx.button("Retry", size="1", variant="soft", on_click=ChatState.retry),
                    align="center",
                ),
                icon="triangle_alert",
                color_scheme="red",
                size="1",
                role="alert",
            ),
        ),
        rx.cond(message.details != "", rx.text(message.details, size="1", color_scheme="gray")),
        align_self=rx.cond(is_user, "flex-end", "flex-start"),
        background=rx.cond(is_user, rx.color("accent", 3), "transparent"),
        padding="0.5em 0.9em",
        border_radius="12px",
        max_width="85%",
    )


def live_answer() -> rx.Component:
    return rx.cond(
        ChatState.streaming,
        rx.box(
            rx.markdown(ChatState.draft),
            rx.hstack(rx.spinner(size="1"), rx.text("Generating…", size="1", color_scheme="gray")),
            aria_live="polite",
            aria_busy="true",
            padding="0.5em 0.9em",
        ),
    )


def model_picker() -> rx.Component:
    return rx.select.root(
        rx.select.trigger(aria_label="Model"),
        rx.select.content(
            rx.foreach(ChatState.models, lambda model: rx.select.item(model, value=model))
        ),
        value=ChatState.model,
        on_change=ChatState.set_model,
        size="1",
    )


def composer() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.text_area(
                name="question",
                placeholder="Ask anything…",
                aria_label="Your question",
                rows="2",
                width="100%",
                enter_key_submit=True,
            ),
            rx.cond(
                ChatState.streaming,
                rx.button("Stop", type="button", on_click=ChatState.stop, color_scheme="red"),
                rx.button("Send", type="submit"),
            ),
            width="100%",
            align="end",
        ),
        on_submit=ChatState.send,
        reset_on_submit=True,
        width="100%",
    )


def index() -> rx.Component:
    return rx.container(
        rx.vstack(
            rx.hstack(
                rx.heading("{{ cookiecutter.project_name }}", size="6"),
                model_picker(),
                justify="between",
                width="100%",
            ),
            rx.vstack(
                rx.foreach(ChatState.messages, bubble),
                live_answer(),
                width="100%",
                spacing="3",
                flex="1",
            ),
            composer(),
            min_height="95vh",
            spacing="4",
        ),
        size="3",
    )


{% if cookiecutter.framework == "flask" -%}
app = rx.App()
{%- else -%}
app = rx.App(api_transformer=mount_into_reflex(create_app()))
app.register_lifespan_task(llm.preload_in_background)
{%- endif %}
app.add_page(index, title="{{ cookiecutter.project_name }}", on_load=ChatState.load_models)
