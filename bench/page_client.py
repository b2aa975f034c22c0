"""The page's own path under load: chats through Reflex's websocket, spoken as the page speaks it.

    BAKE/.venv/bin/python bench/page_client.py URL PACKAGE --chats N --tokens T --interval-ms I \
        --spread-s S

Run it with the bake's Python: it imports the bake's chat state for the event names, and uses
python-socketio's client, which Reflex brings. Each chat connects as a tab does (a new client
token, the hydrate event in the connect packet), sends back the events the backend asks the page
to send, asks one question and reads every update until the answer is saved. The questions go
out spread evenly over S seconds, as people arrive, not all in the same millisecond. A question
tells bench/upstream.py what to stream; each token it sends carries its send time
(`tok<i>@<time.monotonic()>`, one clock for every process on Linux).

Prints JSON, one entry per chat: when it asked and when its answer was saved, when each token
first reached the socket and when the provider sent it, and the bytes of the updates received
after the question.
"""

import argparse
import asyncio
import importlib
import json
import re
import time
import uuid

import reflex as rx
import socketio
from reflex_base.utils.format import format_event_handler

NAMESPACE = "/_event"
TOKEN = re.compile(r"tok(\d+)@(\d+\.\d+)")


class Chat:
    def __init__(self, url: str, names: dict[str, str], question: str, tokens: int):
        self.url, self.names, self.question, self.tokens = url, names, question, tokens
        self.client = socketio.AsyncClient(reconnection=False)
        self.client.on("event", self.on_update, namespace=NAMESPACE)
        self.asked = 0.0
        self.arrived: dict[int, float] = {}  # token index -> first seen on the socket
        self.sent: dict[int, float] = {}  # token index -> the provider's send time
        self.bytes = 0
        self.saved = asyncio.Event()
        self.ended = 0.0

    async def run(self, delay_s: float, timeout_s: float) -> dict:
        token = uuid.uuid4().hex
        await self.client.connect(
            f"{self.url}?token={token}",
            socketio_path=NAMESPACE,
            namespaces=[NAMESPACE],
            transports=["websocket"],
            auth={"event": self.event(self.names["hydrate"])},
        )
        try:
            await asyncio.sleep(1 + delay_s)  # every page hydrated before the first question
            self.asked, self.bytes = time.monotonic(), 0
            await self.emit(self.names["ask"], question=self.question)
            await asyncio.wait_for(self.saved.wait(), timeout_s)
        finally:
            await self.client.disconnect()
        return {
            "asked": self.asked,
            "ended": self.ended,
            "arrived": [self.arrived.get(i) for i in range(self.tokens)],
            "sent": [self.sent.get(i) for i in range(self.tokens)],
            "bytes": self.bytes,
        }

    @staticmethod
    def event(name: str, **payload) -> dict:
        return {"name": name, "payload": payload, "router_data": {"pathname": "/", "asPath": "/"}}

    async def emit(self, name: str, **payload) -> None:
        await self.client.emit("event", self.event(name, **payload), namespace=NAMESPACE)

    async def on_update(self, update: dict) -> None:
        now = time.monotonic()
        text = json.dumps(update, separators=(",", ":"))
        self.bytes += len(text)
        for index, sent_at in TOKEN.findall(text):
            self.arrived.setdefault(int(index), now)
            self.sent.setdefault(int(index), float(sent_at))
        for event in update.get("events") or ():
            if not event["name"].startswith("_"):  # a backend handler: the page sends it back
                await self.emit(event["name"], **event.get("payload", {}))
        if self.asked and not streaming(update):  # the answer saved, whole or with an error
            self.ended = self.ended or now
            self.saved.set()


def streaming(update: dict) -> bool:
    """Whether this update leaves the chat state streaming (its `streaming` var set to false
    ends the answer)."""
    for substate in (update.get("delta") or {}).values():
        for name, value in substate.items():
            if name.startswith("streaming") and value is False:
                return False
    return True


def event_names(package: str) -> dict[str, str]:
    chat_state = importlib.import_module(f"{package}_ui.state").ChatState
    return {
        "hydrate": format_event_handler(rx.State.event_handlers["hydrate"]),
        "ask": format_event_handler(chat_state.event_handlers["ask"]),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("package")
    parser.add_argument("--chats", type=int, required=True)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--interval-ms", type=int, required=True)
    parser.add_argument("--spread-s", type=float, default=1.0)
    args = parser.parse_args()
    names = event_names(args.package)
    questions = [
        f"page-{uuid.uuid4().hex} {args.tokens} {args.interval_ms}" for _ in range(args.chats)
    ]
    chats = [Chat(args.url, names, question, args.tokens) for question in questions]
    timeout_s = 60 + args.tokens * args.interval_ms / 1000
    runs = [chat.run(args.spread_s * i / args.chats, timeout_s) for i, chat in enumerate(chats)]
    results = await asyncio.gather(*runs)
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
