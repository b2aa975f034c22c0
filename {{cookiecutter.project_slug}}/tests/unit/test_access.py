"""Who may call the API, and how much: the token, the rate limit, open streams per client."""

import asyncio

import pytest

from {{ cookiecutter.package_name }}.access import Access, Caller
from {{ cookiecutter.package_name }}.errors import ApiError
from {{ cookiecutter.package_name }}.settings import Settings


def access(**settings) -> Access:
    return Access(Settings(redis_url=None, **settings))


def test_without_a_token_everyone_is_authorized():
    access().authorize(Caller("10.0.0.1"))


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", "Basic s3cret", "s3cret", "Bearer s3cret extra"],
)
def test_anything_but_the_bearer_token_is_refused(authorization):
    with pytest.raises(ApiError) as refused:
        access(api_token="s3cret").authorize(Caller("10.0.0.1", authorization))
    assert (refused.value.status, refused.value.type) == (401, "unauthorized")


@pytest.mark.parametrize("authorization", ["Bearer s3cret", "bearer s3cret"])
def test_the_bearer_token_is_authorized(authorization):
    access(api_token="s3cret").authorize(Caller("10.0.0.1", authorization))


async def test_open_streams_are_limited_per_client_and_freed_when_they_end():
    limited = access(max_streams_per_client=2)
    first = await limited.admit(Caller("10.0.0.1"))
    await limited.admit(Caller("10.0.0.1"))
    with pytest.raises(ApiError) as refused:
        await limited.admit(Caller("10.0.0.1"))
    assert (refused.value.status, refused.value.type) == (429, "too_many_streams")
    assert refused.value.headers() == {"Retry-After": "1"}
    await limited.admit(Caller("10.0.0.2"))  # another client has its own slots
    first()
    await limited.admit(Caller("10.0.0.1"))


async def test_the_rate_limit_says_when_to_retry_and_a_refused_request_costs_nothing():
    limited = access(rate_limit="2/minute", max_streams_per_client=1)
    (await limited.admit(Caller("10.0.0.1")))()
    release = await limited.admit(Caller("10.0.0.1"))
    with pytest.raises(ApiError, match="At most 1"):
        await limited.admit(Caller("10.0.0.1"))  # refused for streams: no rate budget spent
    release()
    with pytest.raises(ApiError) as refused:
        await limited.admit(Caller("10.0.0.1"))
    assert (refused.value.status, refused.value.type) == (429, "rate_limited")
    assert 1 <= refused.value.retry_after <= 60
    assert "2 per 1 minute" in refused.value.message
    (await limited.admit(Caller("10.0.0.2")))()


def test_a_page_visitor_needs_no_token():
    """The page asks in process, past its own gate: the token guards the HTTP API only."""
    access(api_token="s3cret").authorize(Caller("10.0.0.1", visitor="v1"))


async def test_visitors_at_one_address_each_have_their_own_streams_within_the_addresss():
    """A room behind one NAT: each visitor is held to the per-client limit alone, and all of
    them together to the larger per-address one."""
    room = access(max_streams_per_client=2, page_max_streams_per_address=3)
    await room.admit(Caller("10.0.0.1", visitor="alice"))
    await room.admit(Caller("10.0.0.1", visitor="alice"))
    with pytest.raises(ApiError, match="At most 2 answers may stream at once per visitor"):
        await room.admit(Caller("10.0.0.1", visitor="alice"))
    release = await room.admit(Caller("10.0.0.1", visitor="bob"))
    with pytest.raises(ApiError, match="At most 3 answers may stream at once from one address"):
        await room.admit(Caller("10.0.0.1", visitor="carol"))
    await room.admit(Caller("10.0.0.1"))  # an HTTP client at that address is counted apart
    release()
    await room.admit(Caller("10.0.0.1", visitor="carol"))


async def test_visitors_at_one_address_share_its_rate_limit_and_a_refusal_costs_nothing():
    room = access(rate_limit="1/minute", page_rate_limit_per_address="3/minute")
    for visitor in ("alice", "bob", "dave"):
        (await room.admit(Caller("10.0.0.1", visitor=visitor)))()
    with pytest.raises(ApiError) as refused:
        await room.admit(Caller("10.0.0.1", visitor="carol"))
    assert refused.value.type == "rate_limited"
    assert "from one address" in refused.value.message
    (await room.admit(Caller("10.0.0.2", visitor="carol")))()  # her own budget is untouched


async def test_a_caller_cancelled_while_the_limiter_answers_gives_the_stream_back():
    limited = access(max_streams_per_client=1)
    limiter = limited._limiter
    answering = asyncio.Event()

    async def slow_test(*args, **kwargs):  # a limiter in Redis, taking its time
        answering.set()
        await asyncio.sleep(10)

    original, limiter.test = limiter.test, slow_test
    admitting = asyncio.create_task(limited.admit(Caller("10.0.0.1")))
    await answering.wait()
    admitting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await admitting
    limiter.test = original
    await limited.admit(Caller("10.0.0.1"))  # its one stream is free again
