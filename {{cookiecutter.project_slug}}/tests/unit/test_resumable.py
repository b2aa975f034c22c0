"""Resumable answers: kept for every follower, abandoned after the grace period, bounded."""

import asyncio

import pytest

from {{ cookiecutter.package_name }}.errors import ApiError
from {{ cookiecutter.package_name }}.protocol import StreamCut, sse
from {{ cookiecutter.package_name }}.resumable import CHUNK_OVERHEAD_BYTES, Halt, LiveAnswers
from {{ cookiecutter.package_name }}.settings import Settings


def chunks(*texts: str) -> list[dict]:
    return [{"type": "text-delta", "id": "text-0", "delta": text} for text in texts]


class Frames:
    """An answer's batches of chunks as the test puts them in (a text delta for each text),
    recording whether it was closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.closed = False
        self.cancelled = False

    def put(self, *texts: str) -> None:
        for text in texts:
            self.queue.put_nowait(chunks(text))

    def end(self) -> None:
        self.queue.put_nowait(None)

    async def read(self):
        try:
            while (frame := await self.queue.get()) is not None:
                yield frame
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.closed = True


def answers(**settings) -> LiveAnswers:
    return LiveAnswers(Settings(redis_url=None, **({"resume_grace_s": 0.2} | settings)))


async def next_frames(follower) -> list[dict]:
    return await asyncio.wait_for(anext(follower), 1)


async def read_all(follower) -> list[dict]:
    return [chunk async for batch in follower for chunk in batch]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def future() -> asyncio.Future:
    return asyncio.get_running_loop().create_future()


async def test_a_follower_gets_everything_from_the_start_then_live():
    kept, frames = answers(), Frames()
    first = kept.start("chat-aaaaaaaaaaaa", frames.read(), future())
    frames.put("a", "b")
    assert await next_frames(first) == chunks("a", "b")
    await first.aclose()

    again = await kept.follow("chat-aaaaaaaaaaaa")
    assert await next_frames(again) == chunks("a", "b")  # all of it, in one write
    frames.put("c")
    assert await next_frames(again) == chunks("c")
    frames.end()
    assert await read_all(again) == []


async def test_two_followers_each_get_the_whole_answer():
    kept, frames = answers(), Frames()
    first = kept.start("chat", frames.read(), future())
    frames.put("a")
    assert await next_frames(first) == chunks("a")
    second = await kept.follow("chat")
    frames.put("b")
    frames.end()
    assert await read_all(first) == chunks("b")
    assert await read_all(second) == chunks("a", "b")


async def test_an_answer_nobody_follows_is_cancelled_after_the_grace_period():
    kept, frames = answers(resume_grace_s=0.1), Frames()
    follower = kept.start("chat", frames.read(), future())
    frames.put("a")
    await next_frames(follower)
    await follower.aclose()
    await asyncio.sleep(0.05)
    assert not frames.closed
    await asyncio.sleep(0.1)
    await settle()
    assert frames.cancelled and frames.closed


async def test_a_follower_of_an_answer_cut_short_is_told_so():
    """Abandoned, it never completed: unlike a finished one, its followers end with `StreamCut`
    (the HTTP routes then send no `[DONE]`)."""
    kept, frames = answers(resume_grace_s=0.2), Frames()
    frames.put("a")
    await kept.start("chat", frames.read(), future()).aclose()
    while not frames.cancelled:  # abandoned after 0.2 s, kept 0.2 s more
        await asyncio.sleep(0.01)
    with pytest.raises(StreamCut):
        await read_all(await kept.follow("chat"))


async def test_coming_back_within_the_grace_period_keeps_it_running():
    kept, frames = answers(resume_grace_s=0.1), Frames()
    await kept.start("chat", frames.read(), future()).aclose()
    await asyncio.sleep(0.05)
    follower = await kept.follow("chat")
    frames.put("a")
    assert await next_frames(follower) == chunks("a")
    await asyncio.sleep(0.15)
    assert not frames.closed
    frames.end()
    assert await read_all(follower) == []


async def test_a_request_that_never_reads_leaves_it_abandoned_too():
    kept, frames = answers(resume_grace_s=0.05), Frames()
    kept.start("chat", frames.read(), future())
    await asyncio.sleep(0.1)
    await settle()
    assert frames.cancelled


async def test_a_finished_answer_is_kept_for_the_grace_period_then_dropped():
    kept, frames = answers(resume_grace_s=0.1), Frames()
    frames.put("a", "b")
    frames.end()
    assert await read_all(kept.start("chat", frames.read(), future())) == chunks("a", "b")
    assert await read_all(await kept.follow("chat")) == chunks("a", "b")
    await asyncio.sleep(0.15)
    assert await kept.follow("chat") is None


async def test_stop_resolves_the_halt_and_only_while_it_runs():
    kept, frames = answers(), Frames()
    halt = future()
    follower = kept.start("chat", frames.read(), halt)
    assert await kept.stop("chat")
    assert halt.result() is Halt.STOP
    assert not await kept.stop("nobody")
    frames.put("abort")  # what the answer sends on its halt
    frames.end()
    assert await read_all(follower) == chunks("abort")
    assert not await kept.stop("chat")


async def test_a_new_answer_of_the_same_chat_stops_the_earlier_one():
    kept, earlier, later = answers(), Frames(), Frames()
    halt = future()
    kept.start("chat", earlier.read(), halt)
    kept.start("chat", later.read(), future())
    assert halt.result() is Halt.STOP
    later.put("new")
    assert await next_frames(await kept.follow("chat")) == chunks("new")
    earlier.end()
    later.end()


async def test_an_answer_outgrowing_its_buffer_is_halted():
    kept, frames = answers(resume_buffer_bytes=len(sse(chunks("abc")[0])) + 1), Frames()
    halt = future()
    follower = kept.start("chat", frames.read(), halt)
    frames.put("abc")
    await next_frames(follower)
    assert not halt.done()
    frames.put("def")
    await next_frames(follower)
    assert halt.result() is Halt.OVERFLOW
    frames.end()


async def test_no_more_answers_than_the_limit_are_kept():
    kept = answers(resume_max_answers=2)
    running, finished, another = Frames(), Frames(), Frames()
    finished.end()
    kept.reserve()()
    kept.start("running", running.read(), future())
    await read_all(kept.start("finished", finished.read(), future()))
    release = kept.reserve()  # the finished one makes room
    with pytest.raises(ApiError) as refused:
        kept.reserve()  # room taken is room taken, though the answer has not started yet
    assert (refused.value.status, refused.value.type) == (503, "too_many_answers")
    kept.start("another", another.read(), future())
    release()
    with pytest.raises(ApiError):
        kept.reserve()
    assert await kept.follow("finished") is None
    running.end()
    another.end()


async def test_answers_past_the_memory_limit_are_cut_off_and_new_ones_refused():
    one_chunk = len(sse(chunks("abc")[0])) + CHUNK_OVERHEAD_BYTES
    kept, first, second = answers(resume_max_bytes=3 * one_chunk), Frames(), Frames()
    first_halt, second_halt = future(), future()
    first_follower = kept.start("first", first.read(), first_halt)
    second_follower = kept.start("second", second.read(), second_halt)
    growing = [(first, first_follower), (second, second_follower), (first, first_follower)]
    for frames, follower in growing:
        frames.put("abc")
        await next_frames(follower)
    with pytest.raises(ApiError) as refused:
        kept.reserve()
    assert (refused.value.status, refused.value.type) == (503, "too_many_answers")
    second.put("def")  # past the limit: the answer that grows is cut off, the others go on
    await next_frames(second_follower)
    assert second_halt.result() is Halt.FULL
    second.end()
    await read_all(second_follower)
    first.put("ghi")  # within the limit again: what the cut one held stopped counting at once
    await next_frames(first_follower)
    assert not first_halt.done()
    await settle()
    assert await kept.follow("second") is None  # dropped at once, not after the grace period
    first.end()
    await read_all(first_follower)
