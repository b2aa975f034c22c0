"""Resumable answers: an answer that outlives its request, for a reload or a dropped connection.

A request with `"resumable": true` (and every answer of the page) hands its chunks to a
`LiveAnswer`, which reads them in a task of its own and keeps them, so a client that comes back
(`GET /api/chat/{id}/stream`, or a reloaded page) gets them all from the start, then live;
several clients may follow one answer at once. Once nobody has followed it for
`RESUME_GRACE_S`, the task is cancelled, which closes the provider call, and its followers
end with `StreamCut`; `DELETE /api/chat/{id}/stream` halts it at once, ending it with `abort`.
A finished answer is kept `RESUME_GRACE_S` longer, for a client that comes back just after the
end. What is kept is bounded, per process: `RESUME_BUFFER_BYTES` per answer, and
`RESUME_MAX_ANSWERS` answers taking at most `RESUME_MAX_BYTES` of memory in all.

With `REDIS_URL` set (`SharedAnswers`), an answer can be re-attached and stopped through any
process that shares the Redis.
"""

import asyncio
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from enum import Enum

import redis.asyncio
from redis.exceptions import RedisError

from .errors import ApiError
from .protocol import Chunks, StreamCut, sse
from .redis_link import Pauses, client_options, redis_watch
from .settings import Settings

# The Redis channel on which a process asks the one running an answer to stop it.
STOPS = f"{__package__}:answer-stops"


class Halt(Enum):
    """Why a live answer is told to end early (the result of its `halt` future)."""

    STOP = "stop"  # DELETE /api/chat/{id}/stream
    OVERFLOW = "overflow"  # the kept chunks outgrew RESUME_BUFFER_BYTES
    FULL = "full"  # the answers kept by this process outgrew RESUME_MAX_BYTES


# What a kept chunk takes in memory beyond its size on the wire: the dict and its strings
# (measured with tracemalloc: 309 bytes for a text delta of 62 bytes as SSE).
CHUNK_OVERHEAD_BYTES = 250


