"""Who may call the API, and how much: bearer token, rate limit, open streams per client.

A public deployment with a paid key behind it must not let one client burn the budget. The
rate limit counts in memory, or in Redis (`REDIS_URL`) so that every process shares it; the
open-stream limit counts per process.
"""

import functools
import hmac
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from limits import parse
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
    """What an adapter knows of the client: its address and its `Authorization` header."""

    address: str
    authorization: str | None = None


class Access:
    def __init__(self, settings: Settings) -> None:
        self._token = settings.api_token.get_secret_value() if settings.api_token else None
        self._rate = parse(settings.rate_limit)
        self._limiter = rate_limiter(settings)
        self._max_streams = settings.max_streams_per_client
        # Only touched on the event loop (Flask's views, too, run the core on one loop thread).
        self._streams: Counter[str] = Counter()

    def authorize(self, caller: Caller) -> None:
        """Refuse a missing or wrong bearer token when `API_TOKEN` is set."""
        if self._token is None:
            return
        scheme, _, token = (caller.authorization or "").partition(" ")
        valid = scheme.lower() == "bearer" and hmac.compare_digest(
            token.encode(), self._token.encode()
        )
        if not valid:
            message = "A valid `Authorization: Bearer` token is required."
            raise ApiError(401, "unauthorized", message)

    async def admit(self, caller: Caller) -> Callable[[], None]:
        """Count one chat request against the caller's limits; call the result when it ends.

        The open-stream limit is checked first, so a refused request costs no rate budget.
        """
        if self._streams[caller.address] >= self._max_streams:
            raise ApiError(
                429,
                "too_many_streams",
                f"At most {self._max_streams} answers may stream at once per client.",
                retry_after=1,
            )
        self._streams[caller.address] += 1
        release = functools.partial(self._release, caller.address)
        if not await self._limiter.hit(self._rate, caller.address):
            release()
            reset_at, _ = await self._limiter.get_window_stats(self._rate, caller.address)
            raise ApiError(
                429,
                "rate_limited",
                f"Too many requests: the limit is {self._rate}.",
                retry_after=max(1, math.ceil(reset_at - time.time())),
            )
        return release

    def _release(self, address: str) -> None:
        self._streams[address] -= 1
        if not self._streams[address]:
            del self._streams[address]
