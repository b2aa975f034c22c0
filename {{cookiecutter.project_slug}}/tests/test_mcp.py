"""Tools from MCP servers (`MCP_SERVERS`), with real servers: the app's own example
(`mcp_example.py`) over stdio, and the tests' (`tests/mcp_server.py`) over stdio and over
Streamable HTTP on loopback. The chat core runs in process, with real LiteLLM against the fake
provider in each wire format, as in test_tools.py.
"""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import tools
from {{ cookiecutter.package_name }}.errors import ApiError
from {{ cookiecutter.package_name }}.mcp_tools import McpConfig
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import FAMILIES, PROJECT_DIR
from .streams import Stream, chat_body, read_frames
from .support import free_port, listening, stop_process_group, wait_until, wait_until_async
from .test_tools import CALLER, ask, core

NOTES = {"command": sys.executable, "args": ["-m", "{{ cookiecutter.package_name }}.mcp_example"]}
TEST_SERVER = {
    "command": sys.executable,
    "args": ["-m", "tests.mcp_server"],
    "cwd": str(PROJECT_DIR),
    "needsApproval": False,  # its tools do no harm, though they do not say so
}


def servers_file(folder: Path, **servers) -> Path:
    path = folder / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


@pytest.fixture(scope="module")
def http_server():
    """`tests/mcp_server.py` over Streamable HTTP on loopback; its URL."""
    port = free_port()
    command = [sys.executable, "-m", "tests.mcp_server", "--http", str(port)]
    process = subprocess.Popen(command, cwd=PROJECT_DIR, start_new_session=True)
    try:
        wait_until(lambda: listening(port), "the MCP server listens", 30, process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process_group(process)


@pytest.fixture(scope="module")
def chat_core(upstream, http_server, tmp_path_factory):
    """The chat core with three servers: the example, and the tests' over stdio and HTTP."""
    folder = tmp_path_factory.mktemp("mcp")
    web = {"url": http_server, "needsApproval": False}
    servers = servers_file(folder, notes=NOTES, test=TEST_SERVER, web=web)
    chat_core = core(upstream, mcp_servers=servers, tool_timeout_s=2)
    wait_until(lambda: all_connected(chat_core), "every MCP server is connected", 30)
    yield chat_core
    chat_core.mcp.close()


def all_connected(chat_core) -> bool:
    return set(chat_core.health()["mcp"].values()) == {"ok"}


@pytest.mark.parametrize("family", FAMILIES)
async def test_an_mcp_tool_is_offered_called_and_answered_in_every_wire_format(
    upstream, chat_core, family
):
    stream = await ask(chat_core, f"{family}/fake-mcp")

    [available] = stream.of_type("tool-input-available")
    assert (available["toolName"], available["input"]) == (
        "mcp__notes__add_note",
        {"text": "buy milk"},
    )
    [output] = stream.of_type("tool-output-available")
    assert "saved" in json.dumps(output["output"])
    assert "saved" in stream.text
    offered = upstream.records[-2].tools
    assert {"calculate", "mcp__notes__delete_note", "mcp__web__echo", "mcp__test__hang"} <= set(
        offered
    )


async def test_a_tool_over_streamable_http_answers_and_its_own_error_reaches_the_model(
    chat_core,
):
    offered = chat_core.tools
    assert "echo: hi" in json.dumps(await offered["mcp__web__echo"].call({"text": "hi"}))
    with pytest.raises(ValueError, match="no such page"):
        await offered["mcp__web__refuse"].call({"reason": "no such page"})


async def test_a_tool_that_hangs_is_stopped_at_the_timeout_and_the_server_still_answers(
    chat_core,
):
    stream = await ask(chat_core, "openai/fake-mcp-hang")

    [error] = stream.of_type("tool-output-error")
    assert "took over 2 s" in error["errorText"]
    assert stream.types[-1] == "finish"
    assert "echo" in json.dumps(await chat_core.tools["mcp__test__echo"].call({"text": "x"}))


async def test_a_server_that_crashes_mid_call_fails_the_call_and_is_restarted(chat_core):
    stream = await ask(chat_core, "openai/fake-mcp-crash")

    [error] = stream.of_type("tool-output-error")
    assert "stopped during the call" in error["errorText"]
    assert stream.types[-1] == "finish"
    assert chat_core.health()["mcp"]["test"] == "unavailable"
    assert "mcp__test__echo" not in chat_core.tools
    await wait_until_async(lambda: all_connected(chat_core), "the server is back", 30)
    assert "echo" in json.dumps(await chat_core.tools["mcp__test__echo"].call({"text": "x"}))


async def test_a_tool_added_by_the_server_is_offered_once_it_says_so(chat_core):
    assert "mcp__test__grown" not in chat_core.tools
    await chat_core.tools["mcp__test__grow"].call({})
    await wait_until_async(lambda: "mcp__test__grown" in chat_core.tools, "the new tool", 10)


async def test_servers_that_are_down_lose_their_tools_and_the_app_answers_anyway(
    upstream, tmp_path
):
    exits = {"command": sys.executable, "args": ["-c", "raise SystemExit(1)"]}
    nobody = {"url": f"http://127.0.0.1:{free_port()}/mcp"}
    servers = servers_file(tmp_path, exits=exits, nobody=nobody, notes=NOTES)
    chat_core = core(upstream, mcp_servers=servers)
    try:
        await wait_until_async(
            lambda: "connecting" not in chat_core.health()["mcp"].values(), "every attempt", 30
        )
        health = chat_core.health()
        assert health["status"] == "degraded"
        assert health["mcp"] == {"exits": "unavailable", "nobody": "unavailable", "notes": "ok"}
        assert [name for name in chat_core.tools if name.startswith("mcp__")] == [
            "mcp__notes__list_notes",
            "mcp__notes__add_note",
            "mcp__notes__delete_note",
        ]
        assert "tok1" in (await ask(chat_core, "openai/fake-fast")).text
    finally:
        chat_core.mcp.close()


@pytest.mark.parametrize(
    ("servers", "named"),
    [
        ({"notes": {"args": ["-m", "x"]}}, r"mcpServers\.notes\.http\.url: Field required"),
        ({"notes": {"command": "x", "url": "http://x"}}, r"notes\.stdio\.url: Extra inputs"),
        ({"old": {"type": "sse", "url": "http://127.0.0.1:9/sse"}}, r"old\.http\.type: .*SSE"),
        ({"a__b": NOTES}, r"mcpServers\.a__b.*may not hold '__'"),
    ],
)
def test_a_mistake_in_the_servers_file_stops_the_start_naming_it(tmp_path, servers, named):
    with pytest.raises(ValueError, match=named):
        Settings(mcp_servers=servers_file(tmp_path, **servers))


def test_an_environment_variable_fills_a_header_and_a_missing_one_is_named(tmp_path, monkeypatch):
    server = {"url": "https://search.example/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}}
    path = servers_file(tmp_path, search=server)
    with pytest.raises(ValueError, match=r"\$\{TOKEN\} is not set"):
        McpConfig.read(path)
    monkeypatch.setenv("TOKEN", 'se"cret')
    assert McpConfig.read(path).servers["search"].headers == {"Authorization": 'Bearer se"cret'}


def test_no_local_tool_may_take_an_mcp_name():
    def mcp__notes__add_note() -> str:
        return ""

    with pytest.raises(ValueError, match="MCP servers' tools"):
        tools.tool(mcp__notes__add_note)


async def notes(chat_core) -> list[str]:
    return (await chat_core.tools["mcp__notes__list_notes"].call({}))["result"]


async def asked_to_delete(chat_core, upstream) -> tuple[Stream, dict]:
    """One note in the notebook, then the model's call to delete it, which waits for
    approval: the stream, and the next request's body as the AI SDK makes it, without the
    decision."""
    for _ in await notes(chat_core):
        await chat_core.tools["mcp__notes__delete_note"].call({"number": 1})
    await chat_core.tools["mcp__notes__add_note"].call({"text": "keep me?"})
    stream = await ask(chat_core, "openai/fake-mcp-delete")
    [call] = stream.of_type("tool-input-available")
    [request] = stream.of_type("tool-approval-request")
    part = {
        "type": "dynamic-tool",
        "toolName": call["toolName"],
        "toolCallId": request["toolCallId"],
        "state": "approval-responded",
        "input": call["input"],
        "approval": {"id": request["approvalId"]},
    }
    message_id = stream.of_type("start")[0]["messageId"]
    assistant = {"id": message_id, "role": "assistant", "parts": [{"type": "step-start"}, part]}
    body = chat_body("openai/fake-mcp-delete", "Delete note 1")
    body["messages"].append(assistant)
    return stream, body


async def decide(chat_core, body: dict, approved: bool, **changes) -> Stream:
    part = body["messages"][-1]["parts"][-1]
    part |= changes
    part["approval"] = part["approval"] | {"approved": approved, "reason": "not that one"}
    frames = await chat_core.open(json.dumps(body).encode(), CALLER)
    try:
        return await read_frames(frames)
    finally:
        await frames.aclose()


async def test_a_destructive_tool_waits_for_approval_then_runs_once_approved(chat_core, upstream):
    stream, body = await asked_to_delete(chat_core, upstream)

    assert stream.types[-3:] == ["tool-approval-request", "finish-step", "finish"]
    assert not stream.of_type("tool-output-available")
    assert await notes(chat_core) == ["1. keep me?"]
    assert not upstream.last("fake-mcp-delete").tool_results  # the model was asked once

    approved = await decide(chat_core, body, approved=True)

    assert approved.of_type("start") == [{"type": "start", "messageId": body["messages"][-1]["id"]}]
    assert approved.types[1:3] == ["tool-output-available", "start-step"]
    assert "Deleted note" in json.dumps(approved.of_type("tool-output-available"))
    assert await notes(chat_core) == []
    [result] = upstream.last("fake-mcp-delete").tool_results
    assert "Deleted note" in result
    assert approved.types[-1] == "finish"

    with pytest.raises(ApiError, match="not pending") as replayed:
        await decide(chat_core, body, approved=True)
    assert replayed.value.status == 409


async def test_a_denied_call_does_not_run_and_the_model_is_told_why(chat_core, upstream):
    _, body = await asked_to_delete(chat_core, upstream)

    denied = await decide(chat_core, body, approved=False)

    call_id = body["messages"][-1]["parts"][-1]["toolCallId"]
    assert denied.of_type("tool-output-denied") == [
        {"type": "tool-output-denied", "toolCallId": call_id}
    ]
    assert denied.types.index("tool-output-denied") < denied.types.index("start-step")
    [result] = upstream.last("fake-mcp-delete").tool_results
    assert "did not allow" in result and "not that one" in result
    assert await notes(chat_core) == ["1. keep me?"]


@pytest.mark.parametrize(
    "forged",
    [
        {"input": {"number": 2}},  # other arguments than those shown
        {"toolName": "mcp__notes__add_note"},  # another tool
        {"approval": {"id": "approval-never-asked"}},
    ],
)
async def test_an_approval_of_a_call_that_was_not_asked_runs_nothing(chat_core, upstream, forged):
    _, body = await asked_to_delete(chat_core, upstream)

    with pytest.raises(ApiError, match="not pending") as refused:
        await decide(chat_core, body, approved=True, **forged)

    assert refused.value.status == 409
    assert await notes(chat_core) == ["1. keep me?"]


async def test_an_approval_after_approval_ttl_s_is_refused(upstream, tmp_path):
    chat_core = core(upstream, mcp_servers=servers_file(tmp_path, notes=NOTES), approval_ttl_s=0.5)
    try:
        await wait_until_async(lambda: all_connected(chat_core), "the notes server", 30)
        _, body = await asked_to_delete(chat_core, upstream)
        await asyncio.sleep(0.6)
        with pytest.raises(ApiError, match="expired"):
            await decide(chat_core, body, approved=True)
        assert await notes(chat_core) == ["1. keep me?"]
    finally:
        chat_core.mcp.close()


async def test_which_tools_wait_for_approval_their_annotations_say_and_the_file_decides(
    chat_core, upstream, tmp_path
):
    def waiting(chat_core) -> set[str]:
        return {name for name, tool in chat_core.tools.items() if tool.needs_approval}

    # The example marks list_notes read-only and add_note not destructive; the tests' server
    # marks nothing, and its entry says `"needsApproval": false`.
    assert waiting(chat_core) == {"mcp__notes__delete_note"}
    chosen = {**NOTES, "needsApproval": ["add_note"]}
    listed = core(upstream, mcp_servers=servers_file(tmp_path, notes=chosen))
    try:
        await wait_until_async(lambda: all_connected(listed), "the notes server", 30)
        assert waiting(listed) == {"mcp__notes__add_note"}
    finally:
        listed.mcp.close()
