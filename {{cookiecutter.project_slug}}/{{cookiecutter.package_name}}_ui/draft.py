"""The answer being streamed lives in the page, and the backend sends only what is new.

Reflex resends a changed state var whole, so an answer kept in state costs the sum of all its
prefixes over the websocket: quadratic in its length. Here the page holds the draft
(a client-side var) and each push appends the text that arrived since the last one, so the
bytes sent grow linearly with the answer. The finished answer moves into the state once.

Each append says where its text starts, so a page may take appends from two tasks at once: the
one answering, and after a reload the one sending the answer again from its start. An append
that starts past the draft's end (it missed one, reloading) or ends within it (the other task
sent that text already) changes nothing.
"""

import json
import time

from reflex.event import Event, EventSpec
from reflex.experimental.client_state import ClientStateVar
from reflex.vars import Var

from .reflex_compat import client_state_value, js_call, script_event, script_of

draft = ClientStateVar.create("draft", default="")
# The page's script that sets the draft to the value of an expression, made once: an append is
# sent 20 times a second per answer, and Reflex's own `push` builds it anew each time.
_SET_TO = script_of(draft.push(Var("EXPRESSION")))


def clear() -> EventSpec:
    return draft.push("")


def append(text: str, at: int) -> Event:
    """Put `text` at offset `at` of the draft, as `js_length` counts."""
    current = f"({client_state_value('draft')} ?? '')"
    end = at + js_length(text)
    put = f"d.length < {at} || d.length >= {end} ? d : d.slice(0, {at}) + {json.dumps(text)}"
    return script_event(_SET_TO.replace("EXPRESSION", f"(d => {put})({current})"))


def js_length(text: str) -> int:
    """The length of `text` as JavaScript counts it: in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class Pushes:
    """Text deltas, coalesced into an append at most once per `flush_s`."""

    def __init__(self, flush_s: float) -> None:
        self._flush_s = flush_s
        self._last = 0.0  # the first text goes out at once
        self._pushed: list[str] = []
        self._pending: list[str] = []
        self._at = 0  # where the next append starts

    @property
    def text(self) -> str:
        """Everything so far, pushed or not."""
        return "".join(self._pushed + self._pending)

    def add(self, delta: str) -> Event | None:
        """Take a delta; the append of all that is pending, when one is due."""
        self._pending.append(delta)
        if time.monotonic() - self._last < self._flush_s:
            return None
        self._last = time.monotonic()
        text = "".join(self._pending)
        self._pending.clear()
        self._pushed.append(text)
        push, self._at = append(text, self._at), self._at + js_length(text)
        return push


# A JS function of the draft: hold back a fence line still being typed, close an open block.
_SHOWABLE = r"""((text) => {
  const shown = text.replace(/(^|\n)`{1,3}[^\n]*$/, "");
  return (shown.match(/^```/gm) || []).length % 2 ? shown + "\n```" : shown;
})"""


def renderable(text: Var) -> Var:
    """The draft as markdown can show it mid-answer without flicker: half a code block never
    shows as prose first and then jumps into a code box."""
    return js_call(_SHOWABLE, text).to(str)
