"""A loopback Hugging Face hub serving one file, as `huggingface_hub` downloads it from the
`HF_ENDPOINT` it is given: `HEAD` then `GET /{repo}/resolve/{revision}/{filename}`, with the
headers the client requires (`X-Repo-Commit`, the ETag that is a large file's SHA-256, its size),
byte ranges for a resumed download, and no Xet headers, so the plain HTTP path is taken. Every
request is recorded; the first download can be cut off mid-file, and the ETag can lie.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .fake_upstream import UpstreamReset
from .support import ThreadedServer, free_port

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CHUNK = 1 << 20


@dataclass(frozen=True)
class HubRequest:
    method: str
    path: str
    range: str | None


class FakeHub:
    def __init__(self, repo_id: str, filename: str, content: Path) -> None:
        self.repo_id, self.filename = repo_id, filename
        self.content = content.read_bytes()
        self.sha256 = hashlib.sha256(self.content).hexdigest()
        self.etag = self.sha256  # what the hub states: `lie_about_sha256` changes it
        self.cut_first_download_at: int | None = None
        self.sent_before_cut = 0  # bytes of the cut download that left
        self.requests: list[HubRequest] = []
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        path = "/{repo:path}/resolve/{revision}/{filename:path}"
        route = Route(path, self._resolve, methods=["GET", "HEAD"])
        # "critical": the cut download's exception is meant, and not logged.
        self._server = ThreadedServer(Starlette(routes=[route]), self.port, "critical")

    def lie_about_sha256(self) -> None:
        self.etag = hashlib.sha256(b"not the file").hexdigest()

    def start(self) -> "FakeHub":
        self._server.start("the fake hub listens")
        return self

    def stop(self) -> None:
        self._server.stop()

    async def _resolve(self, request: Request) -> Response:
        asked = HubRequest(request.method, request.url.path, request.headers.get("range"))
        self.requests.append(asked)
        found = (request.path_params["repo"], request.path_params["filename"])
        if found != (self.repo_id, self.filename):
            return Response(status_code=404, headers={"X-Error-Code": "EntryNotFound"})
        start = int(request.headers.get("range", "bytes=0-")[len("bytes=") :].split("-")[0])
        headers = {
            "X-Repo-Commit": COMMIT,
            "ETag": f'"{self.etag}"',
            "X-Linked-Size": str(len(self.content)),
            "Accept-Ranges": "bytes",
            "Content-Length": str(len(self.content) - start),
        }
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(self.content) - 1}/{len(self.content)}"
        status = 206 if start else 200
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        cut_at, self.cut_first_download_at = self.cut_first_download_at, None
        return StreamingResponse(self._body(start, cut_at), status, headers)

    async def _body(self, start: int, cut_at: int | None):
        for offset in range(start, len(self.content), CHUNK):
            if cut_at is not None and offset >= cut_at:
                self.sent_before_cut = offset - start
                raise UpstreamReset  # uvicorn drops the connection mid-body
            yield self.content[offset : offset + CHUNK]
