"""Files in a question (AI SDK `file` parts), in the chat core with real LiteLLM against the fake
provider in each wire format: each kind arrives in the shape its provider reads, and every
refusal comes before any provider call, with its status and a message naming the limit.

In-process (no server): the route adds nothing to a file part but the body's size limit, checked
with the real AI SDK client in `test_ai_sdk.py`.
"""

import base64
import json

import pytest

from {{ cookiecutter.package_name }}.access import Caller
from {{ cookiecutter.package_name }}.chat import Chat, access_log
from {{ cookiecutter.package_name }}.errors import ApiError
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import FAKE_KEY, FAMILIES
from .streams import read_frames
from .support import CSV, PDF, PNG

CALLER = Caller("127.0.0.1")


def file_part(data: bytes, media_type: str, filename: str) -> dict:
    url = f"data:{media_type};base64,{base64.b64encode(data).decode()}"
    return {"type": "file", "mediaType": media_type, "url": url, "filename": filename}


def body(model: str, *files: dict, question: str = "What is in these?") -> bytes:
    parts = [{"type": "text", "text": question}, *files]
    return json.dumps({"model": model, "messages": [{"role": "user", "parts": parts}]}).encode()


def core(upstream, **settings) -> Chat:
    """A chat core whose `<family>/fake-vision` models read images and PDFs."""
    vision = [f"{family}/fake-vision" for family in FAMILIES]
    defaults = {
        "llm_api_base": upstream.base_url,
        "llm_api_key": FAKE_KEY,
        "llm_models": [*vision, "openai/fake-fast"],
        "vision_models": vision,
        "pdf_models": vision,
        "redis_url": None,
        "rate_limit": "100000/minute",  # load from one client
    }
    return Chat(Settings(**(defaults | settings)))


async def answer(chat_core: Chat, request: bytes) -> str:
    frames = await chat_core.open(request, CALLER)
    try:
        stream = await read_frames(frames)
    finally:
        await frames.aclose()
    assert stream.types[-1] == "finish", stream.chunks
    return stream.text


async def refusal(chat_core: Chat, request: bytes) -> ApiError:
    with pytest.raises(ApiError) as refused:
        await chat_core.open(request, CALLER)
    return refused.value


@pytest.mark.parametrize("family", FAMILIES)
async def test_an_image_a_pdf_and_a_text_file_reach_the_provider_in_its_own_shape(upstream, family):
    files = [
        file_part(PNG, "image/png", "dot.png"),
        file_part(CSV, "text/csv", "cities.csv"),
    ]
    if family != "ollama_chat":  # Ollama's API takes no documents
        files.insert(1, file_part(PDF, "application/pdf", "report.pdf"))

    assert await answer(core(upstream), body(f"{family}/fake-vision", *files))

    text, sent = upstream.last("fake-vision", family).question()
    assert text.startswith("What is in these?")
    assert '<file name="cities.csv">\ncity,people\nParis,2100000\n' in text
    expected = [("image/png", PNG)] + ([("application/pdf", PDF)] if len(files) == 3 else [])
    if family == "ollama_chat":  # images only, without their type
        expected = [("", data) for _, data in expected]
    assert [(media_type, base64.b64decode(data)) for media_type, data in sent] == expected


async def test_what_a_file_is_comes_from_its_content_not_from_the_client(upstream):
    """A PNG that says it is text is sent as the image it is; text that says it is a PNG is
    inlined as the text it is."""
    mislabelled = [file_part(PNG, "text/plain", "a.txt"), file_part(CSV, "image/png", "b.png")]

    await answer(core(upstream), body("anthropic/fake-vision", *mislabelled))

    text, sent = upstream.last("fake-vision", "anthropic").question()
    assert sent == [("image/png", base64.b64encode(PNG).decode())]
    assert '<file name="b.png">\ncity,people' in text


async def test_a_text_file_reaches_a_model_that_reads_text_only(upstream):
    await answer(core(upstream), body("openai/fake-fast", file_part(CSV, "text/csv", "c.csv")))

    text, sent = upstream.last("fake-fast").question()
    assert "Paris,2100000" in text and sent == []