class MemoryUse:
    """The memory the kept chunks of this process's answers take, against `RESUME_MAX_BYTES`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def full(self) -> bool:
        return self.used >= self.limit


class LiveAnswer:
    """One answer's chunks, read in a task of its own and kept for every follower."""

    def __init__(
        self,
        batches: AsyncGenerator[Chunks],
        halt: asyncio.Future,
        settings: Settings,
        memory: MemoryUse,
    ):
        self._chunks: Chunks = []
        self._size = 0
        self._max_bytes = settings.resume_buffer_bytes
        self._memory = memory
        self.kept_bytes = 0  # counted in `memory`, until the answer is dropped
        self._grace_s = settings.resume_grace_s
        self._halt = halt
        self._more = asyncio.Event()  # set, and replaced, whenever a chunk is kept or it ends
        self._followers = 0
        self.complete = False  # its chunks ran out: it is no longer cut short
        self._abandon: asyncio.TimerHandle | None = None
        self._checking: asyncio.Task | None = None
        # Asked before abandoning it: whether a client follows it through another process.
        self.followed_elsewhere: Callable[[], Awaitable[bool]] | None = None
        self.task = asyncio.create_task(self._keep(batches))
        # Counted from now: a request that never starts reading leaves it abandoned.
        self._await_followers()

    @property
    def ended(self) -> bool:
        return self.task.done()

    @property
    def halted_by(self) -> Halt | None:
        return self._halt.result() if self._halt.done() else None

    def stop(self) -> bool:
        """End the answer at once with `abort`; False if it had already ended."""
        if self.ended:
            return False
        if not self._halt.done():
            self._halt.set_result(Halt.STOP)
        return True

    async def follow(self, counted: bool = True) -> AsyncGenerator[Chunks]:
        """Every chunk from the start, those kept at once, then each as it comes; `StreamCut`
        at the end of one that did not complete. A follower not `counted` (the copy to Redis)
        does not keep the answer from being abandoned."""
        if counted:
            self._followers += 1
            if self._abandon is not None:
                self._abandon.cancel()
        sent = 0
        try:
            while True:
                more = self._more
                if sent < len(self._chunks):
                    kept, sent = self._chunks[sent:], len(self._chunks)
                    yield kept
                elif self.ended:
                    if not self.complete:
                        raise StreamCut
                    return
                else:
                    await more.wait()
        finally:
            if counted:
                self._followers -= 1
                if not self._followers:
                    self._await_followers()

    async def _keep(self, batches: AsyncGenerator[Chunks]) -> None:
        try:
            async for batch in batches:
                self._chunks += batch
                size = sum(len(sse(chunk)) for chunk in batch)  # as sent over HTTP
                self._size += size
                self._keep_bytes(size + CHUNK_OVERHEAD_BYTES * len(batch))
                if not self._halt.done():
                    if self._size > self._max_bytes:
                        self._halt.set_result(Halt.OVERFLOW)
                    elif self._memory.used > self._memory.limit:
                        # Its chunks stop counting at once, and go once it has ended.
                        self._halt.set_result(Halt.FULL)
                        self.forget_bytes()
                self._wake()
            self.complete = True
        finally:
            await batches.aclose()
            self._wake()

    def _keep_bytes(self, count: int) -> None:
        self.kept_bytes += count
        self._memory.used += count

    def forget_bytes(self) -> None:
        """Dropped: its chunks no longer count (its last followers may still hold them)."""
        self._memory.used -= self.kept_bytes
        self.kept_bytes = 0

    def _wake(self) -> None:
        self._more.set()
        self._more = asyncio.Event()

    def _await_followers(self) -> None:
        if not self.ended:
            loop = asyncio.get_running_loop()
            self._abandon = loop.call_later(self._grace_s, self._abandon_unless_followed)

    def _abandon_unless_followed(self) -> None:
        if self.ended:
            return
        if self.followed_elsewhere is None:
            self.task.cancel()
        else:
            self._checking = asyncio.create_task(self._check_elsewhere(self.followed_elsewhere))

    async def _check_elsewhere(self, followed_elsewhere: Callable[[], Awaitable[bool]]) -> None:
        try:
            followed = await followed_elsewhere()
        except RedisError as exc:  # nobody can follow it elsewhere meanwhile
            redis_watch.failed(exc)
            followed = False
        if self._followers:
            return
        if followed:
            self._await_followers()
        else:
            self.task.cancel()


