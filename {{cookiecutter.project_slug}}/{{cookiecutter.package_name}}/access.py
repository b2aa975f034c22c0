"""Who may ask for answers, and how many: bearer token, rate limit, open streams.

A public deployment with a paid key behind it must not let one client burn the budget. An
HTTP client is counted by its address; a visitor of the chat page by their own id, and with
everyone at their address in a larger count. The rate limits count in memory, or in Redis
(`REDIS_URL`) so that every process shares them; open streams count per process.
"""

import functools
import hmac
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from .errors import ApiError
from .settings import Settings


def rate_limiter(settings: Settings) -> MovingWindowRateLimiter:
    """A limiter counting in this process's memory, or in Redis when `REDIS_URL` is set."""
    storage = (
        storage_from_string(f"async+{settings.redis_url}", implementation="redispy")
        if settings.redis_url
        else storage_from_string("async+memory://")
    )
    return MovingWindowRateLimiter(storage)


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
        self._limiter = rate_limiter(settings)
        # Only touched on the event loop (Flask's views, too, run the core on one loop thread).
        self._streams: Counter[str] = Counter()

    def authorize(self, caller: Caller) -> None:
        """Refuse an HTTP client without the bearer token when `API_TOKEN` is set."""
        if self._token is None or caller.visitor is not None:
            return
        scheme, _, token = (caller.authorization or "").partition(" ")
        valid = scheme.lower() == "bearer" and hmac.compare_digest(
            token.encode(), self._token.encode()
        )
        if not valid:
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
        reset_at, _ = await self._limiter.get_window_stats(quota.rate, quota.key)
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
