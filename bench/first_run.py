"""A new user's first minutes, timed: from `uvx cookiecutter … --no-input` to the first token of
the embedded model's answer on the page, then a second start of the same project.

    uv run python -m bench.first_run            # warm uv and npm caches (the machine's own)
    uv run python -m bench.first_run --cold     # empty caches: every package downloaded

Steps, each timed from the start: bake the default project into a temporary folder; run the
README's `uv run python -m stream_chat dev` (which installs the virtualenv, then Reflex installs
the page's npm packages and compiles it); open the page in headless Chromium once it is served,
ask the demo question and wait for the first token to show. Then Ctrl-C (SIGINT to the process
group, as a terminal sends it), the same command again, and the same question. The app's output
is checked for tracebacks after each Ctrl-C. Results go to bench/results/first_run.json.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.support import free_port, running, serves, wait_until

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
QUESTION = "What is the capital of France?"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="empty uv and npm caches")
    parser.add_argument("--out", type=Path, default=TEMPLATE_DIR / "bench" / "results")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="first-run-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT")}
        if options.cold:
            env |= {"UV_CACHE_DIR": str(work / "uv-cache"), "npm_config_cache": str(work / "npm")}
        started = time.monotonic()
        run(["uvx", "cookiecutter", str(TEMPLATE_DIR), "--no-input"], work, env)
        project = work / "stream-chat"
        figures = {"bake_s": time.monotonic() - started}
        figures |= {f"first_start_{k}": v for k, v in start_and_ask(project, env, started).items()}
        figures |= {f"second_start_{k}": v for k, v in start_and_ask(project, env).items()}

    figures = {k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()}
    figures["cache"] = "cold" if options.cold else "warm"
    options.out.mkdir(parents=True, exist_ok=True)
    results_file = options.out / "first_run.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    results[figures["cache"]] = figures
    results_file.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


def start_and_ask(project: Path, env: dict, started: float | None = None) -> dict:
    """Start `dev`, ask once the page is served, Ctrl-C; the times since `started` (this call's
    start by default), the answer's first words and whether Ctrl-C printed a traceback."""
    started = started or time.monotonic()
    port = free_port()
    log = project / f"dev-{port}.log"
    command = ["uv", "run", "python", "-m", "stream_chat", "dev", "--port", str(port)]
    # SIGINT to the process group, as a terminal's Ctrl-C sends it.
    with running(command, project, log, env, stop_signal=signal.SIGINT) as app:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: serves(url), "the page is served", 900, app.process, 0.2)
        page_s = time.monotonic() - started
        answer = first_token_on_the_page(url)
        token_s = time.monotonic() - started
    return {
        "page_served_s": page_s,
        "first_token_s": token_s,
        "answer_start": answer,
        "traceback_on_ctrl_c": "Traceback" in log.read_text(),
    }


def first_token_on_the_page(url: str) -> str:
    """Ask the demo question; return the answer's text when its first token shows."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        # The model picker fills in once the page's websocket has its state.
        expect(page.get_by_role("combobox", name="Model")).to_contain_text(
            "smollm2", timeout=60_000
        )
        page.get_by_role("textbox", name="Your question").fill(QUESTION)
        page.keyboard.press("Enter")
        deadline = time.monotonic() + 120
        while not (text := live_answer(page)):
            assert time.monotonic() < deadline, "no token within 120 s"
            page.wait_for_timeout(20)
        page.wait_for_timeout(1500)
        text = live_answer(page) or page.locator(".answer").last.inner_text()
        browser.close()
    return text[:80]


def live_answer(page) -> str:
    text = page.evaluate("document.querySelector('#live-answer')?.innerText ?? ''")
    return text.removesuffix("Generating…").strip()


def run(command: list[str], cwd: Path, env: dict) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{command} failed:\n{done.stdout}\n{done.stderr}")


if __name__ == "__main__":
    main()
