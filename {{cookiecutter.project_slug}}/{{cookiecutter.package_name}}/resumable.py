"""Resumable answers: an answer that outlives its request, for a reload or a dropped connection.

A request with `"resumable": true` hands its chunks to a `LiveAnswer`, which reads them in a
task of its own and keeps them, so a client that comes back (`GET /api/chat/{id}/stream`) gets
them all from the start, then live; several clients may follow one answer at once. Once nobody
has followed it for `RESUME_GRACE_S`, the task is cancelled, which closes the provider call;
`DELETE /api/chat/{id}/stream` halts it at once, ending it with `abort`. A finished answer is
kept `RESUME_GRACE_S` longer, for a client that comes back just after the end. What is kept is
bounded: `RESUME_BUFFER_BYTES` per answer, `RESUME_MAX_ANSWERS` answers per process.
"""

import asyncio
from collections.abc import AsyncIterator
from enum import Enum

from .errors import ApiError
from .settings import Settings


class Halt(Enum):
    """Why a live answer is told to end early (the result of its `halt` future)."""

    STOP = "stop"  # DELETE /api/chat/{id}/stream
    OVERFLOW = "overflow"  # the kept chunks outgrew RESUME_BUFFER_BYTES


class LiveAnswer:
    """One answer's chunks, read in a task of its own and kept for every follower."""

    def __init__(self, frames: AsyncIterator[bytes], halt: asyncio.Future, settings: Settings):
        self._frames: list[bytes] = []
        self._size = 0
        self._max_bytes = settings.resume_buffer_bytes
        self._grace_s = settings.resume_grace_s
        self._halt = halt
        self._more = asyncio.Event()  # set, and replaced, whenever a frame is kept or it ends
        self._followers = 0
        self._abandon: asyncio.TimerHandle | None = None
        self.task = asyncio.create_task(self._keep(frames))
        # Counted from now: a request that never starts reading leaves it abandoned.
        self._await_followers()

    @property
    def ended(self) -> bool:
        return self.task.done()

    def stop(self) -> bool:
        """End the answer at once with `abort`; False if it had already ended."""
        if self.ended:
            return False
        if not self._halt.done():
            self._halt.set_result(Halt.STOP)
        return True

    async def follow(self) -> AsyncIterator[bytes]:
        """Every chunk from the start, those kept at once, then each as it comes."""
        self._followers += 1
        if self._abandon is not None:
            self._abandon.cancel()
        sent = 0
        try:
            while True:
                more = self._more
                if sent < len(self._frames):
                    kept, sent = self._frames[sent:], len(self._frames)
                    yield b"".join(kept)
                elif self.ended:
                    return
                else:
                    await more.wait()
        finally:
            self._followers -= 1
            if not self._followers:
                self._await_followers()

    async def _keep(self, frames: AsyncIterator[bytes]) -> None:
        try:
            async for frame in frames:
                self._frames.append(frame)
                self._size += len(frame)
                if self._size > self._max_bytes and not self._halt.done():
                    self._halt.set_result(Halt.OVERFLOW)
                self._wake()
        finally:
            await frames.aclose()
            self._wake()

    def _wake(self) -> None:
        self._more.set()
        self._more = asyncio.Event()

    def _await_followers(self) -> None:
        if not self.ended:
            loop = asyncio.get_running_loop()
            self._abandon = loop.call_later(self._grace_s, self.task.cancel)


class LiveAnswers:
    """This process's resumable answers, by the chat id of the request that started each."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._answers: dict[str, LiveAnswer] = {}

    def check_room(self) -> None:
        """Refuse a new resumable answer while `RESUME_MAX_ANSWERS` are kept; finished ones
        are dropped first."""
        limit = self._settings.resume_max_answers
        if len(self._answers) < limit:
            return
        for chat_id, answer in list(self._answers.items()):
            if answer.ended:
                del self._answers[chat_id]
        if len(self._answers) >= limit:
            message = f"The server keeps at most {limit} resumable answers; try again shortly."
            raise ApiError(503, "too_many_answers", message, retry_after=1)

    def start(
        self, chat_id: str, frames: AsyncIterator[bytes], halt: asyncio.Future
    ) -> AsyncIterator[bytes]:
        """Keep the answer under `chat_id`, stopping one still running there, and follow it."""
        if (earlier := self._answers.get(chat_id)) is not None:
            earlier.stop()
        answer = LiveAnswer(frames, halt, self._settings)
        self._answers[chat_id] = answer
        answer.task.add_done_callback(lambda _: self._drop_later(chat_id, answer))
        return answer.follow()

    def follow(self, chat_id: str) -> AsyncIterator[bytes] | None:
        answer = self._answers.get(chat_id)
        return answer.follow() if answer is not None else None

    def stop(self, chat_id: str) -> bool:
        answer = self._answers.get(chat_id)
        return answer is not None and answer.stop()

    def _drop_later(self, chat_id: str, answer: LiveAnswer) -> None:
        def drop() -> None:
            if self._answers.get(chat_id) is answer:
                del self._answers[chat_id]

        asyncio.get_running_loop().call_later(self._settings.resume_grace_s, drop)
