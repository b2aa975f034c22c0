"""The answer being streamed lives in the page, and the backend sends only what is new.

Reflex resends a changed state var whole, so an answer kept in state costs the sum of all its
prefixes over the websocket: quadratic in its length. Here the page holds the draft
(a client-side var) and each push appends the text that arrived since the last one, so the
bytes sent grow linearly with the answer. The finished answer moves into the state once. A
reloaded page is sent the whole draft again (`show`); each append says where its text starts,
so one that overlaps it changes nothing.
"""

import json

from reflex.event import EventSpec
from reflex.experimental.client_state import ClientStateVar
from reflex.vars import Var

from .reflex_compat import client_state_value, js_call

draft = ClientStateVar.create("draft", default="")


def clear() -> EventSpec:
    return show("")


def show(text: str) -> EventSpec:
    return draft.push(text)


def append(text: str, at: int) -> EventSpec:
    """Put `text` at offset `at` of the draft, as `js_length` counts; a draft shorter than
    that missed an append (the page was reloading) and waits for `show`."""
    current = f"({client_state_value('draft')} ?? '')"
    put = f"d.length < {at} ? d : d.slice(0, {at}) + {json.dumps(text)}"
    return draft.push(Var(f"(d => {put})({current})"))


def js_length(text: str) -> int:
    """The length of `text` as JavaScript counts it: in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# A JS function of the draft: hold back a fence line still being typed, close an open block.
_SHOWABLE = r"""((text) => {
  const shown = text.replace(/(^|\n)`{1,3}[^\n]*$/, "");
  return (shown.match(/^```/gm) || []).length % 2 ? shown + "\n```" : shown;
})"""


def renderable(text: Var) -> Var:
    """The draft as markdown can show it mid-answer without flicker: half a code block never
    shows as prose first and then jumps into a code box."""
    return js_call(_SHOWABLE, text).to(str)
