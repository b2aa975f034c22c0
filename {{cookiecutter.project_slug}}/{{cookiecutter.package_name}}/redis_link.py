"""Redis (`REDIS_URL`) as a dependency the app bends around, and comes back to.

Redis shares rate-limit counts and resumable answers between processes; answering does not
need it. While it is unreachable, rate limits count in each process (a client gets the limit
per process, not per deployment), answers stay with the process running them, and following
or stopping one that runs in another process is refused with `503 redis_unavailable`.

Its clients fail fast: a refused connection, or one not made within `CONNECT_TIMEOUT_S`, is an
outage rather than a wait. What uses Redis tries it again after pauses growing to
`MAX_PAUSE_S`, so the app is whole again within seconds of Redis coming back, with no restart.
`redis_watch` logs each outage once, when it begins and when it ends, and `/api/health`
reports it.
"""

import logging
import random
import time

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2.0
FIRST_PAUSE_S = 0.1
MAX_PAUSE_S = 2.0


def client_options() -> dict:
    """For each Redis client of the app. redis-py's default retries three times with pauses of
    up to 10 s, which a request would spend waiting; one immediate retry is enough to replace
    a pooled connection that died with a restarted Redis."""
    return {"socket_connect_timeout": CONNECT_TIMEOUT_S, "retry": Retry(NoBackoff(), retries=1)}


class RedisWatch:
    """Whether Redis answered the last time it was asked, for the log and the health check."""

    def __init__(self) -> None:
        self._down_since: float | None = None

    @property
    def reachable(self) -> bool:
        return self._down_since is None

    def failed(self, error: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning(
                "Redis is unreachable (%s): rate limits count in this process, and answers "
                "stay with the process running them, until it is back",
                error or type(error).__name__,
            )

    def answered(self) -> None:
        if self._down_since is not None:
            down_s = time.monotonic() - self._down_since
            self._down_since = None
            logger.warning("Redis is back, after %.1f s", down_s)


redis_watch = RedisWatch()


class Pauses:
    """Pauses between tries of Redis: growing from `FIRST_PAUSE_S` to `MAX_PAUSE_S`, each
    shortened at random so that the processes of a deployment do not all try at once."""

    def __init__(self) -> None:
        self._next = FIRST_PAUSE_S

    def next(self) -> float:
        pause, self._next = self._next, min(self._next * 2, MAX_PAUSE_S)
        return pause * random.uniform(0.5, 1)

    def reset(self) -> None:
        self._next = FIRST_PAUSE_S
