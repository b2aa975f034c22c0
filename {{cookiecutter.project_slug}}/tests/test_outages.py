"""Redis and the history's database go away under a running app and come back: a real
redis-server and a real PostgreSQL, stopped and started again on the same port, with the
default per-client limits. While one is away, every request gets a clear status and nothing
already saved is lost; within seconds of its return everything works again, with no restart.
"""

import asyncio
import shutil
import time
import uuid

import httpx
import pytest
import redis

from {{ cookiecutter.package_name }}.resumable import STOPS

from .conftest import running_api
from .streams import post_chat, read_events, resumable_body
from .support import (
    PostgresServer,
    RedisServer,
    new_postgres_schema,
    postgres_bin_dir,
    wait_until,
    wait_until_async,
)
from .test_ui_state import SLOW_TEXT, a_browser, page_settings, saved_messages

# How soon after Redis or the database is back everything works again.
RECOVERY_S = 5
DEFAULT_LIMITS = {"rate_limit": "30/minute", "max_streams_per_client": "4"}
needs_redis = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")


def health(url: str) -> dict:
    response = httpx.get(f"{url}/api/health")
    assert response.status_code == 200  # a degraded process still answers: no replica is dropped
    return response.json()


def redis_outages_logged(log: str) -> tuple[int, int]:
    """How many times the app said Redis went away, and came back."""
    return log.count("Redis is unreachable"), log.count("Redis is back")


@needs_redis
def test_redis_down_while_idle_costs_no_answer_and_is_forgotten_once_it_is_back(upstream, tmp_path):
    with (
        RedisServer() as server,
        running_api(upstream, tmp_path, redis_url=server.url, **DEFAULT_LIMITS) as api,
    ):
        post_chat(api.url, "openai/fake-fast")  # a rate limit counted in Redis
        assert health(api.url)["redis"] == "ok"
        server.kill()

        # More answers than a client may stream at once, one after the other: each is served
        # (counted in this process) and gives its stream back; none is a 500 or a reset.
        for _ in range(int(DEFAULT_LIMITS["max_streams_per_client"]) + 2):
            assert post_chat(api.url, "openai/fake-fast").done
        # What only Redis knows, an answer running in another process, is a clear 503.
        absent = uuid.uuid4().hex
        for method in ("GET", "DELETE"):
            response = httpx.request(method, f"{api.url}/api/chat/{absent}/stream")
            assert response.status_code == 503, response.text
            assert response.json()["error"]["type"] == "redis_unavailable"
            assert response.headers["retry-after"] == "2"
        assert health(api.url) | {"redis": "unreachable", "status": "degraded"} == health(api.url)

        server.start()
        wait_until(lambda: health(api.url)["redis"] == "ok", "Redis is seen back", RECOVERY_S)
        # The counts are in Redis again (the limiter tries it again after its own pause), and
        # resumable answers are copied there again.
        shared = redis.Redis.from_url(server.url)

        def counted_in_redis() -> bool:
            post_chat(api.url, "openai/fake-fast")
            return bool(shared.keys("LIMITS:*"))

        wait_until(counted_in_redis, "a rate limit counted in Redis", RECOVERY_S, interval_s=0.5)
        chat_id = uuid.uuid4().hex
        with httpx.stream(
            "POST", f"{api.url}/api/chat", json=resumable_body("openai/fake-fast", chat_id)
        ) as response:
            assert [kind for kind, _ in read_events(response)][-1] == "done"
        wait_until(
            lambda: shared.exists(f"{{ cookiecutter.package_name }}:answer:{chat_id}"),
            "the answer is copied to Redis",
            RECOVERY_S,
        )
        assert redis_outages_logged(api.log.read_text()) == (1, 1)


