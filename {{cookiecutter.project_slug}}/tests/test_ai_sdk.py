"""The real AI SDK (npm `ai`) reads the stream: the oldest strict client and the newest.

Clients before ai 5.0.217 reject any chunk field their schema lacks, so the stream must carry
exactly the fields of that schema; newer ones must keep working too.
"""

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .conftest import RESUME_GRACE_S, running_api
from .fake_upstream import SCRIPTS, reasoning_text, streamed_text
from .streams import chat_body
from .support import VENV_BIN, npm_install
from .test_mcp import NOTES, servers_file

AI_SDK = {"ai-strict": "ai@5.0.216", "ai-latest": "ai@7.0.173"}
CLIENT = Path(__file__).with_name("ai_sdk_client.mjs")
APPROVING_CLIENT = Path(__file__).with_name("ai_sdk_approval.mjs")


@pytest.fixture(scope="session")
def ai_sdk(tmp_path_factory) -> Path:
    """A folder with both AI SDK versions installed and the client script beside them."""
    folder = tmp_path_factory.mktemp("ai-sdk")
    npm_install(folder, *[f"{alias}@npm:{spec}" for alias, spec in AI_SDK.items()])
    shutil.copy(CLIENT, folder)
    shutil.copy(APPROVING_CLIENT, folder)
    return folder


@pytest.fixture(scope="module")
def notes_api(upstream, tmp_path_factory):
    """An API whose tools include the example MCP server's notebook."""
    folder = tmp_path_factory.mktemp("notes-api")
    with running_api(upstream, folder, mcp_servers=str(servers_file(folder, notes=NOTES))) as api:
        yield api.url


def read_with_ai_sdk(
    ai_sdk: Path, package: str, api: str, model: str, mode: str = "", client: Path = CLIENT
) -> dict:
    """The answer as the AI SDK assembles it; `mode` is one of the client's (stop, drop,
    resume; approve, deny)."""
    node = shutil.which("node", path=str(VENV_BIN)) or "node"
    command = [node, client.name, package, f"{api}/api/chat", model]
    done = subprocess.run(
        [*command, *([mode] if mode else [])],
        cwd=ai_sdk,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def parts_text(message: dict, kind: str) -> str:
    return "".join(part.get("text", "") for part in message["parts"] if part["type"] == kind)


package = pytest.mark.parametrize("package", list(AI_SDK))


@package
def test_the_ai_sdk_assembles_the_answer(ai_sdk, api, package):
    result = read_with_ai_sdk(ai_sdk, package, api, "openai/fake-fast")
    assert result["errors"] == []
    assert parts_text(result["message"], "text") == streamed_text(SCRIPTS["fake-fast"].tokens)
    assert result["message"]["metadata"]["model"] == "openai/fake-fast"


@package
def test_the_ai_sdk_sends_a_file_and_gets_the_answer(ai_sdk, api, upstream, package):
    result = read_with_ai_sdk(ai_sdk, package, api, "openai/fake-fast", mode="file")
    assert result["errors"] == []
    assert parts_text(result["message"], "text") == streamed_text(SCRIPTS["fake-fast"].tokens)
    question, _ = upstream.last("fake-fast").question()
    assert '<file name="notes.txt">\nThe meeting is at noon.\n' in question


@package
def test_the_ai_sdk_keeps_reasoning_apart(ai_sdk, api, package):
    result = read_with_ai_sdk(ai_sdk, package, api, "anthropic/fake-think")
    assert result["errors"] == []
    message = result["message"]
    assert parts_text(message, "reasoning") == reasoning_text(SCRIPTS["fake-think"].reasoning)
    assert parts_text(message, "text") == streamed_text(SCRIPTS["fake-think"].tokens)


@package
def test_the_ai_sdk_shows_the_tool_call_with_its_output_then_the_answer(ai_sdk, api, package):
    result = read_with_ai_sdk(ai_sdk, package, api, "anthropic/fake-tool")
    assert result["errors"] == []
    tool, text = [part for part in result["message"]["parts"] if part["type"] != "step-start"]
    assert tool["type"] == "tool-calculate"
    assert tool["state"] == "output-available"
    assert (tool["input"], tool["output"]) == ({"expression": "6*7"}, 42)
    assert text["type"] == "text"
    assert "42" in text["text"]


@package
def test_the_ai_sdk_keeps_the_partial_text_and_reports_the_error(ai_sdk, api, package):
    result = read_with_ai_sdk(ai_sdk, package, api, "openai/fake-fail-mid")
    partial = streamed_text(SCRIPTS["fake-fail-mid"].fail_after)
    assert parts_text(result["message"], "text") == partial
    assert len(result["errors"]) == 1
    assert "upstream exploded" not in result["errors"][0]


@package
def test_the_ai_sdk_stop_closes_the_provider_connection(ai_sdk, api, upstream, package):
    result = read_with_ai_sdk(ai_sdk, package, api, "openai/fake-slow", mode="stop")
    record = upstream.last("fake-slow")
    assert record.closed.wait(timeout=5)
    assert not record.completed
    assert result["errors"] == []


@package
def test_the_ai_sdk_reconnects_to_a_dropped_answer_and_gets_it_whole_once(
    ai_sdk, api, upstream, package
):
    result = read_with_ai_sdk(ai_sdk, package, api, "openai/fake-slow", mode="resume")
    assert result["errors"] == []
    assert parts_text(result["message"], "text") == streamed_text(SCRIPTS["fake-slow"].tokens)
    assert upstream.last("fake-slow").completed


@package
def test_a_dropped_answer_nobody_resumes_stops_within_the_grace_period(
    ai_sdk, api, upstream, package
):
    read_with_ai_sdk(ai_sdk, package, api, "openai/fake-long", mode="drop")
    dropped_at = time.monotonic()  # a moment after the client dropped: it has exited
    record = upstream.last("fake-long")
    assert record.closed.wait(timeout=RESUME_GRACE_S + 1)
    assert not record.completed
    assert record.closed_at - dropped_at > RESUME_GRACE_S - 1  # it was kept going meanwhile


def note_written(api: str) -> None:
    """The notebook's first note, written through the model's own call (add_note asks no
    approval)."""
    httpx.post(f"{api}/api/chat", json=chat_body("openai/fake-mcp"), timeout=30).raise_for_status()


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_the_ai_sdk_approves_or_denies_a_call_and_the_answer_goes_on(
    ai_sdk, notes_api, upstream, decision
):
    note_written(notes_api)
    result = read_with_ai_sdk(
        ai_sdk, "ai-latest", notes_api, "openai/fake-mcp-delete", decision, APPROVING_CLIENT
    )

    assert result["errors"] == []
    assert result["requests"] == 2  # the question, then the decision: no more
    _question, answer = result["messages"]
    [call] = [part for part in answer["parts"] if part.get("toolCallId")]
    assert call["approval"]["approved"] is (decision == "approve")
    if decision == "approve":
        assert call["state"] == "output-available"
        assert "Deleted note 1" in json.dumps(call["output"])
    else:
        assert call["state"] == "output-denied"
        assert "did not allow" in upstream.last("fake-mcp-delete").tool_results[0]
    assert answer["parts"][-1]["type"] == "text"  # the model's answer, in the same message


def test_an_ai_sdk_5_client_cannot_take_part_in_approval(ai_sdk, notes_api):
    """ai@5 knows no approval chunks, and its strict schema stops at the first one."""
    result = read_with_ai_sdk(ai_sdk, "ai-strict", notes_api, "openai/fake-mcp-delete")
    [error] = result["errors"]
    assert "tool-approval-request" in error
