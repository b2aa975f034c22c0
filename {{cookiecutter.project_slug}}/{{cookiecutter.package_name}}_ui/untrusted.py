"""Markdown a model wrote, rendered under the page's policy for untrusted text
(`untrusted.jsx` says what it allows, and why)."""

import reflex as rx

from {{ cookiecutter.package_name }}.settings import get_settings

from .reflex_compat import imported_function

LIBRARY = rx.asset("untrusted.jsx", shared=True).importable_path


class AnswerLink(rx.Component):
    library = LIBRARY
    tag = "AnswerLink"


class AnswerImage(rx.Component):
    library = LIBRARY
    tag = "AnswerImage"

    allowed_hosts: rx.Var[list[str]]


# react-markdown's `urlTransform`: its own filter of addresses, and data: images.
KEEP_SAFE_URL = imported_function("keepSafeUrl", LIBRARY)


def code_block(code: rx.Var, **props) -> rx.Component:
    return rx.code_block(
        code,
        can_copy=True,
        copy_button=rx.icon_button(
            rx.icon("copy", size=14),
            aria_label="Copy code",
            on_click=rx.set_clipboard(code),
            variant="soft",
            size="1",
            position="absolute",
            top="0.6em",
            right="0.6em",
        ),
        margin_y="1em",
        wrap_long_lines=True,
        # Coldark's light colours keep 4.5:1 on its background; One Light's do not.
        theme=rx.color_mode_cond(
            light=rx.code_block.themes.coldark_cold, dark=rx.code_block.themes.one_dark
        ),
        **props,
    )


def markdown(text: rx.Var[str]) -> rx.Component:
    """`text` as markdown (GitHub's flavour), with no raw HTML and no math (each plugin costs
    time on every update of a streaming answer); an image keeps its paragraph, so one shown
    as a link keeps its line.

    `ANSWER_IMAGE_HOSTS` is built into the page, as it is into nginx's policy for the exported
    page. A state var would be a React hook in react-markdown's components, called once per
    message, and React refuses a count of hooks that changes.
    """
    image_hosts = get_settings().answer_image_hosts
    return rx.markdown.root(
        text,
        component_map={
            "pre": code_block,
            "a": lambda *children, **_: AnswerLink.create(*children),
            "img": lambda *_, **__: AnswerImage.create(allowed_hosts=image_hosts),
        },
        remark_plugins=[rx.markdown.plugin.gfm],
        custom_attrs={"urlTransform": KEEP_SAFE_URL},
    )
