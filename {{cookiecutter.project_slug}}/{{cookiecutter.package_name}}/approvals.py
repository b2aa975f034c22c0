"""Tool calls that wait for the user's approval.

A tool marked for it (`@tool(needs_approval=True)`; an MCP server's tool by the server's
`needsApproval` or its own annotations) does not run when the model calls it: the call is kept
here as pending for `APPROVAL_TTL_S`, and the answer ends with a `tool-approval-request`. The
client answers with its next request (the AI SDK's `addToolApprovalResponse`): the same
assistant message, its tool part now `approval-responded`. An approval is taken once, and only
for the call that was asked (its id, its tool, its arguments): a client cannot approve a call
that was never asked, change its arguments, or use an approval twice. A denial needs no check,
since nothing runs.

With `REDIS_URL` set (`SharedApprovals`), pending calls are kept in Redis, so that the answer
goes on in whichever process the approval reaches.
"""

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass

import redis.asyncio
from redis.exceptions import RedisError

from .errors import ApiError
from .redis_link import client_options, redis_watch
from .settings import Settings


@dataclass(frozen=True)
class PendingCall:
    call_id: str
    tool: str
    arguments: str  # `digest` of the arguments the user was shown

    def is_call(self, call_id: str | None, tool: str | None, arguments: object) -> bool:
        return (call_id, tool, digest(arguments)) == (self.call_id, self.tool, self.arguments)


def digest(arguments: object) -> str:
    """The arguments' SHA-256 over canonical JSON. A whole float is written as an integer, as
    JavaScript writes it back."""
    canonical = json.dumps(_whole_floats_as_ints(arguments), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _whole_floats_as_ints(value: object) -> object:
    match value:
        case float() if value.is_integer():
            return int(value)
        case dict():
            return {key: _whole_floats_as_ints(item) for key, item in value.items()}
        case list():
            return [_whole_floats_as_ints(item) for item in value]
    return value


def not_pending(approval_id: str) -> ApiError:
    return ApiError(
        409,
        "approval_not_pending",
        f"The approval {approval_id!r} is not pending: it expired (APPROVAL_TTL_S), was "
        "answered already, or was never asked for this call and these arguments.",
    )


class Approvals:
    """Pending calls in this process's memory; an expired one is forgotten when the next is
    asked."""

    def __init__(self, settings: Settings) -> None:
        self.ttl_s = settings.approval_ttl_s
        self._pending: dict[str, tuple[float, PendingCall]] = {}

    async def ask(self, call_id: str, tool: str, arguments: object) -> str:
        """Keep the call as pending; the approval's id, for the client to answer with."""
        approval_id, call = _new_approval(call_id, tool, arguments)
        self._keep(approval_id, call)
        return approval_id

    async def take(self, approval_id: str) -> PendingCall | None:
        """The pending call, once; None if there is none (any more)."""
        expires_at, call = self._pending.pop(approval_id, (0.0, None))
        return call if expires_at > time.monotonic() else None

    def _keep(self, approval_id: str, call: PendingCall) -> None:
        now = time.monotonic()
        self._pending = {key: kept for key, kept in self._pending.items() if kept[0] > now}
        self._pending[approval_id] = (now + self.ttl_s, call)


class SharedApprovals(Approvals):
    """Pending calls in Redis, expiring there. While Redis is unreachable they are kept in
    this process, and taking one kept elsewhere is refused with 503 (see `redis_link`)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        if settings.redis_url is None:
            raise ValueError("SharedApprovals needs REDIS_URL")
        self._redis_url = settings.redis_url
        self._redis: redis.asyncio.Redis | None = None

    async def ask(self, call_id: str, tool: str, arguments: object) -> str:
        approval_id, call = _new_approval(call_id, tool, arguments)
        try:
            await self._client().set(_key(approval_id), json.dumps(asdict(call)), ex=self._ttl())
        except RedisError as exc:
            redis_watch.failed(exc)
            self._keep(approval_id, call)
        else:
            redis_watch.answered()
        return approval_id

    async def take(self, approval_id: str) -> PendingCall | None:
        if call := await super().take(approval_id):
            return call
        try:
            kept = await self._client().getdel(_key(approval_id))
        except RedisError as exc:
            redis_watch.failed(exc)
            message = "Approvals kept by other processes cannot be reached while Redis is down."
            raise ApiError(503, "redis_unavailable", message, retry_after=2) from None
        redis_watch.answered()
        return PendingCall(**json.loads(kept)) if kept else None

    def _ttl(self) -> int:
        return max(1, round(self.ttl_s))

    def _client(self) -> redis.asyncio.Redis:
        if self._redis is None:
            self._redis = redis.asyncio.from_url(self._redis_url, **client_options())
        return self._redis


def _new_approval(call_id: str, tool: str, arguments: object) -> tuple[str, PendingCall]:
    """A hard-to-guess id for the approval of the call, and the call as it is kept."""
    return f"approval-{secrets.token_urlsafe(16)}", PendingCall(call_id, tool, digest(arguments))


def _key(approval_id: str) -> str:
    return f"{__package__}:approval:{approval_id}"
