"""The embedded model's weights from the Hugging Face hub, when `LOCAL_MODEL` names a GGUF file
there (`owner/repo/file.gguf`, or `…@revision` to pin one): a larger model than the shipped
SmolLM2-135M, on the same llama.cpp engine, which reads the model's chat template from the file.

The first start downloads it with `huggingface_hub` into the hub's usual cache (`HF_HOME`), with
a progress bar on a terminal; a connection cut mid-file is resumed where it stopped. The file's
SHA-256 is then checked against the one the hub states. Later starts read it from the cache
without a request.
"""

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


class WeightsError(RuntimeError):
    """The weights `LOCAL_MODEL` names could not be had; the message says why."""


@dataclass(frozen=True, slots=True)
class HubFile:
    repo_id: str
    filename: str
    revision: str

    @classmethod
    def parse(cls, name: str) -> "HubFile":
        path, _, revision = name.strip().partition("@")
        parts = path.split("/")
        if len(parts) < 3 or {"", ".", ".."} & set(parts) or not path.endswith(".gguf"):
            raise WeightsError(
                f"LOCAL_MODEL={name!r} is not a GGUF file on the Hugging Face hub: "
                "owner/repo/file.gguf, or owner/repo/file.gguf@revision"
            )
        return cls("/".join(parts[:2]), "/".join(parts[2:]), revision or "main")

    def __str__(self) -> str:
        return f"{self.repo_id}/{self.filename}@{self.revision}"


def hub_file() -> HubFile | None:
    """The file `LOCAL_MODEL` names (`.env` is in the environment by now: settings.py exports
    it); None for the shipped model."""
    name = os.environ.get("LOCAL_MODEL", "")
    return HubFile.parse(name) if name.strip() else None


def weights(file: HubFile) -> Path:
    """The file, from the cache without a request when it is there, else downloaded now."""
    import huggingface_hub as hub

    cached = hub.try_to_load_from_cache(file.repo_id, file.filename, revision=file.revision)
    if isinstance(cached, str):
        return Path(cached)
    logger.info(
        "Downloading the local model %s from %s into %s (once: later starts read it there).",
        file,
        hub.constants.ENDPOINT,
        hub.constants.HF_HUB_CACHE,
    )
    started = time.monotonic()
    try:
        url = hub.hf_hub_url(file.repo_id, file.filename, revision=file.revision)
        # A large (LFS) file's ETag is its SHA-256, which huggingface_hub does not check.
        expected = hub.get_hf_file_metadata(url).etag or ""
        path = Path(hub.hf_hub_download(file.repo_id, file.filename, revision=file.revision))
    except Exception as exc:  # the hub's errors, its HTTP client's, the disk's
        raise WeightsError(f"LOCAL_MODEL {file} could not be downloaded: {exc}") from exc
    _check_sha256(path, expected, file)
    size_mb = path.stat().st_size / 1e6
    logger.info("Downloaded %s (%.0f MB) in %.0f s.", file, size_mb, time.monotonic() - started)
    return path


def _check_sha256(path: Path, expected: str, file: HubFile) -> None:
    """Refuse the file, and delete it from the cache, unless its SHA-256 is `expected`."""
    digest = hashlib.sha256()
    with path.open("rb") as weights_file:
        while chunk := weights_file.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() == expected:
        return
    for link in _links_to(path):  # the snapshot's link, the blob's, and the file
        link.unlink(missing_ok=True)
    raise WeightsError(
        f"LOCAL_MODEL {file}: the downloaded file's SHA-256 is {digest.hexdigest()}, the hub "
        f"states {expected or 'none'}. It was deleted; the next start downloads it again."
    )


def _links_to(path: Path) -> list[Path]:
    """`path` and each symbolic link it leads through, to the file itself."""
    chain = [path]
    while chain[-1].is_symlink():
        chain.append(chain[-1].parent / os.readlink(chain[-1]))
    return chain
