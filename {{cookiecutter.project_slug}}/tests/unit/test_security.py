"""The security headers, through the ASGI middleware as a server drives it (httpx's
`ASGITransport`), and the policy nginx is given for the exported page."""

import base64
import gzip
import hashlib

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from {{ cookiecutter.package_name }}.security import SecurityHeaders, nginx_page_headers
from {{ cookiecutter.package_name }}.settings import Settings

PAGE = b'<html><script>theme()</script><script type="module" src="/app.js"></script>'
PAGE += b"<body><script>\nhydrate({});\n</script></body></html>"
API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def sha256(script: bytes) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"


def backend() -> Starlette:
    """What Reflex's backend serves: the page (precompressed, as its static files are), JSON,
    and a page the browser has cached."""

    def page(request):
        return Response(
            gzip.compress(PAGE),
            media_type="text/html",
            headers={"content-encoding": "gzip", "content-security-policy": "upstream's own"},
        )

    return Starlette(
        routes=[
            Route("/", page),
            Route("/ping", lambda request: JSONResponse("pong")),
            Route("/api/docs", lambda request: HTMLResponse("<script>fromCdn()</script>")),
            Route("/cached", lambda request: Response(status_code=304)),
        ]
    )


def client(page: bool = True, scheme: str = "http", **settings) -> httpx.AsyncClient:
    app = SecurityHeaders(backend(), Settings(**settings), page=page)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"{scheme}://app")


async def test_the_page_may_run_exactly_its_own_inline_scripts_and_files_from_its_origin():
    async with client() as app:
        page = await app.get("/")
    assert page.headers["content-encoding"] == "gzip"
    assert page.content == PAGE  # undamaged (httpx decompresses it)
    [policy] = page.headers.get_list("content-security-policy")
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    hashes = " ".join(sorted([sha256(b"theme()"), sha256(b"\nhydrate({});\n")]))
    assert directives["script-src"] == f"'self' 'unsafe-eval' {hashes}"
    assert directives["img-src"] == "'self' data:"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in page.headers


async def test_a_head_request_gets_the_page_s_own_policy_and_no_body():
    async with client() as app:
        get, head, ping = await app.get("/"), await app.head("/"), await app.head("/ping")
    assert head.headers["content-security-policy"] == get.headers["content-security-policy"]
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.content == ping.content == b""
    assert ping.headers["content-security-policy"] == API_POLICY


async def test_what_is_not_the_page_may_load_nothing_and_other_html_is_only_kept_out_of_frames():
    """HTML under /api/ (an API's docs) is not the page: its inline scripts get no hashes."""
    async with client() as app:
        ping, mounted_docs = await app.get("/ping"), await app.get("/api/docs")
    async with client(page=False) as api:
        docs = await api.get("/api/docs")
    assert ping.headers["content-security-policy"] == API_POLICY
    for html in (mounted_docs, docs):
        assert html.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert html.headers["x-content-type-options"] == "nosniff"


async def test_a_cached_page_keeps_its_policy():
    """A 304 has no type; a policy on it would replace the cached page's own."""
    async with client() as app:
        cached = await app.get("/cached")
    assert cached.status_code == 304
    assert "content-security-policy" not in cached.headers
    assert cached.headers["x-content-type-options"] == "nosniff"


async def test_settings_widen_images_and_framing_and_https_adds_hsts():
    settings = {
        "answer_image_hosts": ["images.example.com", "*.cdn.example"],
        "frame_ancestors": ["https://portal.example.com"],
    }
    async with client(scheme="https", **settings) as app:
        page, ping = await app.get("/"), await app.get("/ping")
    policy = page.headers["content-security-policy"]
    assert "img-src 'self' data: images.example.com *.cdn.example;" in policy
    assert policy.endswith("frame-ancestors https://portal.example.com")
    assert ping.headers["content-security-policy"].endswith("https://portal.example.com")
    for response in (page, ping):
        assert "x-frame-options" not in response.headers
        assert response.headers["strict-transport-security"].startswith("max-age=63072000")


async def test_a_page_the_server_sends_as_a_file_gets_its_policy_too(tmp_path):
    """granian sends files itself (`http.response.pathsend`), as Reflex's backend does in prod."""
    (tmp_path / "index.html").write_bytes(PAGE)

    async def app(scope, receive, send):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send({"type": "http.response.pathsend", "path": str(tmp_path / "index.html")})

    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "extensions": {"http.response.pathsend": {}},
    }
    await SecurityHeaders(app, Settings(), page=True)(scope, None, send)
    start, body = sent
    assert sha256(b"theme()") in dict(start["headers"])[b"content-security-policy"].decode()
    assert body == {"type": "http.response.body", "body": PAGE}


def test_nginx_gets_one_policy_for_every_exported_page(tmp_path):
    (tmp_path / "index.html").write_bytes(PAGE)
    (tmp_path / "404.html").write_bytes(b"<script>notFound()</script>")
    lines = nginx_page_headers(Settings(answer_image_hosts=["images.example.com"]), tmp_path)
    [policy] = [line for line in lines.splitlines() if "content-security-policy" in line]
    for script in (b"theme()", b"\nhydrate({});\n", b"notFound()"):
        assert sha256(script) in policy
    assert "img-src 'self' data: images.example.com;" in policy
    assert policy.endswith('" always;')
    assert 'add_header x-content-type-options "nosniff" always;' in lines


def test_no_exported_page_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="reflex export"):
        nginx_page_headers(Settings(), tmp_path)
