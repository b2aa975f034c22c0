"""The MCP servers `MCP_SERVERS` lists: a JSON file in the format Claude Desktop, Cursor and
Claude Code use, checked at start-up.

    {"mcpServers": {
      "notes": {"command": "python", "args": ["-m", "{{ cookiecutter.package_name }}.mcp_example"]},
      "search": {
        "url": "https://search.example/mcp",
        "headers": {"Authorization": "Bearer ${SEARCH_TOKEN}"}
      }
    }}

A server with a `command` is a child process spoken to over stdio; one with a `url` is spoken to
over Streamable HTTP. `${NAME}` is replaced by that environment variable (`.env` included), so
that keys stay out of the file. `"tools": [...]` offers only those of a server's tools.

`"needsApproval"` says which of a server's tools wait for the user's approval before each call
(see `approvals`): `true` (all), `false` (none) or a list of names. Without it, those the
server does not mark read-only or non-destructive: MCP's annotations say so, and by the
protocol's own defaults a tool that says nothing may change or delete things.
"""

import json
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
)


def _no_double_underscore(name: str) -> str:
    # A tool is offered as mcp__<server>__<tool>: with `__` in server names, two could meet.
    if "__" in name:
        raise ValueError("a server's name may not hold '__'")
    return name


ServerName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,30}$"),
    AfterValidator(_no_double_underscore),
]


class _Server(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    tools: list[str] | None = None  # offer only these; None: all
    needs_approval: bool | list[str] | None = Field(default=None, alias="needsApproval")


class StdioServer(_Server):
    type: Literal["stdio"] = "stdio"
    command: str
    args: list[str] = []
    env: dict[str, str] = {}  # on top of PATH, HOME and the like: nothing else is passed on
    cwd: str | None = None


def _not_sse(transport: str) -> str:
    if transport == "sse":  # what Streamable HTTP replaced in 2025
        raise ValueError("the SSE transport is not supported: use the server's Streamable HTTP URL")
    return transport


class HttpServer(_Server):
    type: Annotated[Literal["http", "streamable-http", "sse"], AfterValidator(_not_sse)] = "http"
    url: Annotated[str, StringConstraints(pattern=r"^https?://")]
    headers: dict[str, str] = {}


def _transport(server: object) -> str:
    """Which kind of server an entry is, so that a mistake is reported against that kind."""
    if isinstance(server, dict):
        return "stdio" if "command" in server or server.get("type") == "stdio" else "http"
    return "stdio" if isinstance(server, StdioServer) else "http"


Server = Annotated[
    Annotated[StdioServer, Tag("stdio")] | Annotated[HttpServer, Tag("http")],
    Discriminator(_transport),
]


class McpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    servers: dict[ServerName, Server] = Field(alias="mcpServers")

    @classmethod
    def read(cls, path: Path) -> "McpConfig":
        """The file's servers, with `${NAME}` replaced; ValueError naming what is wrong."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror}") from None
        try:
            return cls.model_validate(json.loads(_with_environment(text)))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not JSON: {exc}") from None
        except ValidationError as exc:
            wrong = (f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"{path}: {'; '.join(wrong)}") from None


def _with_environment(text: str) -> str:
    def value(match: re.Match) -> str:
        if (found := os.environ.get(match[1])) is None:
            raise ValueError(f"{match[0]} is not set")
        return json.dumps(found)[1:-1]  # as a JSON string's content

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value, text)
