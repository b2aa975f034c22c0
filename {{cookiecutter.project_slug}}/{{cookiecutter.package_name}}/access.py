"""Who may ask for answers, and how many: bearer token, rate limit, open streams.

A public deployment with a paid key behind it must not let one client burn the budget. An
HTTP client is counted by its address; a visitor of the chat page by their own id, and with
everyone at their address in a larger count. The rate limits count in memory, or in Redis
(`REDIS_URL`) so that every process shares them (in memory again while Redis is unreachable);
open streams count per process.
"""

import functools
import hmac
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from .errors import ApiError
from .redis_link import Pauses, client_options, redis_watch
from .settings import Settings

T = TypeVar("T")


class RateLimiter:
    """Moving-window rate limits, counted in Redis when `REDIS_URL` is set, so that every
    process shares them, and in this process otherwise, or while Redis is unreachable (see
    `redis_link`)."""

    def __init__(self, redis_url: str | None) -> None:
        self._memory = MovingWindowRateLimiter(storage_from_string("async+memory://"))
        self._redis = None
        if redis_url:
            storage = storage_from_string(
                f"async+{redis_url}",
                implementation="redispy",
                wrap_exceptions=True,
                **client_options(),
            )
            self._redis = MovingWindowRateLimiter(storage)
        self._pauses = Pauses()
        self._redis_again_at = 0.0  # after a failure, Redis is left alone until then

    async def test(self, item: RateLimitItem, *identifiers: str) -> bool:
        return await self._count(lambda limiter: limiter.test(item, *identifiers))

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        return await self._count(lambda limiter: limiter.hit(item, *identifiers))

    async def reset_at(self, item: RateLimitItem, *identifiers: str) -> float:
        """When the window of `identifiers` has room again (a Unix time)."""
        stats = await self._count(lambda limiter: limiter.get_window_stats(item, *identifiers))
        return stats.reset_time

    async def _count(self, ask: Callable[[MovingWindowRateLimiter], Awaitable[T]]) -> T:
        if self._redis is not None and time.monotonic() >= self._redis_again_at:
            try:
                answer = await ask(self._redis)
            except StorageError as exc:
                redis_watch.failed(exc.storage_error)
                self._redis_again_at = time.monotonic() + self._pauses.next()
            else:
                redis_watch.answered()
                self._pauses.reset()
                return answer
        return await ask(self._memory)


def bearer_is(authorization: str | None, token: str) -> bool:
    """Whether an `Authorization` header holds the bearer token (compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks. An HTTP client: its address and its `Authorization` header. A visitor of the
    chat page, which calls the core in process past its own gate (`UI_PASSWORD`), so with no
    token: its address (the websocket's peer, or the trusted proxy's `X-Forwarded-For`) and a
    pseudonymous `visitor` id."""

    address: str
    authorization: str | None = None
    visitor: str | None = None


@dataclass(frozen=True, slots=True)
class Quota:
    """One count a request is held to: open streams and a rate, under `key`."""

    key: str
    max_streams: int
    rate: RateLimitItem
    per: str  # how a refusal names it


class Access:
    def __init__(self, settings: Settings) -> None:
        self._token = settings.api_token.get_secret_value() if settings.api_token else None
        self._rate = parse(settings.rate_limit)
        self._max_streams = settings.max_streams_per_client
        self._address_rate = parse(settings.page_rate_limit_per_address)
        self._address_max_streams = settings.page_max_streams_per_address
        self._limiter = RateLimiter(settings.redis_url)
        # Only touched on the event loop (Flask's views, too, run the core on one loop thread).
        self._streams: Counter[str] = Counter()

    def authorize(self, caller: Caller) -> None:
        """Refuse an HTTP client without the bearer token when `API_TOKEN` is set."""
        if self._token is None or caller.visitor is not None:
            return
        if not bearer_is(caller.authorization, self._token):
            message = "A valid `Authorization: Bearer` token is required."
            raise ApiError(401, "unauthorized", message)

    async def admit(self, caller: Caller) -> Callable[[], None]:
        """Count one answer against the caller's quotas; call the result when it ends.

        Open streams are checked first, so a refused request costs no rate budget.
        """
        quotas = self._quotas(caller)
        for quota in quotas:
            if self._streams[quota.key] >= quota.max_streams:
                raise ApiError(
                    429,
                    "too_many_streams",
                    f"At most {quota.max_streams} answers may stream at once {quota.per}.",
                    retry_after=1,
                )
        for quota in quotas:
            self._streams[quota.key] += 1
        release = functools.partial(self._release, [quota.key for quota in quotas])
        try:
            # Every quota is tested before any is spent: a refusal by one costs the others
            # nothing.
            for quota in quotas:
                if not await self._limiter.test(quota.rate, quota.key):
                    raise await self._rate_limited(quota)
            for quota in quotas:
                if not await self._limiter.hit(quota.rate, quota.key):
                    raise await self._rate_limited(quota)
        except BaseException:  # a refusal, or the caller cancelled while the limiter answered
            release()
            raise
        return release

    async def _rate_limited(self, quota: Quota) -> ApiError:
        reset_at = await self._limiter.reset_at(quota.rate, quota.key)
        return ApiError(
            429,
            "rate_limited",
            f"Too many requests {quota.per}: the limit is {quota.rate}.",
            retry_after=max(1, math.ceil(reset_at - time.time())),
        )

    def _quotas(self, caller: Caller) -> list[Quota]:
        """An HTTP client's quota is its address's. A page visitor has a quota of their own
        (the same sizes), and shares a larger one with everyone at their address: people in
        one room usually share one public address, and a new visitor id is only a cleared
        cookie away."""
        if caller.visitor is None:
            return [Quota(caller.address, self._max_streams, self._rate, "per client")]
        return [
            Quota(f"visitor:{caller.visitor}", self._max_streams, self._rate, "per visitor"),
            Quota(
                f"address:{caller.address}",
                self._address_max_streams,
                self._address_rate,
                "from one address",
            ),
        ]

    def _release(self, keys: list[str]) -> None:
        for key in keys:
            self._streams[key] -= 1
            if not self._streams[key]:
                del self._streams[key]
