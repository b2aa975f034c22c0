"""All configuration, read from the environment (and `.env`) and validated at start-up."""

import os
import re
from functools import cache
from pathlib import Path
from typing import Annotated

from dotenv import dotenv_values
from limits import parse
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .mcp_config import McpConfig

# What a Content-Security-Policy can name: a host (or its subdomains) with an optional port...
HOST = re.compile(r"(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?")
# ...and an origin. The settings that name hosts or origins, as what each must be.
HOSTS_AND_ORIGINS = {
    "answer_image_hosts": (HOST, "a host", "such as images.example.com or *.example.com"),
    "frame_ancestors": (
        re.compile(r"https?://" + HOST.pattern),
        "an origin",
        "scheme and host, such as https://portal.example.com",
    ),
}

# Settings given as comma-separated lists.
LISTS = (
    "llm_models",
    "cors_origins",
    "tools",
    "answer_image_hosts",
    "frame_ancestors",
    "attachment_types",
    "vision_models",
    "pdf_models",
)
# What a file may be: an image type, PDF, a text type; or a family (`image/*`, `text/*`).
MEDIA_TYPE = re.compile(r"(image|text)/(\*|[a-z0-9][a-z0-9.+-]*)|application/pdf")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True)

    llm_model: str = "{{ cookiecutter.default_model }}"
    """Default model, any LiteLLM model string (`provider/model`)."""
    llm_models: Annotated[list[str], NoDecode] = []
    """Models a request may pick (comma-separated); the default model is always allowed."""
    llm_api_base: str | None = None
    """Base URL of the provider's API, for self-hosted or OpenAI-compatible servers."""
    llm_api_key: SecretStr | None = None
    """Overrides the provider's usual key variable (e.g. OPENAI_API_KEY)."""
    llm_timeout_s: float = Field(default=60.0, gt=0)
    """Upper bound for connecting to the provider and for each silence while it streams."""
    max_tokens: int = Field(default=2048, gt=0)
    """Cap on the tokens of one answer, so no request can run up an unbounded bill."""
    max_stream_s: float = Field(default=300.0, gt=0)
    """An answer still streaming after this many seconds is cut off with an error."""
    llm_fast_stream: bool = True
    """Read the provider's parsed stream directly, without LiteLLM's per-chunk wrapper (about
    half the CPU per token). LiteLLM's own path is used anyway when LiteLLM callbacks are set."""

    tools: Annotated[list[str], NoDecode] = []
    """Tools from `tools.py` the model may call (comma-separated); none by default."""
    max_tool_steps: int = Field(default=5, gt=0)
    """Model calls per answer: an answer still calling tools after this many ends with an error."""
    tool_timeout_s: float = Field(default=10.0, gt=0)
    """A tool call still running after this many seconds is stopped; the model gets an error."""
    max_tool_result_chars: int = Field(default=50_000, gt=0)
    """A tool result longer than this (as JSON text) reaches the model as an error instead: it
    would fill the model's context, the stream and the saved conversation."""
    mcp_servers: Path | None = None
    """A JSON file listing MCP servers (`{"mcpServers": …}`), whose tools are offered too."""
    approval_ttl_s: float = Field(default=900.0, gt=0)
    """A tool call waiting for the user's approval is forgotten after this many seconds:
    approving it later is refused (409), and the model must be asked again."""

    max_request_bytes: int = Field(default=15_000_000, gt=0)
    """Bytes of a request body; files come inside it as base64, a third larger than they are."""
    max_messages: int = Field(default=200, gt=0)
    """Messages per request."""
    max_message_chars: int = Field(default=100_000, gt=0)
    """Characters per message."""

    attachment_types: Annotated[list[str], NoDecode] = [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/*",
    ]
    """Files a question may bring (comma-separated media types, `text/*` for every text file),
    as their content shows them to be, whatever the client says they are."""
    max_attachment_bytes: int = Field(default=5_000_000, gt=0)
    """Bytes of one file (Anthropic takes images of up to 5 MB)."""
    max_attachments_bytes: int = Field(default=10_000_000, gt=0)
    """Bytes of all the files of one request together."""
    max_attachments: int = Field(default=5, gt=0)
    """Files per message."""
    vision_models: Annotated[list[str], NoDecode] = []
    """Models that read images though LiteLLM's model list does not say so (a vision model
    behind LLM_API_BASE, say)."""
    pdf_models: Annotated[list[str], NoDecode] = []
    """Models that read PDFs though LiteLLM's model list does not say so."""
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    """Seconds of silence after which the stream sends a `: ping` comment."""
    resume_grace_s: float = Field(default=10.0, gt=0)
    """A resumable answer nobody follows any more is stopped after this many seconds; a
    finished one is kept this long for a client coming back."""
    resume_buffer_bytes: int = Field(default=2_000_000, gt=0)
    """Bytes of stream kept per resumable answer; a longer answer is cut off with an error."""
    resume_max_answers: int = Field(default=500, gt=0)
    """Resumable answers kept per process; more are refused with 503 until some end."""
    resume_max_bytes: int = Field(default=200_000_000, gt=0)
    """Memory the kept answers of a process may take in all (their chunks, about 250 bytes
    more each than on the wire); past it, new ones are refused with 503 and the one growing
    past it is cut off with an error."""

    api_token: SecretStr | None = None
    """If set, `/api/chat` and `/api/models` need `Authorization: Bearer <token>`."""
    cors_origins: Annotated[list[str], NoDecode] = []
    """Browser origins allowed to call the API (comma-separated); none by default."""
    rate_limit: str = "30/minute"
    """Answers asked for per client (an HTTP client's address, a page visitor), in `limits`
    notation ("30/minute", "500/day")."""
    max_streams_per_client: int = Field(default=4, gt=0)
    """Open streams per client (an HTTP client's address, a page visitor), in this process."""
    page_rate_limit_per_address: str = "300/minute"
    """Answers asked for by all the page's visitors at one address together (a room behind one
    NAT): each visitor also has the per-client limits."""
    page_max_streams_per_address: int = Field(default=50, gt=0)
    """Open streams of all the page's visitors at one address together, in this process."""
    redis_url: str | None = None
    """Keep rate-limit counters and the UI's state in Redis, shared by every process."""
    log_content: bool = False
    """Put the messages into the access log too (off by default: it never logs their text)."""

    metrics_token: SecretStr | None = None
    """If set, `/api/metrics` serves this process's metrics in Prometheus's format to
    `Authorization: Bearer <token>`; unset, it answers 404 and no metrics are kept."""
    otel_exporter_otlp_endpoint: str | None = None
    """OpenTelemetry's: send traces and metrics over OTLP/HTTP to this collector (e.g.
    http://otel-collector:4318); unset, no trace is made."""
    otel_service_name: str = "{{ cookiecutter.project_slug }}"
    """OpenTelemetry's: the name the traces and metrics come under."""
    otel_instrumentation_genai_capture_message_content: bool = False
    """OpenTelemetry's: put the messages and tool arguments into the spans too (off by default,
    like LOG_CONTENT)."""

    ui_password: SecretStr | None = None
    """If set, the page asks for it before showing anything (for a deployed page)."""
    answer_image_hosts: Annotated[list[str], NoDecode] = []
    """Hosts whose images an answer may show (comma-separated, `*.example.com` for its
    subdomains); the page's own and `data:` images always show. Others are links."""
    frame_ancestors: Annotated[list[str], NoDecode] = []
    """Origins whose pages may embed this one in a frame (comma-separated); none by default."""
    ui_flush_ms: int = Field(default=50, ge=0)
    """The UI pushes streamed text to the browser at most once per this many milliseconds."""
    database_url: str = "sqlite:///chat.db"
    """Where the UI keeps conversations (SQLAlchemy URL; `postgresql+psycopg://…` for Postgres)."""

    @field_validator(*LISTS, mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, names: list[str]) -> list[str]:
        from .tools import REGISTRY

        if unknown := [name for name in names if name not in REGISTRY]:
            known = ", ".join(REGISTRY)
            raise ValueError(f"no tool named {', '.join(unknown)}; tools.py has: {known}")
        return names

    @field_validator("mcp_servers")
    @classmethod
    def _mcp_servers(cls, path: Path | None) -> Path | None:
        if path:
            McpConfig.read(path)  # a mistake in the file stops the start, naming it
        return path

    @field_validator(*HOSTS_AND_ORIGINS)
    @classmethod
    def _hosts_and_origins(cls, sources: list[str], info: ValidationInfo) -> list[str]:
        form, kind, example = HOSTS_AND_ORIGINS[info.field_name or ""]
        if wrong := [source for source in sources if not form.fullmatch(source)]:
            raise ValueError(f"not {kind}: {', '.join(wrong)} ({example})")
        return [source.lower() for source in sources]

    @field_validator("attachment_types")
    @classmethod
    def _media_types(cls, media_types: list[str]) -> list[str]:
        media_types = [media_type.lower() for media_type in media_types]
        if wrong := [each for each in media_types if not MEDIA_TYPE.fullmatch(each)]:
            raise ValueError(
                f"not a file type the app reads: {', '.join(wrong)} (an image/, text/ type, "
                "image/*, text/* or application/pdf)"
            )
        return media_types

    @field_validator("rate_limit", "page_rate_limit_per_address")
    @classmethod
    def _parse_rate_limit(cls, value: str) -> str:
        parse(value)  # raises ValueError on a malformed limit, at start-up
        return value

    @property
    def allowed_models(self) -> list[str]:
        return [self.llm_model, *(m for m in self.llm_models if m != self.llm_model)]


@cache
def get_settings() -> Settings:
    load_provider_env(Path(".env"))
    return Settings()


def forwarded_allow_ips() -> str:
    """The proxies whose X-Forwarded-For and -Proto are believed (uvicorn's variable, which
    every server of the app reads), after `.env` is loaded."""
    get_settings()
    return os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def load_provider_env(env_file: Path) -> None:
    """Export `.env` to os.environ: LiteLLM reads provider keys (OPENAI_API_KEY, ...) there.

    The process environment wins over the file, and an empty line in the file (`KEY=`) means
    unset, so a blank key is reported missing instead of being sent to the provider.
    """
    for key, value in dotenv_values(env_file).items():
        if value and key not in os.environ:
            os.environ[key] = value
