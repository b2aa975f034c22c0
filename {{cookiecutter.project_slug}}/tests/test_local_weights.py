"""`LOCAL_MODEL`: the embedded model's weights from the Hugging Face hub. The first start of the
API downloads them from a loopback fake of the hub (its `HF_ENDPOINT`) serving the shipped GGUF
file, into a cache of the test's own (`HF_HOME`), and answers with them."""

import re

import httpx
import pytest

from {{ cookiecutter.package_name }}.local_model import shipped_model_path
from {{ cookiecutter.package_name }}.local_weights import HubFile, WeightsError

from .conftest import BAKED_MODEL, running_api
from .fake_hub import FakeHub
from .streams import chat_body, post_chat

REPO_ID = "test-org/SmolLM2-135M-Instruct-GGUF"
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
def hub():
    hub = FakeHub(REPO_ID, FILENAME, shipped_model_path()).start()
    yield hub
    hub.stop()


def settings(hub: FakeHub, cache) -> dict[str, str]:
    """The embedded model as the default (so it loads at start-up), named on the fake hub."""
    return {
        "local_model": f"{REPO_ID}/{FILENAME}",
        "hf_endpoint": hub.endpoint,
        "hf_home": str(cache),
        "llm_model": BAKED_MODEL,
        "llm_timeout_s": "60",
    }


def test_the_first_start_downloads_resuming_a_cut_connection_and_the_next_uses_the_cache(
    upstream, hub, tmp_path
):
    hub.cut_first_download_at = 30_000_000  # of 98 MB
    with running_api(upstream, tmp_path, terminal=True, **settings(hub, tmp_path / "hf")):
        first_start = (tmp_path / "api.log").read_text()
    gets = [request for request in hub.requests if request.method == "GET"]
    assert gets[0].range is None
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", gets[1].range or "")[1])
    assert 0 < resumed_at <= hub.sent_before_cut, gets
    assert "Downloading the local model" in first_start
    assert re.search(r"100%\|█+\| 98\.\dM/98\.\dM", first_start), first_start  # the progress bar

    hub.requests.clear()
    with running_api(upstream, tmp_path, **settings(hub, tmp_path / "hf")) as server:
        assert post_chat(server.url, BAKED_MODEL, "What is the capital of France?").text
    assert hub.requests == []


def test_a_file_whose_sha256_is_not_the_hubs_is_refused_and_deleted(upstream, hub, tmp_path):
    hub.lie_about_sha256()
    cache = tmp_path / "hf"
    with running_api(upstream, tmp_path, **settings(hub, cache)) as server:
        body = chat_body(BAKED_MODEL, "What is the capital of France?")
        refused = httpx.post(f"{server.url}/api/chat", json=body, timeout=30)
        log = (tmp_path / "api.log").read_text()
    assert f"the downloaded file's SHA-256 is {hub.sha256}, the hub states {hub.etag}" in log
    assert refused.status_code == 502, refused.text
    assert [path.name for path in cache.rglob("blobs/*")] == []


@pytest.mark.parametrize(
    "name",
    ["", "owner/file.gguf", "owner/repo/model.bin", "owner//file.gguf", "owner/repo/"],
)
def test_a_name_that_is_no_gguf_file_on_the_hub_is_refused(name):
    with pytest.raises(WeightsError, match=r"owner/repo/file\.gguf"):
        HubFile.parse(name)


def test_a_name_may_pin_a_revision_and_a_folder():
    name = "owner/repo/q4/model.gguf@0123abc"
    assert HubFile.parse(name) == HubFile("owner/repo", "q4/model.gguf", "0123abc")
