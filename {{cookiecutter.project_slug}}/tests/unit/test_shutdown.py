"""Shutdown told to open streams, from any thread, also to streams opened after it began."""

import asyncio
import threading

from {{ cookiecutter.package_name }}.shutdown import ShutdownNotice


async def test_open_streams_learn_of_a_shutdown_begun_on_another_thread():
    notice = ShutdownNotice()
    with notice.watch() as first, notice.watch() as second:
        assert notice.open_streams == 2
        assert not first.done()
        threading.Thread(target=notice.begin).start()
        await asyncio.wait_for(asyncio.gather(first, second), timeout=5)
    assert notice.open_streams == 0


async def test_a_stream_opened_after_shutdown_began_ends_at_once():
    notice = ShutdownNotice()
    notice.begin()
    with notice.watch() as stopping:
        assert stopping.done()


async def test_a_closed_stream_is_forgotten_and_not_told():
    notice = ShutdownNotice()
    with notice.watch() as stopping:
        pass
    notice.begin()
    await asyncio.sleep(0)
    assert notice.open_streams == 0
    assert not stopping.done()