@pytest.mark.parametrize(
    ("model", "file", "status", "message"),
    [
        (
            "openai/fake-fast",
            file_part(PNG, "image/png", "dot.png"),
            422,
            "openai/fake-fast cannot read images (dot.png); it reads text files.",
        ),
        (
            "openai/fake-vision",
            file_part(b"PK\x03\x04" + bytes(40), "application/pdf", "archive.pdf"),
            415,
            "messages.0.parts.1: archive.pdf is application/zip; accepted: image/png, "
            "image/jpeg, image/gif, image/webp, application/pdf, text/*.",
        ),
        (
            "openai/fake-vision",
            file_part(PNG + bytes(2000), "image/png", "big.png"),
            413,
            f"messages.0.parts.1: big.png has {len(PNG) + 2000} bytes; files of up to 1000 bytes "
            "are accepted.",
        ),
        (
            "openai/fake-vision",
            {"type": "file", "mediaType": "image/png", "url": "https://example.com/a.png"},
            422,
            "messages.0.parts.1: a file must come as a data: URL; this server fetches no URLs.",
        ),
        (
            "openai/fake-vision",
            {"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,%%%"},
            422,
            "messages.0.parts.1: the data: URL is malformed.",
        ),
    ],
    ids=["image-for-a-text-model", "disallowed-type", "too-large", "remote-url", "malformed"],
)
async def test_a_file_it_cannot_take_is_refused_before_the_provider_is_called(
    upstream, model, file, status, message
):
    asked = len(upstream.records)

    refused = await refusal(core(upstream, max_attachment_bytes=1000), body(model, file))

    assert (refused.status, refused.message) == (status, message)
    assert len(upstream.records) == asked


async def test_the_files_of_a_request_are_bounded_in_number_and_in_total(upstream):
    chat_core = core(upstream, max_attachments=2, max_attachments_bytes=len(CSV) * 2)
    three = [file_part(CSV, "text/csv", f"{n}.csv") for n in range(3)]

    too_many = await refusal(chat_core, body("openai/fake-vision", *three))
    # Two per message, but three in the conversation: over the request's total.
    conversation = {
        "messages": [
            {"role": "user", "parts": three[:2]},
            {"role": "assistant", "content": "Two tables."},
            {"role": "user", "parts": three[2:]},
        ]
    }
    too_much = await refusal(chat_core, json.dumps(conversation).encode())

    assert (too_many.status, too_many.type) == (422, "too_many_files")
    assert too_many.message == "messages.0: at most 2 files are accepted per message."
    assert (too_much.status, too_much.type) == (413, "files_too_large")


async def test_text_is_text_whatever_its_first_letters_and_however_its_url_is_written(upstream):
    """A text file beginning with a two-letter signature ("BM", a bitmap's) is still text, its
    byte order mark dropped; base64 may be wrapped, escaped or spelled in capitals."""
    notes = "\ufeffBM25 ranks documents.\n".encode()
    wrapped = base64.encodebytes(notes).decode().replace("=", "%3D")
    files = [
        file_part(notes, "text/markdown", "bm25.md"),
        {"type": "file", "url": f"data:text/plain;BASE64,{wrapped}", "filename": "w.txt"},
    ]

    await answer(core(upstream), body("openai/fake-fast", *files))

    text, _ = upstream.last("fake-fast").question()
    assert '<file name="bm25.md">\nBM25 ranks documents.\n' in text
    assert '<file name="w.txt">\nBM25 ranks documents.\n' in text


async def test_only_the_questions_files_count_an_answers_are_not_sent_back(upstream):
    made = {"type": "file", "mediaType": "image/png", "url": "https://example.com/chart.png"}
    conversation = {
        "model": "openai/fake-fast",
        "messages": [
            {"role": "user", "parts": [{"type": "text", "text": "Draw it"}]},
            {"role": "assistant", "parts": [made]},
            {"role": "user", "parts": [{"type": "text", "text": "Thanks"}]},
        ],
    }

    await answer(core(upstream), json.dumps(conversation).encode())

    assert "chart.png" not in json.dumps(upstream.last("fake-fast").body)


async def test_the_access_log_keeps_a_files_text_but_not_its_data(upstream, caplog):
    chat_core = core(upstream, log_content=True)
    image = file_part(PNG, "image/png", "dot.png")

    with caplog.at_level("INFO", logger=access_log.name):
        await answer(chat_core, body("openai/fake-vision", image, question="What is it?"))

    [logged] = [json.loads(r.getMessage()) for r in caplog.records if r.name == access_log.name]
    question = logged["messages"][0]["content"]
    assert question[0] == {"type": "text", "text": "What is it?"}
    assert question[1]["image_url"]["url"] == "data:image/png;base64,… (96 characters)"
