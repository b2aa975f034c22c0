"""The model this project was baked with: the default when `LLM_MODEL` is unset, and it streams
through its provider's own wire format (the fake upstream answers it like `fake-fast`)."""

import httpx

from .conftest import BAKED_MODEL, running_api
from .streams import read_stream


def test_the_baked_model_is_the_default_and_streams_in_its_wire_format(upstream, tmp_path):
    family, name = BAKED_MODEL.split("/", 1)
    question = {"messages": [{"role": "user", "content": "Hello?"}]}  # no model: the default
    with running_api(upstream, tmp_path, unset=("LLM_MODEL",)) as server:
        health = httpx.get(f"{server.url}/api/health", timeout=30).json()
        with httpx.stream("POST", f"{server.url}/api/chat", json=question, timeout=30) as response:
            assert response.status_code == 200, response.read()
            stream = read_stream(response)

    assert (health["model"], health["provider"]) == (BAKED_MODEL, family)
    assert stream.done and stream.text
    assert stream.chunks[-1]["messageMetadata"]["model"] == BAKED_MODEL
    assert upstream.last(name, family).completed