class LiveAnswers:
    """This process's resumable answers, by the chat id of the request that started each."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._answers: dict[str, LiveAnswer] = {}
        self._memory = MemoryUse(settings.resume_max_bytes)
        self._reserved = 0  # answers about to start

    def reserve(self) -> Callable[[], None]:
        """Take room for a new answer, or refuse it while `RESUME_MAX_ANSWERS` are kept (or
        about to start) or their chunks take `RESUME_MAX_BYTES`; ended ones are dropped first.
        Call the result once, when the answer has started (it holds its own room then) or
        failed."""
        if not self._has_room():
            for chat_id, answer in list(self._answers.items()):
                if answer.ended:
                    self._drop(chat_id, answer)
        if not self._has_room():
            limit = self._settings.resume_max_answers
            message = f"The server keeps at most {limit} resumable answers; try again shortly."
            if self._memory.full:
                message = "The server holds too many answers to keep another; try again shortly."
            raise ApiError(503, "too_many_answers", message, retry_after=1)
        self._reserved += 1

        def release() -> None:
            self._reserved -= 1

        return release

    def held(self) -> tuple[int, int]:
        """The answers kept now, and the memory their chunks take (for the metrics)."""
        return len(self._answers), self._memory.used

    def _has_room(self) -> bool:
        kept = len(self._answers) + self._reserved
        return kept < self._settings.resume_max_answers and not self._memory.full

    def start(
        self, chat_id: str, batches: AsyncGenerator[Chunks], halt: asyncio.Future
    ) -> AsyncGenerator[Chunks]:
        """Keep the answer under `chat_id`, stopping one still running there, and follow it."""
        if (earlier := self._answers.get(chat_id)) is not None:
            earlier.stop()
        answer = LiveAnswer(batches, halt, self._settings, self._memory)
        self._answers[chat_id] = answer
        answer.task.add_done_callback(lambda _: self._drop_later(chat_id, answer))
        return answer.follow()

    async def follow(self, chat_id: str) -> AsyncGenerator[Chunks] | None:
        """The answer from its start, then live; None when none is kept."""
        answer = self._answers.get(chat_id)
        return answer.follow() if answer is not None else None

    async def stop(self, chat_id: str) -> bool:
        """Stop the running answer; False when none is running."""
        answer = self._answers.get(chat_id)
        return answer is not None and answer.stop()

    def _drop_later(self, chat_id: str, answer: LiveAnswer) -> None:
        """Drop the answer that ended once a client coming back just after the end has had
        time to; at once the one cut off to keep within `RESUME_MAX_BYTES`."""
        delay_s = 0 if answer.halted_by is Halt.FULL else self._settings.resume_grace_s
        asyncio.get_running_loop().call_later(delay_s, self._drop, chat_id, answer)

    def _drop(self, chat_id: str, answer: LiveAnswer) -> None:
        """Keep the ended `answer` no longer (unless a newer one of the chat replaced it)."""
        if self._answers.get(chat_id) is answer:
            del self._answers[chat_id]
        answer.forget_bytes()


class SharedAnswers(LiveAnswers):
    """Resumable answers that every process sharing the Redis at `REDIS_URL` can re-attach to
    and stop.

    The process running an answer copies its chunks into a Redis stream, ended by an `end`
    entry and expiring `RESUME_GRACE_S` after it; another process re-attaches by reading that
    stream from its start and, while it reads, marks the answer followed, so the process running
    it does not abandon it. A stop is published on a channel every process listens to.

    While Redis is unreachable, the answers stay with this process (see `redis_link`): the
    listener for stops subscribes again, and a copy starts again from the answer's start, once
    Redis is back.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        if settings.redis_url is None:
            raise ValueError("SharedAnswers need REDIS_URL")
        self._redis_url = settings.redis_url
        self._redis: redis.asyncio.Redis | None = None
        self._listening: asyncio.Task | None = None
        self._subscribed = asyncio.Event()
        self._copies: dict[LiveAnswer, asyncio.Task] = {}

    def start(
        self, chat_id: str, batches: AsyncGenerator[Chunks], halt: asyncio.Future
    ) -> AsyncGenerator[Chunks]:
        follower = super().start(chat_id, batches, halt)
        answer = self._answers[chat_id]
        answer.followed_elsewhere = lambda: self._client().exists(_followed_key(chat_id))
        copy = asyncio.create_task(self._copy(chat_id, answer))
        self._copies[answer] = copy
        copy.add_done_callback(lambda _: self._copies.pop(answer, None))
        return follower

    async def follow(self, chat_id: str) -> AsyncGenerator[Chunks] | None:
        if (local := await super().follow(chat_id)) is not None:
            return local
        try:
            if not await self._client().exists(_stream_key(chat_id)):
                return None
        except RedisError as exc:
            raise _unreachable(exc) from None
        return self._follow_elsewhere(chat_id)

    async def stop(self, chat_id: str) -> bool:
        if chat_id in self._answers:
            return await super().stop(chat_id)
        try:
            last = await self._client().xrevrange(_stream_key(chat_id), count=1)
            if not last or b"end" in last[0][1]:
                return False
            await self._client().publish(STOPS, chat_id)
        except RedisError as exc:
            raise _unreachable(exc) from None
        return True

    def _client(self) -> redis.asyncio.Redis:
        """The Redis client, and the listener for stops, made on first use: on the event loop
        that serves the requests."""
        if self._redis is None:
            self._redis = redis.asyncio.from_url(self._redis_url, **client_options())
            self._listening = asyncio.create_task(self._listen_for_stops())
        return self._redis

    async def _listen_for_stops(self) -> None:
        """For the life of the process; through an outage, subscribing again after a pause."""
        pauses = Pauses()
        while True:
            try:
                async with self._client().pubsub() as pubsub:
                    await pubsub.subscribe(STOPS)
                    self._subscribed.set()
                    redis_watch.answered()
                    pauses.reset()
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            await super().stop(message["data"].decode())
            except RedisError as exc:
                redis_watch.failed(exc)
            self._subscribed.clear()  # a copy now waits: the stops sent meanwhile are lost
            await asyncio.sleep(pauses.next())

    def _drop(self, chat_id: str, answer: LiveAnswer) -> None:
        super()._drop(chat_id, answer)
        if (copy := self._copies.get(answer)) is not None:
            copy.cancel()  # still waiting for Redis: it would keep the chunks in memory

    async def _copy(self, chat_id: str, answer: LiveAnswer) -> None:
        """Copy the answer into its Redis stream as it grows; from its start again after an
        outage, until it is dropped."""
        self._client()  # the listener for stops, too
        pauses = Pauses()
        while True:
            await self._subscribed.wait()  # a stop sent once the stream exists reaches us
            try:
                await self._copy_once(chat_id, answer)
                return
            except RedisError as exc:
                redis_watch.failed(exc)
            await asyncio.sleep(pauses.next())

    async def _copy_once(self, chat_id: str, answer: LiveAnswer) -> None:
        client, key = self._client(), _stream_key(chat_id)
        running_ttl_s = int(self._settings.max_stream_s + self._settings.resume_grace_s) + 1
        await client.delete(key)  # an earlier answer of the chat, or a copy cut by an outage
        end = b"complete"
        try:
            async for batch in answer.follow(counted=False):
                async with client.pipeline(transaction=False) as pipe:
                    pipe.xadd(key, {"chunks": json.dumps(batch, separators=(",", ":"))})
                    pipe.expire(key, running_ttl_s)
                    await pipe.execute()
        except StreamCut:
            end = b"cut"
        async with client.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"end": end})
            pipe.expire(key, int(self._settings.resume_grace_s) + 1)
            await pipe.execute()
        redis_watch.answered()

    async def _follow_elsewhere(self, chat_id: str) -> AsyncGenerator[Chunks]:
        """The answer as another process copies it; `StreamCut` if Redis fails meanwhile."""
        client, key = self._client(), _stream_key(chat_id)
        grace_ms = int(self._settings.resume_grace_s * 1000)
        last = "0"
        while True:
            try:
                await client.set(_followed_key(chat_id), 1, px=grace_ms)
                found = await client.xread({key: last}, block=grace_ms // 3)
                if not found and not await client.exists(key):
                    raise StreamCut  # the process running it went away
            except RedisError as exc:
                redis_watch.failed(exc)
                raise StreamCut from None
            for _, entries in found:
                for entry_id, fields in entries:
                    if b"end" in fields:
                        if fields[b"end"] != b"complete":
                            raise StreamCut
                        return
                    last = entry_id
                    yield json.loads(fields[b"chunks"])


def _unreachable(error: RedisError) -> ApiError:
    redis_watch.failed(error)
    message = "Answers of other processes cannot be reached while Redis is down; try again."
    return ApiError(503, "redis_unavailable", message, retry_after=2)


def _stream_key(chat_id: str) -> str:
    return f"{__package__}:answer:{chat_id}"


def _followed_key(chat_id: str) -> str:
    return f"{__package__}:answer-followed:{chat_id}"
