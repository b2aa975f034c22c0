"""Pending approvals: taken once, only for the call asked, until they expire; shared through
Redis between processes (a real redis-server, when installed)."""

import asyncio
import shutil

import pytest

from {{ cookiecutter.package_name }}.approvals import Approvals, SharedApprovals
from {{ cookiecutter.package_name }}.errors import ApiError
from {{ cookiecutter.package_name }}.settings import Settings

from ..support import RedisServer

needs_redis = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")


async def test_a_pending_call_is_taken_once_and_matches_only_its_own_arguments():
    approvals = Approvals(Settings(redis_url=None))
    approval_id = await approvals.ask("call-1", "erase", {"what": "notes", "times": 2.0})

    pending = await approvals.take(approval_id)

    assert pending is not None
    # JavaScript writes 2.0 back as 2: the same arguments.
    assert pending.is_call("call-1", "erase", {"times": 2, "what": "notes"})
    assert not pending.is_call("call-1", "erase", {"what": "everything", "times": 2})
    assert not pending.is_call("call-2", "erase", {"what": "notes", "times": 2})
    assert await approvals.take(approval_id) is None


async def test_a_pending_call_expires_after_approval_ttl_s():
    approvals = Approvals(Settings(redis_url=None, approval_ttl_s=0.05))
    approval_id = await approvals.ask("call-1", "erase", {})
    await asyncio.sleep(0.1)
    assert await approvals.take(approval_id) is None


@needs_redis
async def test_a_call_asked_in_one_process_is_taken_in_another_and_redis_down_is_a_503():
    with RedisServer() as redis_server:
        settings = Settings(redis_url=redis_server.url)
        here, there = SharedApprovals(settings), SharedApprovals(settings)
        approval_id = await here.ask("call-1", "erase", {"what": "notes"})

        assert await there.take(approval_id) is not None
        assert await here.take(approval_id) is None

        kept_there = await there.ask("call-2", "erase", {})
        redis_server.kill()
        kept_here = await here.ask("call-3", "erase", {})  # kept in this process meanwhile
        assert await here.take(kept_here) is not None
        with pytest.raises(ApiError) as unreachable:
            await here.take(kept_there)
        assert (unreachable.value.status, unreachable.value.type) == (503, "redis_unavailable")
