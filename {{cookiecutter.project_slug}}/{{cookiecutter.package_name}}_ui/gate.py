"""`UI_PASSWORD`: the page asks for it once, then the browser keeps a signed session.

The session is `<expiry>.<signature>`, signed with a key derived from the password by scrypt:
changing the password ends every session, and a stolen cookie costs scrypt per guess to
attack offline. Wrong tries count per client address (in Redis when `REDIS_URL` is set).
"""

import hashlib
import hmac
import logging
import re
import time

from limits import parse

from {{ cookiecutter.package_name }}.access import RateLimiter
from {{ cookiecutter.package_name }}.settings import Settings

logger = logging.getLogger(__name__)

SESSION_S = 30 * 24 * 3600
WRONG_TRIES = parse("5/minute")


class Gate:
    def __init__(self, settings: Settings) -> None:
        password = settings.ui_password.get_secret_value() if settings.ui_password else ""
        if password and not settings.api_token:
            logger.warning(
                "UI_PASSWORD guards the page, but without API_TOKEN anyone can call /api/chat."
            )
        self._password = password.encode()
        self._key = (
            hashlib.scrypt(self._password, salt=b"ui-session", n=2**14, r=8, p=1)
            if password
            else b""
        )
        self._wrong_tries = RateLimiter(settings.redis_url)

    @property
    def is_open(self) -> bool:
        """No password set: everyone is let in."""
        return not self._password

    def admits(self, session: str) -> bool:
        """Whether a session cookie is one this gate signed and still valid."""
        if self.is_open:
            return True
        expiry, _, signature = session.partition(".")
        return (
            re.fullmatch(r"[0-9]{1,12}", expiry) is not None
            and int(expiry) > time.time()
            and hmac.compare_digest(signature.encode(), self._sign(expiry).encode())
        )

    async def enter(self, password: str, address: str) -> str:
        """A new session for the right password; `WrongPassword` with a message otherwise."""
        # Its own key space, so that API requests (RATE_LIMIT) never count as wrong tries.
        if not await self._wrong_tries.test(WRONG_TRIES, "ui-password", address):
            raise WrongPassword("Too many wrong tries. Wait a minute, then try again.")
        # Digests of equal length: comparing the raw strings would reveal the password's length.
        given = hashlib.sha256(password.encode()).digest()
        if not hmac.compare_digest(given, hashlib.sha256(self._password).digest()):
            await self._wrong_tries.hit(WRONG_TRIES, "ui-password", address)
            raise WrongPassword("That is not the password.")
        expiry = str(int(time.time()) + SESSION_S)
        return f"{expiry}.{self._sign(expiry)}"

    def _sign(self, expiry: str) -> str:
        return hmac.new(self._key, expiry.encode(), hashlib.sha256).hexdigest()


class WrongPassword(Exception):
    """The text is user-facing."""
