"""Files in a question: AI SDK `file` parts, read, checked and turned into the model's content.

A file comes as a `data:` URL: what `useChat` sends, and what the page hands the core for the
files it stored. A URL to fetch is refused: LiteLLM would download it inside this process for
most providers (Anthropic, Gemini, Ollama, Bedrock), following redirects to any host. What a
file is, its content says (its magic bytes, or that it reads as text), not the media type the
client gave. Images become image parts and PDFs file parts, for the models that read them
(`llm.file_kinds`); text files are inlined, so every model reads them.
"""

import base64
import binascii
import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import filetype

from .errors import ApiError
from .protocol import Message, MessagePart
from .settings import Settings

# The kinds of file, as the page and the errors name them.
KINDS = {"text": "text files", "image": "images", "pdf": "PDFs"}
# What a text file must not contain: control characters other than tab, newlines and form feed.
_BINARY = bytes(set(range(32)) - {9, 10, 12, 13})


@dataclass(frozen=True)
class Attachment:
    """A file as the model gets it."""

    filename: str
    media_type: str  # as its content shows it to be
    url: str  # a data: URL
    text: str | None = None  # a text file's content, inlined
    size: int = 0  # bytes

    @property
    def kind(self) -> str:
        return kind_of(self.media_type)

    def content_part(self) -> dict:
        """As a part of the chat message's content, which LiteLLM translates for each provider."""
        if self.text is not None:
            name = json.dumps(self.filename)
            # Set apart by newlines: some formats (Ollama's) join a message's texts as they are.
            return {"type": "text", "text": f"\n<file name={name}>\n{self.text}\n</file>\n"}
        if self.kind == "image":
            return {"type": "image_url", "image_url": {"url": self.url}}
        return {"type": "file", "file": {"file_data": self.url, "filename": self.filename}}


def kind_of(media_type: str) -> str:
    """`image`, `pdf` or `text`: the kinds ATTACHMENT_TYPES may name (see `settings`)."""
    if media_type == "application/pdf":
        return "pdf"
    return "image" if media_type.startswith("image/") else "text"


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def read_file(data: bytes, filename: str, declared: str, settings: Settings) -> Attachment:
    """A file's bytes checked against the limits (`ApiError` 413/415 naming the file and the
    limit), as an `Attachment`."""
    if len(data) > settings.max_attachment_bytes:
        raise ApiError(
            413,
            "file_too_large",
            f"{filename} has {len(data)} bytes; files of up to "
            f"{settings.max_attachment_bytes} bytes are accepted.",
        )
    media_type = sniff(data, declared, settings.attachment_types)
    if not _accepted(media_type, settings.attachment_types):
        accepted = ", ".join(settings.attachment_types)
        raise ApiError(
            415, "unsupported_file_type", f"{filename} is {media_type}; accepted: {accepted}."
        )
    text = data.decode("utf-8-sig") if kind_of(media_type) == "text" else None
    return Attachment(filename, media_type, data_url(media_type, data), text, len(data))


def sniff(data: bytes, declared: str, accepted: list[str]) -> str:
    """What `data` is: an accepted type its first bytes give away, else text if it reads as
    text (the client's text type kept, `text/plain` for any other), else what its first bytes
    say, or `application/octet-stream`.

    A guess outside `accepted` yields to text: some signatures are two letters ("BM", "MZ"),
    and a text may begin with them."""
    guess = filetype.guess_mime(data)
    if guess and _accepted(guess, accepted):
        return guess
    if _is_text(data):
        declared = declared.split(";")[0].strip().lower()
        return declared if declared.startswith("text/") else "text/plain"
    return guess or "application/octet-stream"


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return len(data.translate(None, delete=_BINARY)) == len(data)


def _accepted(media_type: str, accepted: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(media_type, pattern) for pattern in accepted)


class RequestFiles:
    """The file parts of a request's questions, read and checked once; `ApiError` for the first
    that breaks a limit, naming where it is. (An answer's files, which a model made, are not
    sent back to it.)"""

    def __init__(self, messages: list[Message], settings: Settings) -> None:
        self._read: dict[int, Attachment] = {}
        total = 0
        for index, message in enumerate(messages):
            if message.role != "user":
                continue
            files = [(at, part) for at, part in enumerate(message.parts or []) if part.is_file()]
            if len(files) > settings.max_attachments:
                raise ApiError(
                    422,
                    "too_many_files",
                    f"messages.{index}: at most {settings.max_attachments} files are accepted "
                    "per message.",
                )
            for at, part in files:
                attachment = _read_part(part, f"messages.{index}.parts.{at}", settings)
                total += attachment.size
                self._read[id(part)] = attachment
        if total > settings.max_attachments_bytes:
            raise ApiError(
                413,
                "files_too_large",
                f"The files of this conversation add up to over {settings.max_attachments_bytes}"
                " bytes.",
            )

    @property
    def attachments(self) -> Iterable[Attachment]:
        return self._read.values()

    def content_part(self, part: MessagePart) -> dict:
        return self._read[id(part)].content_part()


def _read_part(part: MessagePart, where: str, settings: Settings) -> Attachment:
    url = part.url or ""
    if not url.startswith("data:"):
        raise ApiError(
            422,
            "file_url_not_allowed",
            f"{where}: a file must come as a data: URL; this server fetches no URLs.",
        )
    try:
        data = _decoded(url)
    except ValueError:
        raise ApiError(422, "invalid_file", f"{where}: the data: URL is malformed.") from None
    try:
        return read_file(data, part.filename or "the file", part.media_type or "", settings)
    except ApiError as exc:
        raise ApiError(exc.status, exc.type, f"{where}: {exc.message}") from None


def _decoded(url: str) -> bytes:
    """The bytes of a `data:` URL (RFC 2397), base64 (whitespace and percent-escapes allowed, as
    in a URL) or percent-encoded; ValueError if it is not one."""
    header, comma, payload = url.removeprefix("data:").partition(",")
    if not comma:
        raise ValueError("no comma")
    data = unquote_to_bytes(payload)
    if not header.lower().endswith(";base64"):
        return data
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def unreadable(model: str, attachment: Attachment, kinds: Iterable[str]) -> str:
    """What to say of a file of a kind `model` does not read, naming the kinds it does."""
    names = [KINDS[kind] for kind in KINDS if kind in kinds]
    readable = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    kind, name = KINDS[attachment.kind], attachment.filename
    return f"{model} cannot read {kind} ({name}); it reads {readable}."


def without_file_data(messages: list[dict]) -> list[dict]:
    """Chat messages for the access log, each file's data: URL cut to its media type and size:
    LOG_CONTENT writes the text of a conversation, not megabytes of base64."""
    return [message | {"content": _logged(message.get("content"))} for message in messages]


def _logged(content: object) -> object:
    if not isinstance(content, list):
        return content
    parts = []
    for part in content:
        for key, field in (("image_url", "url"), ("file", "file_data")):
            if isinstance(url := part.get(key, {}).get(field), str):
                header, _, payload = url.partition(",")
                part = part | {key: part[key] | {field: f"{header},… ({len(payload)} characters)"}}
        parts.append(part)
    return parts
