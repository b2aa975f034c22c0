"""The page's files over HTTP, in Reflex's backend: uploads bounded before they are read, and
each stored file served to its owner alone at `/_attachments/{id}`.

The owner cookie says whose files may be read (and, with UI_PASSWORD, only with a session the
gate admits); anyone else's id reads as not found. A text file is always served as plain text,
so that no visitor's file is ever a page of this origin.
"""

import asyncio
import re
from collections.abc import Callable
from urllib.parse import quote

from reflex.config import get_config
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from {{ cookiecutter.package_name }}.attachments import kind_of
from {{ cookiecutter.package_name }}.security import ASGIApp, Scope

from . import history
from .services import services
from .state import OWNER_COOKIE, SESSION_COOKIE

# Where a stored file is served (`state.ATTACHMENT_URL`), and where Reflex takes uploads.
ATTACHMENT = re.compile(r"/_attachments/([0-9]{1,18})")
UPLOAD = "/_upload"  # Reflex's, under its backend path
# Room for the multipart framing around the files of one upload.
MULTIPART_SLACK = 64 * 1024


def serve_files(backend: ASGIApp) -> ASGIApp:
    """An `rx.App(api_transformer=...)`: stored files served, uploads bounded, the rest to
    `backend`."""
    upload_path = get_config().prepend_backend_path(UPLOAD)

    async def app(scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and (match := ATTACHMENT.fullmatch(scope["path"])):
            if scope["method"] not in ("GET", "HEAD"):
                response: Response = Response(status_code=405, headers={"Allow": "GET, HEAD"})
            else:
                response = await asyncio.to_thread(_stored_file, Request(scope), int(match[1]))
            await response(scope, receive, send)
        elif (
            scope["type"] == "http"
            and scope["path"] == upload_path
            and (refusal := _upload_refusal(Request(scope)))
        ):
            await refusal(scope, receive, send)
        else:
            await backend(scope, receive, send)

    return app


def _stored_file(request: Request, attachment_id: int) -> Response:
    owner = request.cookies.get(OWNER_COOKIE, "")
    admitted = services().gate.admits(request.cookies.get(SESSION_COOKIE, ""))
    if not (admitted and history.is_owner_id(owner)):
        return Response(status_code=404)
    try:
        stored = history.History(owner, services().database).attachment(attachment_id)
    except history.HistoryUnavailable:
        return Response(status_code=503)
    if stored is None:
        return Response(status_code=404)
    text = kind_of(stored.media_type) == "text"
    return Response(
        stored.data,
        media_type="text/plain; charset=utf-8" if text else stored.media_type,
        headers={
            # Asked again each time: a deleted file, or one behind an ended session, is gone.
            "Cache-Control": "private, no-cache",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(stored.filename)}",
        },
    )


def _upload_refusal(request: Request) -> Response | None:
    """403 for a page the gate has not admitted; 413 for an upload larger than the files the
    page lets one pick (411 if it does not say how large it is). Reflex would spool any upload
    to disk before the page's handler sees it, which then says what is wrong with a file."""
    if not services().gate.admits(request.cookies.get(SESSION_COOKIE, "")):
        return JSONResponse({"detail": "The page is locked."}, 403)
    settings = services().settings
    limit = settings.max_attachments * settings.max_attachment_bytes + MULTIPART_SLACK
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        return JSONResponse({"detail": "An upload must state its Content-Length."}, 411)
    if int(length) > limit:
        return JSONResponse({"detail": f"An upload may have up to {limit} bytes."}, 413)
    return None
