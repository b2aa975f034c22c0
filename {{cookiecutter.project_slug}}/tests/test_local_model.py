"""The embedded model for real: SmolLM2 on llama.cpp inside the API process, through LiteLLM."""

import os
import time

import httpx

from .conftest import BAKED_MODEL
from .streams import assert_parts_well_formed, chat_body, read_events, read_stream

LONG_ANSWER = "Write a long story about a river, with at least ten paragraphs."


def test_streams_a_real_answer_with_usage(api):
    body = chat_body(BAKED_MODEL, "Name three rivers.")
    with httpx.stream("POST", f"{api}/api/chat", json=body, timeout=60) as response:
        assert response.status_code == 200
        stream = read_stream(response)

    assert stream.text.strip()
    assert_parts_well_formed(stream)
    metadata = stream.chunks[-1]["messageMetadata"]
    assert metadata["model"] == BAKED_MODEL
    assert metadata["usage"]["inputTokens"] > 0
    assert metadata["usage"]["outputTokens"] == len(stream.of_type("text-delta"))


def test_tokens_arrive_while_the_model_is_generating(api):
    body = chat_body(BAKED_MODEL, LONG_ANSWER)
    started = time.monotonic()
    with httpx.stream("POST", f"{api}/api/chat", json=body, timeout=60) as response:
        arrivals = [
            time.monotonic() - started
            for kind, chunk in read_events(response)
            if kind == "chunk" and chunk["type"] == "text-delta"
        ]
    assert len(arrivals) > 20
    assert arrivals[0] < arrivals[-1] / 2


def test_disconnect_stops_generation(api_server):
    """Generation burns a CPU core; once the client hangs up the server goes quiet."""
    pid = api_server.process.pid
    body = chat_body(BAKED_MODEL, LONG_ANSWER)
    with httpx.stream("POST", f"{api_server.url}/api/chat", json=body, timeout=60) as response:
        events = read_events(response)
        next(e for e in events if e[0] == "chunk" and e[1]["type"] == "text-delta")
        busy = cpu_seconds_over(pid, 1.0)
    time.sleep(0.5)  # the worker thread stops at its next token
    idle = cpu_seconds_over(pid, 1.0)

    assert busy > 0.5, f"the model was not generating ({busy:.2f} s of CPU in 1 s)"
    assert idle < 0.2, f"generation went on after the disconnect ({idle:.2f} s of CPU in 1 s)"


def cpu_seconds_over(pid: int, seconds: float) -> float:
    def cpu() -> float:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    before = cpu()
    time.sleep(seconds)
    return cpu() - before