@needs_redis
def test_redis_killed_mid_answer_the_answer_goes_on_and_stops_reach_it_once_redis_is_back(
    upstream, tmp_path
):
    with (
        RedisServer() as server,
        running_api(upstream, tmp_path, redis_url=server.url, **DEFAULT_LIMITS) as api,
    ):
        body = resumable_body("openai/fake-steady", uuid.uuid4().hex)  # 100 tokens in 5 s
        with httpx.stream("POST", f"{api.url}/api/chat", json=body, timeout=30) as response:
            chunks = []
            for _, chunk in read_events(response):
                chunks.append(chunk)
                if len(chunks) == 5:
                    server.kill()
        assert chunks[-2]["type"] == "finish"  # then [DONE]: the answer never needed Redis

        server.start()
        # Another process stops an answer of this one through Redis: the listener for stops
        # has subscribed again.
        chat_id = uuid.uuid4().hex
        body = resumable_body("openai/fake-steady", chat_id)
        shared = redis.Redis.from_url(server.url)
        started = time.monotonic()
        with httpx.stream("POST", f"{api.url}/api/chat", json=body, timeout=30) as response:
            kinds = []
            for kind, chunk in read_events(response):
                kinds.append(chunk["type"] if chunk else kind)
                if kinds.count("text-delta") == 3:
                    wait_until(lambda: shared.pubsub_numsub(STOPS)[0][1], "a listener", RECOVERY_S)
                    shared.publish(STOPS, chat_id)
        assert kinds[-2:] == ["abort", "done"]
        assert time.monotonic() - started < RECOVERY_S + 3  # not its 5 s to the end
        assert redis_outages_logged(api.log.read_text()) == (1, 1)


@pytest.fixture
def postgres():
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("needs PostgreSQL's server programs (apt install postgresql)")
    with PostgresServer(bin_dir) as server:
        yield server


async def test_the_page_says_when_postgres_is_down_loses_nothing_and_recovers(
    upstream, tmp_path, postgres
):
    from {{ cookiecutter.package_name }}_ui.services import Services, use

    settings = page_settings(upstream, tmp_path, database_url=new_postgres_schema(postgres.url))
    with use(Services(settings)):
        async with a_browser() as browser:
            await browser.send("send", form_data={"question": "First"})
            await browser.wait_for("streaming", lambda streaming: streaming is False)
            await browser.send("set_model", model="openai/fake-slow")
            pushed = len(browser.draft_pushes())
            await browser.send("send", form_data={"question": "Count"})
            await wait_until_async(
                lambda: browser.draft_pushes()[pushed + 1 :], "the answer streams", 15
            )
            saved = [(m.role, m.content, m.status) for m in saved_messages(browser)]

            # The database goes away mid-answer: the answer goes on, and stays on the page.
            await asyncio.to_thread(postgres.stop)
            await browser.wait_for("messages", lambda messages: messages[-1].content == SLOW_TEXT)
            assert browser.values("messages")[-1][-1].status == "done"
            assert browser.values("history_notice")[-1].startswith("Your conversations")
            # An answer that cannot be saved would be gone on the next reload: the question
            # is not asked; the page puts it back in the composer.
            await browser.handle("send", form_data={"question": "Second"})
            assert browser.events[-1].payload["value"] == "Second"
            assert browser.values("streaming")[-1] is False
            await browser.handle("load")  # a reload: the page shows, and says why it is empty
            assert browser.values("loaded")[-1] is True
            assert browser.errors == []

            await asyncio.to_thread(postgres.start)
            started = time.monotonic()
            await browser.handle("send", form_data={"question": "Third"})
            await browser.wait_for("messages", lambda messages: messages[-1].content == SLOW_TEXT)
            assert time.monotonic() - started < RECOVERY_S
            assert browser.values("history_notice")[-1] == ""
            after = [(m.role, m.content, m.status) for m in saved_messages(browser)]
            assert after == [
                *saved,  # nothing saved before is lost
                ("user", "Third", "done"),
                ("assistant", SLOW_TEXT, "done"),
            ]
