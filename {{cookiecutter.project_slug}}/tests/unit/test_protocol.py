"""The wire format: request bodies parsed or refused, chunks framed as the AI SDK reads them."""

import json

import pytest

from {{ cookiecutter.package_name }}.errors import ApiError
from {{ cookiecutter.package_name }}.protocol import (
    HEARTBEAT,
    StreamCut,
    UIMessageStream,
    parse_chat_request,
    read_body,
    sse,
    sse_frames,
)


def test_both_message_shapes_give_the_same_text_and_files_join_their_message():
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "id": "m1",
                "parts": [
                    {"type": "text", "text": "Hello "},
                    {"type": "file", "url": "data:,x"},
                    {"type": "text", "text": "there"},
                ],
            },
        ],
        "model": "openai/gpt-4o-mini",
        "trigger": "submit-message",
    }
    request = parse_chat_request(json.dumps(body).encode())
    assert request.model == "openai/gpt-4o-mini"
    assert request.llm_messages(lambda part: {"file": part.url}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hello there"}, {"file": "data:,x"}]},
    ]


def test_an_answer_with_tool_calls_goes_back_to_the_model_step_by_step():
    """As the AI SDK sends an answer back with the next question (`useChat`'s history)."""
    answer = {
        "role": "assistant",
        "parts": [
            {"type": "step-start"},
            {"type": "text", "text": "Let me compute."},
            {
                "type": "tool-calculate",
                "toolCallId": "call_1",
                "state": "output-available",
                "input": {"expression": "6*7"},
                "output": 42,
            },
            {
                "type": "dynamic-tool",
                "toolName": "current_time",
                "toolCallId": "call_2",
                "state": "output-error",
                "input": {"timezone": "Mars"},
                "errorText": "unknown time zone",
            },
            {"type": "tool-calculate", "toolCallId": "call_3", "state": "input-available"},
            {"type": "step-start"},
            {"type": "text", "text": "It is 42."},
        ],
    }
    request = parse_chat_request(json.dumps({"messages": [answer]}).encode())

    def call(call_id: str, name: str, arguments: dict) -> dict:
        function = {"name": name, "arguments": json.dumps(arguments)}
        return {"id": call_id, "type": "function", "function": function}

    assert request.llm_messages(dict) == [
        {
            "role": "assistant",
            "content": "Let me compute.",
            "tool_calls": [
                call("call_1", "calculate", {"expression": "6*7"}),
                call("call_2", "current_time", {"timezone": "Mars"}),
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "tool", "tool_call_id": "call_2", "content": "Error: unknown time zone"},
        {"role": "assistant", "content": "It is 42."},
    ]
    assert request.messages[0].text() == "Let me compute.It is 42."


RESUMABLE = b'{"messages": [{"role": "user", "content": "Hi"}], %s}'


def test_a_resumable_request_names_its_chat():
    body = RESUMABLE % b'"id": "Hx8kQ2vLm9TzR4wB", "resumable": true'
    request = parse_chat_request(body)
    assert (request.id, request.resumable) == ("Hx8kQ2vLm9TzR4wB", True)


@pytest.mark.parametrize(
    ("body", "status", "type", "message"),
    [
        (b"{not json", 400, "invalid_json", "The body is not valid JSON"),
        (b"\xff\xfe", 400, "invalid_json", "The body is not valid JSON"),
        (b'{"messages": []}', 422, "invalid_request", "messages: List should have at least 1"),
        (b'{"messages": [{"role": "tool"}]}', 422, "invalid_request", "messages.0.role: Input"),
        (b"[]", 422, "invalid_request", "body: Input should be a valid dictionary"),
        (RESUMABLE % b'"resumable": true', 422, "invalid_request", "resumable: Value error, a"),
        (RESUMABLE % b'"id": "short", "resumable": true', 422, "invalid_request", "resumable:"),
        (RESUMABLE % b'"id": "../../x/y/z/x/y/z/", "resumable": 1', 422, "invalid_request", "r"),
    ],
)
def test_a_bad_body_is_refused_naming_where(body, status, type, message):
    with pytest.raises(ApiError) as refused:
        parse_chat_request(body)
    assert (refused.value.status, refused.value.type) == (status, type)
    assert refused.value.message.startswith(message)


async def pieces(*chunks: bytes):
    for chunk in chunks:
        yield chunk


async def test_a_body_within_the_limit_is_read_whole():
    assert await read_body(pieces(b"ab", b"cd"), limit=4, content_length="4") == b"abcd"


@pytest.mark.parametrize("content_length", ["5", None, "3", "not a number"])
async def test_a_body_over_the_limit_is_refused_whatever_its_content_length_says(content_length):
    with pytest.raises(ApiError) as refused:
        await read_body(pieces(b"abc", b"de"), limit=4, content_length=content_length)
    assert (refused.value.status, refused.value.type) == (413, "body_too_large")


async def test_a_declared_length_over_the_limit_is_refused_before_reading():
    async def never_read():
        raise AssertionError("the body was read")
        yield b""

    with pytest.raises(ApiError):
        await read_body(never_read(), limit=4, content_length="5")


def test_a_chunk_is_one_compact_data_frame_and_a_heartbeat_a_comment():
    assert sse({"type": "text-delta", "delta": "é\n"}) == (
        b'data: {"type":"text-delta","delta":"\\u00e9\\n"}\n\n'
    )
    assert sse(HEARTBEAT) == b": ping\n\n"


async def test_a_stream_is_each_batch_in_one_write_then_done():
    async def batches():
        yield [{"type": "start"}, HEARTBEAT]
        yield [{"type": "finish"}]

    frames = [frame async for frame in sse_frames(batches())]
    assert frames == [
        b'data: {"type":"start"}\n\n: ping\n\n',
        b'data: {"type":"finish"}\n\n',
        b"data: [DONE]\n\n",
    ]


async def test_a_cut_stream_ends_without_done():
    async def batches():
        yield [{"type": "start"}]
        raise StreamCut

    frames = [frame async for frame in sse_frames(batches())]
    assert frames == [b'data: {"type":"start"}\n\n']


def test_parts_open_on_their_first_delta_and_close_before_the_next_kind_and_the_finish():
    stream = UIMessageStream("msg-1")
    chunks = (
        stream.start()
        + stream.delta("reasoning", "Think")
        + stream.delta("text", "Hel")
        + stream.delta("text", "lo")
        + stream.finish({"finishReason": "stop"})
    )
    assert chunks == [
        {"type": "start", "messageId": "msg-1"},
        {"type": "reasoning-start", "id": "reasoning-0"},
        {"type": "reasoning-delta", "id": "reasoning-0", "delta": "Think"},
        {"type": "reasoning-end", "id": "reasoning-0"},
        {"type": "text-start", "id": "text-1"},
        {"type": "text-delta", "id": "text-1", "delta": "Hel"},
        {"type": "text-delta", "id": "text-1", "delta": "lo"},
        {"type": "text-end", "id": "text-1"},
        {"type": "finish", "messageMetadata": {"finishReason": "stop"}},
    ]


@pytest.mark.parametrize(
    ("end", "last"),
    [
        (lambda stream: stream.error("It broke."), {"type": "error", "errorText": "It broke."}),
        (lambda stream: stream.abort(), {"type": "abort"}),
    ],
    ids=["error", "abort"],
)
def test_an_error_or_abort_closes_the_open_part_first(end, last):
    stream = UIMessageStream("msg-1")
    assert (stream.delta("text", "Par") + end(stream)) == [
        {"type": "text-start", "id": "text-0"},
        {"type": "text-delta", "id": "text-0", "delta": "Par"},
        {"type": "text-end", "id": "text-0"},
        last,
    ]
    assert (end(stream)) == [last], "nothing is left open to close twice"


def test_text_before_a_tool_call_is_closed_and_the_next_step_opens_a_new_part():
    stream = UIMessageStream("msg-1")
    chunks = (
        stream.start_step()
        + stream.delta("text", "Let me see.")
        + stream.tool_input_start("call_1", "calculate")
        + stream.tool_input_delta("call_1", '{"expression": "6*7"}')
        + stream.tool_input_available("call_1", "calculate", {"expression": "6*7"})
        + stream.tool_output("call_1", 42)
        + stream.finish_step()
        + stream.start_step()
        + stream.delta("text", "42.")
        + stream.finish_step()
    )
    assert chunks == [
        {"type": "start-step"},
        {"type": "text-start", "id": "text-0"},
        {"type": "text-delta", "id": "text-0", "delta": "Let me see."},
        {"type": "text-end", "id": "text-0"},
        {"type": "tool-input-start", "toolCallId": "call_1", "toolName": "calculate"},
        {
            "type": "tool-input-delta",
            "toolCallId": "call_1",
            "inputTextDelta": '{"expression": "6*7"}',
        },
        {
            "type": "tool-input-available",
            "toolCallId": "call_1",
            "toolName": "calculate",
            "input": {"expression": "6*7"},
        },
        {"type": "tool-output-available", "toolCallId": "call_1", "output": 42},
        {"type": "finish-step"},
        {"type": "start-step"},
        {"type": "text-start", "id": "text-1"},
        {"type": "text-delta", "id": "text-1", "delta": "42."},
        {"type": "text-end", "id": "text-1"},
        {"type": "finish-step"},
    ]
    assert (stream.tool_error("call_2", "It broke.")) == [
        {"type": "tool-output-error", "toolCallId": "call_2", "errorText": "It broke."}
    ]
