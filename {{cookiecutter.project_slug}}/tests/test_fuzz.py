"""Schema-shaped and shapeless bodies for `POST /api/chat`: never a 5xx, never a hang."""

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .streams import read_stream
from .support import fuzz_examples

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=30)
json_values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
# File parts' URLs: files of each kind, broken data: URLs, a URL to fetch.
urls = st.sampled_from(
    [
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEh"
        "QGAhKmMIQAAAABJRU5ErkJggg==",
        "data:application/pdf;base64,JVBERi0xLjQK",
        "data:text/csv,a%2Cb%0A1%2C2",
        "data:image/png;base64,%%%",
        "https://example.com/a.png",
    ]
) | st.text(max_size=30).map("data:".__add__)
parts = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "file", "reasoning"]) | json_values},
        optional={
            "text": st.text(max_size=50) | json_values,
            "url": urls | json_values,
            "mediaType": st.sampled_from(["image/png", "application/pdf", "text/plain"])
            | json_values,
            "filename": st.text(max_size=20) | json_values,
        },
    ),
    max_size=3,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool"]) | json_values},
        optional={"content": st.text(max_size=100) | json_values, "parts": parts | json_values},
    ),
    max_size=4,
)
bodies = json_values | st.fixed_dictionaries(
    {"messages": messages | json_values},
    optional={
        "model": st.sampled_from(["openai/fake-fast", "nope/nothing"]) | json_values,
        "id": json_values,
        "trigger": json_values,
    },
)
fuzz = settings(
    max_examples=fuzz_examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@fuzz
@given(body=bodies)
def test_json_bodies(api, body):
    check(api, json=body)


@fuzz
@given(content=st.binary(max_size=300))
def test_raw_bytes(api, content):
    check(api, content=content, headers={"content-type": "application/json"})


def check(api: str, **request) -> None:
    with httpx.stream("POST", f"{api}/api/chat", timeout=30, **request) as response:
        assert response.status_code < 500
        if response.status_code == 200:
            assert read_stream(response).done
        else:
            response.read()
            assert set(response.json()["error"]) == {"type", "message"}
