"""The security headers of every response, and the Content-Security-Policy of the page.

An answer is text a model wrote, and a model can be made to write anything (prompt
injection). The page renders it as data (`{{ cookiecutter.package_name }}_ui/untrusted.jsx`); these headers tell
the browser, as a second line, what the page may run, load and be framed by. `SecurityHeaders`
sends them from the app; `python -m {{ cookiecutter.package_name }} page-headers` writes them for nginx, which
serves the exported page itself.
"""

import base64
import gzip
import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any

from .settings import Settings

HSTS = "max-age=63072000; includeSubDomains"
# Inline scripts, not those loaded from a file (`src`), which 'self' allows.
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", re.DOTALL | re.I)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]  # each framework types its own parameters


def inline_scripts(html: bytes) -> list[bytes]:
    return INLINE_SCRIPT.findall(html)


def page_policy(settings: Settings, scripts: Iterable[bytes]) -> str:
    """The page's policy: its own scripts only (files from its origin, and the inline ones it
    was served with, by hash), its own connections only, images from `ANSWER_IMAGE_HOSTS`."""
    hashes = sorted({f"'sha256-{_digest(script)}'" for script in scripts})
    return "; ".join(
        [
            "default-src 'self'",
            # Reflex runs the scripts its backend sends (the streamed text, for one) with eval.
            " ".join(["script-src 'self' 'unsafe-eval'", *hashes]),
            # Radix and Emotion style the page at run time.
            "style-src 'self' 'unsafe-inline'",
            " ".join(["img-src 'self' data:", *settings.answer_image_hosts]),
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            _frame_ancestors(settings),
        ]
    )


def exported_page_policy(settings: Settings, page_dir: Path) -> str:
    """One policy for every page of an export, allowing the inline scripts of each."""
    pages = list(page_dir.rglob("*.html"))
    if not pages:
        raise FileNotFoundError(f"no exported page in {page_dir} (run `reflex export` first)")
    return page_policy(settings, [s for page in pages for s in inline_scripts(page.read_bytes())])


def nginx_page_headers(settings: Settings, page_dir: Path) -> str:
    """`add_header` lines for nginx serving the exported page: what the app sends with it."""
    policy = exported_page_policy(settings, page_dir)
    headers = [*common_headers(settings, https=False), ("content-security-policy", policy)]
    return "".join(f'add_header {name} "{value}" always;\n' for name, value in headers)


def common_headers(settings: Settings, https: bool) -> list[tuple[str, str]]:
    """What every response carries: no guessing of content types (an answer is never run as a
    script or page), no Referer for other sites, no framing unless allowed, and over HTTPS
    the promise to use nothing else."""
    headers = [("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer")]
    if not settings.frame_ancestors:
        headers.append(("x-frame-options", "DENY"))  # for browsers before CSP level 2
    if https:
        headers.append(("strict-transport-security", HSTS))
    return headers


def headers_for(settings: Settings, https: bool, content_type: str) -> list[tuple[str, str]]:
    """The headers of any response but the page. What is not HTML (JSON, streams, scripts,
    images) may load nothing if a browser opens it as a document; other HTML (an API's own
    docs, which load their scripts from a CDN) is only kept out of frames."""
    policy = _frame_ancestors(settings)
    if not content_type.startswith("text/html"):
        policy = f"default-src 'none'; {policy}"
    return [*common_headers(settings, https), ("content-security-policy", policy)]


class SecurityHeaders:
    """ASGI middleware: `headers_for` each response, and with `page=True` the page's own
    policy on its HTML (outside `/api/`: the page's build), allowing the inline scripts it has.
    That HTML is read whole for it; it is small."""

    def __init__(self, app: ASGIApp, settings: Settings, page: bool) -> None:
        self.app = app
        self.settings = settings
        self.page = page

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        serves_page = self.page and not scope["path"].startswith("/api/")
        head = serves_page and scope["method"] == "HEAD"
        if head:  # asked for as GET, so that the policy names the page's scripts; no body sent
            scope = {**scope, "method": "GET"}
        held: Message = {}  # the page's response start, until its body is whole
        body = bytearray()

        async def send_with_headers(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                content_type = (_header(message, b"content-type") or b"").decode("latin-1")
                if message["status"] == 304:
                    # No body, no type: the browser keeps the cached response's policy,
                    # unless this one names another.
                    message = _with(message, common_headers(self.settings, https))
                elif serves_page and content_type.startswith("text/html"):
                    held = message
                    return
                else:
                    message = _with(message, headers_for(self.settings, https, content_type))
            elif held:
                if message["type"] == "http.response.pathsend":  # granian sends the file itself
                    body.extend(Path(message["path"]).read_bytes())
                else:
                    body.extend(message.get("body", b""))
                    if message.get("more_body"):
                        return
                gzipped = _header(held, b"content-encoding") == b"gzip"
                scripts = inline_scripts(gzip.decompress(body) if gzipped else bytes(body))
                policy = ("content-security-policy", page_policy(self.settings, scripts))
                await send(_with(held, [*common_headers(self.settings, https), policy]))
                message = {"type": "http.response.body", "body": bytes(body)}
            if head and message["type"] != "http.response.start":
                more = bool(message.get("more_body"))
                message = {"type": "http.response.body", "more_body": more}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _frame_ancestors(settings: Settings) -> str:
    return " ".join(["frame-ancestors", *(settings.frame_ancestors or ["'none'"])])


def _digest(script: bytes) -> str:
    return base64.b64encode(hashlib.sha256(script).digest()).decode()


def _header(message: Message, name: bytes) -> bytes | None:
    return next((v for k, v in message.get("headers", []) if k.lower() == name), None)


def _with(message: Message, headers: list[tuple[str, str]]) -> Message:
    """The response start `message` with `headers`, replacing any it had of the same names."""
    ours = {name.encode() for name, _ in headers}
    kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in ours]
    return {**message, "headers": [*kept, *((k.encode(), v.encode()) for k, v in headers)]}
