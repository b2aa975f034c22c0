"""The deployment as shipped: `deploy/nginx.conf` in front of the API, and several API processes
sharing Redis; the page exported as the Dockerfile does, in front of one or two backends. Real
nginx and redis-server (Debian packages), on loopback."""

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from string import Template

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from .conftest import PROJECT_DIR, RESUME_GRACE_S, running_api, running_app
from .fake_upstream import SCRIPTS, streamed_text
from .streams import chat_body, read_events, read_stream, reattach, start_and_drop
from .support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RedisServer,
    free_port,
    listening,
    policy_refusals,
    wait_until,
)
from .test_mcp import TEST_SERVER, servers_file

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SITE_CONF = PROJECT_DIR / "deploy" / "nginx.conf"
# Where `reflex export` leaves the page (the Dockerfile copies it into nginx's image).
EXPORTED_PAGE = PROJECT_DIR / ".web" / "build" / "client"
SLOW = SCRIPTS["fake-slow"]
IMAGE_HOST = "images.example.com"  # allowed by the page's policy, in nginx's and the app's

needs_nginx = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="needs nginx")
needs_redis = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")

# Only what the site file cannot say: where nginx keeps its files when not installed as a service,
# and the media types of the files it serves (as the nginx image's own main file includes them).
MAIN_CONF = Template("""\
daemon off;
$user
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $dir/site.conf;
}
""")


def loopback_site(
    port: int, backends: list[str] | dict[int, list[str]], root: Path, page_headers: Path
) -> str:
    """The shipped site on a loopback port, serving `root` with the headers in `page_headers`,
    and proxying to `backends` (URLs: for every `app:<port>` alike, or by that port) instead of
    the compose service `app`."""

    def servers(app: re.Match) -> str:
        urls = backends if isinstance(backends, list) else backends[int(app[1])]
        return " ".join(f"server {url.removeprefix('http://')};" for url in urls)

    site, upstreams = re.subn(r"server app:(\d+);", servers, SITE_CONF.read_text())
    site, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{port};", site)
    site, roots = re.subn(r"root /usr/share/nginx/html;", f"root {root};", site)
    site, includes = re.subn(r"/etc/nginx/page-headers\.conf", str(page_headers), site)
    assert upstreams and listens == roots == includes == 1, "nginx.conf lacks what this edits"
    return site


@contextmanager
def running_nginx(
    backends: list[str] | dict[int, list[str]],
    workdir: Path,
    edit: Callable[[str], str] = lambda site: site,
    root: Path = EXPORTED_PAGE,
    port: int | None = None,
) -> Iterator[str]:
    """nginx with the shipped site (changed by `edit`) in front of `backends`, on `port` (a free
    one if None); yields its URL."""
    port = port or free_port()
    (workdir / "page-headers.conf").touch()  # none until the page is exported
    site = loopback_site(port, backends, root, workdir / "page-headers.conf")
    (workdir / "site.conf").write_text(edit(site))
    user = "user root;" if os.geteuid() == 0 else ""  # workers need the temp dirs under workdir
    (workdir / "nginx.conf").write_text(MAIN_CONF.substitute(dir=workdir, user=user))
    command = [NGINX, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-e", "stderr"]
    with serving(command, port, stderr=subprocess.PIPE, text=True):
        yield f"http://127.0.0.1:{port}"


def point_nginx_at(backends: dict[int, list[str]], proxy: str, workdir: Path) -> None:
    """Send nginx's site to other backends; connections open now stay where they are."""
    port = int(proxy.rsplit(":", 1)[1])
    site = loopback_site(port, backends, EXPORTED_PAGE, workdir / "page-headers.conf")
    (workdir / "site.conf").write_text(site)
    reload_nginx(workdir)


def reload_nginx(workdir: Path) -> None:
    """nginx reads its files again; connections open now stay where they are."""
    os.kill(int((workdir / "nginx.pid").read_text()), signal.SIGHUP)


def write_page_headers(workdir: Path, **settings: str) -> None:
    """What the Dockerfile writes into nginx's image, for the page exported here."""
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "page-headers"]
    command += ["--page-dir", str(EXPORTED_PAGE)]
    environment = os.environ | {name.upper(): value for name, value in settings.items()}
    done = subprocess.run(
        command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, check=True
    )
    (workdir / "page-headers.conf").write_text(done.stdout)


