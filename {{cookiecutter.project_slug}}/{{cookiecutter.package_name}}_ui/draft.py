"""The answer being streamed lives in the page, and the backend sends only what is new.

Reflex resends a changed state var whole, so an answer kept in state costs the sum of all its
prefixes over the websocket: quadratic in its length. Here the page holds the draft
(a client-side var) and each push appends the text that arrived since the last one, so the
bytes sent grow linearly with the answer. The finished answer moves into the state once.
"""

import json

from reflex.event import EventSpec
from reflex.experimental.client_state import ClientStateVar
from reflex.vars import Var

from .reflex_compat import client_state_value, js_call

draft = ClientStateVar.create("draft", default="")


def clear() -> EventSpec:
    return draft.push("")


def append(text: str) -> EventSpec:
    return draft.push(Var(f"({client_state_value('draft')} ?? '') + {json.dumps(text)}"))


# A JS function of the draft: hold back a fence line still being typed, close an open block.
_SHOWABLE = r"""((text) => {
  const shown = text.replace(/(^|\n)`{1,3}[^\n]*$/, "");
  return (shown.match(/^```/gm) || []).length % 2 ? shown + "\n```" : shown;
})"""


def renderable(text: Var) -> Var:
    """The draft as markdown can show it mid-answer without flicker: half a code block never
    shows as prose first and then jumps into a code box."""
    return js_call(_SHOWABLE, text).to(str)