@contextmanager
def serving(command: list[str], port: int, **popen) -> Iterator[None]:
    """`command` from when it listens on `port`; terminated at the end."""
    process = subprocess.Popen(command, **popen)
    try:
        wait_until(lambda: listening(port), f"{command[0]} listens on {port}", process=process)
        yield
    finally:
        process.terminate()
        if said := [out for out in process.communicate(timeout=10) if out]:
            print(f"{command[0]} said:", *said)  # shown if the test fails


def upstream_progress_at_delta(url: str, upstream, n: int = SLOW.tokens // 4) -> tuple[int, bool]:
    """Stream a slow answer; how many tokens the upstream had sent when the client got the n-th
    delta, and whether it had finished. (Not the first delta: it leaves the API with the
    response headers, which every proxy sends on at once.)"""
    with httpx.stream("POST", f"{url}/api/chat", json=chat_body("openai/fake-slow")) as response:
        assert response.status_code == 200
        deltas = (c for kind, c in read_events(response) if kind == "chunk" and "delta" in c)
        for _ in range(n):
            next(deltas)
        record = upstream.last("fake-slow")
        return record.sent, record.completed


def what_the_page_policy_refuses(url: str) -> list[str]:
    """Open the page in Chromium until it is connected (its model picker says which model
    answers); what its Content-Security-Policy refused meanwhile."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        refused = policy_refusals(page)
        page.goto(url)
        expect(page.get_by_role("combobox", name="Model")).to_contain_text("fake")
        browser.close()
    return refused


def nginx_defaults(site: str) -> str:
    """The stream's location as nginx proxies by default: buffered, over HTTP/1.0."""
    return site.replace(
        "proxy_buffering off;", "proxy_buffering on;\n        proxy_http_version 1.0;"
    )


def nginx_defaults_ignoring_the_app(site: str) -> str:
    """nginx's defaults, deaf to the app's `X-Accel-Buffering: no`, as proxies other than nginx
    (and CDNs) are."""
    return nginx_defaults(site).replace(
        "proxy_buffering on;",
        "proxy_buffering on;\n        proxy_ignore_headers X-Accel-Buffering;",
    )


@needs_nginx
def test_tokens_stream_through_the_shipped_nginx(api, upstream, tmp_path):
    with running_nginx([api], tmp_path) as proxy:
        sent, _ = upstream_progress_at_delta(proxy, upstream)
        with httpx.stream("POST", f"{proxy}/api/chat", json=chat_body("openai/fake-fast")) as r:
            stream = read_stream(r)
    assert sent < SLOW.tokens / 2
    assert stream.done and stream.chunks[-1]["type"] == "finish"


@needs_nginx
def test_stop_through_nginx_still_closes_the_upstream(api, upstream, tmp_path):
    with running_nginx([api], tmp_path) as proxy:
        body = chat_body("openai/fake-slow")
        with httpx.stream("POST", f"{proxy}/api/chat", json=body) as response:
            next(event for event in read_events(response) if event[0] == "chunk")
        record = upstream.last("fake-slow")
        assert record.closed.wait(timeout=5), "the upstream connection was never closed"
    assert not record.completed


@needs_nginx
def test_a_buffering_proxy_holds_the_answer_back_until_it_ends(api, upstream, tmp_path):
    """The caveat in the README, shown: the answer arrives once the model has finished."""
    with running_nginx([api], tmp_path, nginx_defaults_ignoring_the_app) as proxy:
        sent, completed = upstream_progress_at_delta(proxy, upstream)
    assert completed and sent == SLOW.tokens


@needs_nginx
def test_x_accel_buffering_keeps_nginx_defaults_streaming(api, upstream, tmp_path):
    """Why the API sends `X-Accel-Buffering: no`: behind an nginx left at its defaults, the
    answer still streams."""
    with running_nginx([api], tmp_path, nginx_defaults) as proxy:
        sent, _ = upstream_progress_at_delta(proxy, upstream)
    assert sent < SLOW.tokens / 2


@needs_nginx
@needs_redis
def test_replicas_behind_nginx_share_redis(upstream, tmp_path):
    """Two API processes behind the shipped nginx: both serve streams, and with `REDIS_URL`
    they enforce one rate limit together."""
    for name in ("a", "b", "nginx"):
        (tmp_path / name).mkdir()
    with RedisServer() as redis:
        shared = {"redis_url": redis.url, "rate_limit": "6/minute"}
        with (
            running_api(upstream, tmp_path / "a", **shared) as a,
            running_api(upstream, tmp_path / "b", **shared) as b,
            running_nginx([a.url, b.url], tmp_path / "nginx") as proxy,
        ):
            body = chat_body("openai/fake-fast")
            statuses = []
            for _ in range(7):
                with httpx.stream("POST", f"{proxy}/api/chat", json=body) as response:
                    statuses.append(response.status_code)
                    response.read()
            served = [len(server.access_log()) for server in (a, b)]
    assert statuses == [200] * 6 + [429]
    assert all(served), f"nginx sent every stream to one replica: {served}"


@pytest.fixture(scope="module")
def two_replicas(upstream, tmp_path_factory):
    """Two API processes sharing a Redis, and nginx with the shipped site in front of `b`
    only: what one replica started, the other is asked about."""
    tmp_path = tmp_path_factory.mktemp("replicas")
    for name in ("a", "b", "nginx"):
        (tmp_path / name).mkdir()
    with (
        RedisServer() as redis,
        running_api(upstream, tmp_path / "a", redis_url=redis.url) as a,
        running_api(upstream, tmp_path / "b", redis_url=redis.url) as b,
        running_nginx([b.url], tmp_path / "nginx") as proxy,
    ):
        yield a.url, proxy


@needs_nginx
@needs_redis
def test_an_answer_started_on_one_replica_is_resumed_whole_through_the_other(
    two_replicas, upstream
):
    a, b = two_replicas
    chat_id = uuid.uuid4().hex
    before = start_and_drop(a, "openai/fake-slow", chat_id, deltas=3)
    again = reattach(b, chat_id)

    assert again.text == streamed_text(SLOW.tokens)
    assert again.chunks[: len(before.chunks)] == before.chunks
    assert again.types[-1] == "finish" and again.done
    assert upstream.last("fake-slow").completed


@needs_nginx
@needs_redis
def test_a_follower_on_the_other_replica_keeps_the_answer_going_and_stops_it(
    two_replicas, upstream
):
    a, b = two_replicas
    chat_id = uuid.uuid4().hex
    start_and_drop(a, "openai/fake-long", chat_id, deltas=1)
    record = upstream.last("fake-long")
    with ThreadPoolExecutor(1) as pool:
        following = pool.submit(reattach, b, chat_id)
        # Longer than the grace period: the replica running it must see it followed elsewhere.
        assert not record.closed.wait(timeout=RESUME_GRACE_S + 1.5)
        stop = httpx.delete(f"{b}/api/chat/{chat_id}/stream")
        stopped_at = time.monotonic()
        ending = following.result(timeout=10).types[-2:]

    assert stop.status_code == 204
    assert record.closed.wait(timeout=5)
    assert record.closed_at - stopped_at < 1.0
    assert not record.completed
    assert ending == ["text-end", "abort"]


@needs_redis
@pytest.mark.parametrize("shared", [True, False])
def test_the_ui_state_lives_in_redis_when_redis_url_is_set(shared):
    """What lets the UI run in several processes: its state is shared, not per process."""
    code = "from reflex.istate.manager import StateManager; print(type(StateManager.create()))"
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    with RedisServer() as redis:
        if shared:
            env["REDIS_URL"] = redis.url
        created = subprocess.run(
            [sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
        )
    expected = "StateManagerRedis" if shared else "StateManagerDisk"
    assert expected in created.stdout, created.stderr


@pytest.fixture(scope="module")
def exported_page_port() -> int:
    """The port nginx serves the exported page on: the page is built (for half a minute) once,
    told that its backend is there, for every test that serves it."""
    port = free_port()
    export_page(backend_url=f"http://127.0.0.1:{port}")
    return port


def export_page(backend_url: str) -> None:
    """`reflex export`, as the Dockerfile runs it: the page, told where its backend is."""
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "REFLEX_USE_NPM": "1",
        "REFLEX_CHECK_LATEST_VERSION": "0",
        "REFLEX_API_URL": backend_url,
    }
    command = [sys.executable, "-m", "reflex", "export", "--frontend-only", "--no-zip"]
    export = subprocess.run(command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    assert export.returncode == 0, export.stdout[-3000:] + export.stderr[-3000:]


@needs_nginx
@pytest.mark.export
def test_the_exported_page_and_its_backend_run_behind_nginx(upstream, tmp_path, exported_page_port):
    """compose.yaml without Docker: the page exported as the Dockerfile exports it and served by
    nginx, `prod --backend-only` behind it; page, Reflex backend and API share nginx's port."""
    for name in ("nginx", "app"):
        (tmp_path / name).mkdir()
    backend_port, api_port = free_port(), free_port()
    arguments = ["prod", "--backend-only", "--host", "127.0.0.1", "--port", str(backend_port)]
{%- if cookiecutter.framework == "flask" %}
    arguments += ["--api-port", str(api_port)]
{%- else %}
    api_port = backend_port  # the API is mounted into Reflex's backend
{%- endif %}
    backend_url, api_url = (f"http://127.0.0.1:{port}" for port in (backend_port, api_port))
    backends = {8000: [backend_url], 8001: [api_url]}
    with running_nginx(backends, tmp_path / "nginx", port=exported_page_port) as proxy:
        write_page_headers(tmp_path / "nginx", answer_image_hosts=IMAGE_HOST)
        reload_nginx(tmp_path / "nginx")
        wait_until(lambda: "content-security-policy" in httpx.get(proxy).headers, "nginx reloads")
        app_dir = tmp_path / "app"
        with running_app(arguments, api_url, upstream, app_dir, answer_image_hosts=IMAGE_HOST):
            page = httpx.get(f"{proxy}/")
            script = httpx.get(proxy + re.findall(r"/assets/[\w.-]+\.js", page.text)[0])
            ping = httpx.get(f"{proxy}/ping")
            health = httpx.get(f"{proxy}/api/health")
            sent, _ = upstream_progress_at_delta(proxy, upstream)
            refused = what_the_page_policy_refuses(proxy)
    page_env = json.loads((PROJECT_DIR / ".web" / "env.json").read_text())
    assert page_env["EVENT"] == f"{proxy.replace('http', 'ws')}/_event"
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert ping.status_code == 200
    assert health.status_code == 200
    assert sent < SLOW.tokens / 2
    # The headers: nginx's for the page and its files, the app's for what nginx passes on.
    policy = page.headers["content-security-policy"]
    assert f"img-src 'self' data: {IMAGE_HOST};" in policy
    inline = re.findall(r"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", page.text, re.DOTALL)
    for script_text in inline:
        digest = base64.b64encode(hashlib.sha256(script_text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy, f"the page's script {script_text[:80]!r}"
    assert script.headers["content-security-policy"] == policy
    for response in (ping, health):
        passed_on = response.headers["content-security-policy"]
        assert passed_on == "default-src 'none'; frame-ancestors 'none'"
    assert refused == []
    for response in (page, script, ping, health):
        assert response.headers.get_list("x-content-type-options") == ["nosniff"]
        assert response.headers.get_list("referrer-policy") == ["no-referrer"]
        assert response.headers.get_list("x-frame-options") == ["DENY"]

{%- if cookiecutter.framework != "flask" %}


@needs_nginx
@needs_redis
@pytest.mark.export
def test_a_reload_on_the_other_replica_shows_the_running_answer(
    upstream, tmp_path, exported_page_port
):
    """Two replicas sharing Redis behind nginx: an answer starts on one; the page reloads and
    its websocket lands on the other, which follows the answer from its start while the first
    goes on generating it (and saves it)."""
    from playwright.sync_api import expect, sync_playwright

    from .test_browser import CHROMIUM, CHROMIUM_ARGS, answers, live_text, screenshot

    for name in ("a", "b", "nginx"):
        (tmp_path / name).mkdir()
    ports = {name: free_port() for name in ("a", "b")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    full = streamed_text(SCRIPTS["fake-steady"].tokens).strip()
    with (
        RedisServer() as redis,
        running_nginx([urls["a"]], tmp_path / "nginx", port=exported_page_port) as proxy,
    ):
        shared = {
            "redis_url": redis.url,
            "database_url": f"sqlite:///{tmp_path / 'chat.db'}",
            "llm_model": "openai/fake-steady",
        }
        replica = {
            name: running_app(
                ["prod", "--backend-only", "--port", str(ports[name])],
                urls[name],
                upstream,
                tmp_path / name,
                **shared,
            )
            for name in ("a", "b")
        }
        with replica["a"], replica["b"], sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(proxy)
            page.get_by_role("textbox", name="Your question").fill("Count for me")
            page.keyboard.press("Enter")
            page.wait_for_function("document.querySelector('#live-answer')?.innerText.length > 30")
            point_nginx_at({8000: [urls["b"]]}, proxy, tmp_path / "nginx")
            before = live_text(page)
            page.reload()
            # The reloaded draft is empty, and replica a's appends start past its end: the text
            # that shows was sent from its start by replica b, which read it from Redis.
            page.wait_for_function(
                f"document.querySelector('#live-answer')?.innerText.length > {len(before)}"
            )
            shown = live_text(page).removesuffix("Generating…").strip()
            screenshot(page, "reload-on-the-other-replica")
            expect(answers(page)).to_have_count(1, timeout=20_000)
            saved = answers(page).last.inner_text()
            browser.close()
    assert full.startswith(shown) and len(shown) >= len(before.removesuffix("Generating…").strip())
    assert full in saved
    assert upstream.last("fake-steady").completed
{%- endif %}


# The MCP servers' lifetime is the server's: uvicorn and waitress each stop in their own way.


def test_the_api_process_owns_its_stdio_servers_and_ends_them_when_it_stops(upstream, tmp_path):
    """A stdio server is the API's child, in a session of its own (the end of the API's process
    group does not reach it), which outlives its stdin: only the API's shutdown ends it."""
    outlives = {**TEST_SERVER, "args": [*TEST_SERVER["args"], "--outlive-stdin"]}
    servers = servers_file(tmp_path, test=outlives)
    with running_api(upstream, tmp_path, mcp_servers=str(servers)) as server:
        health = f"{server.url}/api/health"
        wait_until(lambda: httpx.get(health).json()["mcp"] == {"test": "ok"}, "connected", 30)
        assert httpx.get(health).json()["status"] == "ok"
        [child] = [pid for pid in children_of(server.process.pid) if "mcp_server" in cmdline(pid)]
    wait_until(lambda: not running(child), "the MCP server ends with the API", 10)


def children_of(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(child) for task in tasks for child in (task / "children").read_text().split()]


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def running(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie waits for a parent to read its
    exit status: here init, as the API that started it has gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
