"""Tools from MCP servers, offered to the model next to `TOOLS`.

`MCP_SERVERS` names a JSON file in the format Claude Desktop, Cursor and others use:

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

Each server's tool `t` is offered as `mcp__<server>__t`, a name no local tool may take. The
official `mcp` SDK's sessions live on one event loop in a thread of their own, each kept by a
task that connects, lists the tools (again on the server's `list_changed`), checks the server
with a ping while idle, and reconnects with back-off when it fails; every request, whichever
framework and loop it runs on, calls through them. A server that is down only loses its
tools: the app starts and answers anyway, and `/api/health` names it.
"""

import asyncio
import atexit
import json
import logging
import os
import re
import threading
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

if TYPE_CHECKING:  # the SDK is imported where it is used: the app starts without it
    from mcp import ClientSession

logger = logging.getLogger(__name__)

PREFIX = "mcp__"
CONNECT_TIMEOUT_S = 20.0  # to start a server (a first `uvx` may install it) and shake hands
PING_EVERY_S = 15.0  # while idle: a server that died between calls loses its tools
FIRST_RETRY_S, LAST_RETRY_S = 1.0, 60.0  # back-off between attempts to reconnect
ServerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,30}$")]


class StdioServer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: str
    args: list[str] = []
    env: dict[str, str] = {}  # on top of PATH, HOME and the like: nothing else is passed on
    cwd: str | None = None
    tools: list[str] | None = None  # offer only these; None: all


class HttpServer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, StringConstraints(pattern=r"^https?://")]
    headers: dict[str, str] = {}
    tools: list[str] | None = None


class McpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    servers: dict[ServerName, StdioServer | HttpServer] = Field(alias="mcpServers")

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


class ServerUnavailable(Exception):
    """The server is not connected (down, restarting, or it stopped during the call)."""


@dataclass(frozen=True)
class McpTool:
    """A server's tool, called like a local one (`tools.Tool`): `definition()`, `call()`."""

    name: str
    description: str
    parameters: dict
    remote_name: str
    link: "ServerLink"

    def definition(self) -> dict:
        parameters = {"type": "object", "properties": {}, **self.parameters}
        function = {"name": self.name, "description": self.description, "parameters": parameters}
        return {"type": "function", "function": function}

    async def call(self, arguments: dict) -> object:
        """The tool's structured result, or its text; its errors (and the server's absence)
        as ValueError, whose text the model reads."""
        try:
            result = await self.link.call(self.remote_name, arguments)
        except ServerUnavailable as exc:
            raise ValueError(f"The MCP server {self.link.name} {exc}") from None
        text = "\n".join(filter(None, map(_text_of, result.content)))
        if result.is_error:
            raise ValueError(text or f"{self.name} failed.")
        return text if result.structured_content is None else result.structured_content


def _text_of(block) -> str:
    """What the model is told of one content block: text as is, anything else named."""
    match block.type:
        case "text":
            return block.text
        case "resource" if hasattr(block.resource, "text"):
            return block.resource.text
        case "resource_link":
            return f"[{block.name}: {block.uri}]"
    return f"[{block.type} content left out]"


class ServerLink:
    """One server: connected, its tools listed, reconnected with back-off when it fails. Lives
    on the MCP loop; `call` may be awaited from any other."""

    def __init__(self, name: str, server: StdioServer | HttpServer, loop) -> None:
        self.name, self.server, self.loop = name, server, loop
        self.tools: dict[str, McpTool] = {}
        self.status = "connecting"
        self._session: ClientSession | None = None
        self._lost = asyncio.Event()  # a new one for each connection

    async def call(self, tool: str, arguments: dict):
        future = asyncio.run_coroutine_threadsafe(self._call(tool, arguments), self.loop)
        return await asyncio.wrap_future(future)  # cancelling this cancels the call there

    async def _call(self, tool: str, arguments: dict):
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED

        if (session := self._session) is None:
            raise ServerUnavailable(f"is not connected ({self.status}).")
        try:
            return await session.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code != CONNECTION_CLOSED:
                raise
            self._lost.set()
            raise ServerUnavailable("stopped during the call; it is being restarted.") from None

    async def keep_connected(self, stop: asyncio.Event) -> None:
        retry_s = FIRST_RETRY_S
        while not stop.is_set():
            self._lost = asyncio.Event()
            try:
                await self._serve(stop)
                retry_s = FIRST_RETRY_S
            except Exception as exc:  # the SDK's, the transport's, the child process's
                reason = _reason(exc)
                if self.status != f"unavailable: {reason}":
                    logger.warning("MCP server %s is unavailable: %s", self.name, reason)
                self.status = f"unavailable: {reason}"
            self._session, self.tools = None, {}
            if not stop.is_set():
                await _wait(stop, retry_s)
                retry_s = min(retry_s * 2, LAST_RETRY_S)

    async def _serve(self, stop: asyncio.Event) -> None:
        """Connect and serve calls until the server is lost (raises) or `stop` is set."""
        from mcp import ClientSession

        async with AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._transport(stack))
            session = ClientSession(read, write, message_handler=self._on_message)
            session = await stack.enter_async_context(session)
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await session.initialize()
                await self._list_tools(session)
            self._session, self.status = session, "ok"
            logger.info("MCP server %s: tools %s", self.name, ", ".join(self.tools) or "none")
            while not stop.is_set():
                if await _wait(self._lost, PING_EVERY_S, also=stop):
                    raise ConnectionError("the connection was lost")
                if not stop.is_set():
                    async with asyncio.timeout(CONNECT_TIMEOUT_S):
                        await session.send_ping()

    def _transport(self, stack: AsyncExitStack):
        server = self.server
        if isinstance(server, StdioServer):
            from mcp import StdioServerParameters, stdio_client

            parameters = StdioServerParameters(
                command=server.command, args=server.args, env=server.env or None, cwd=server.cwd
            )
            return stdio_client(parameters)
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        client = httpx2.AsyncClient(headers=server.headers, timeout=CONNECT_TIMEOUT_S)
        stack.push_async_callback(client.aclose)
        return streamable_http_client(server.url, http_client=client)

    async def _list_tools(self, session) -> None:
        from mcp.types import PaginatedRequestParams

        listed, cursor = [], None
        while True:
            page = await session.list_tools(
                params=PaginatedRequestParams(cursor=cursor) if cursor else None
            )
            listed += page.tools
            if (cursor := page.next_cursor) is None:
                break
        offered = self.server.tools
        wanted = (self._tool(each) for each in listed if offered is None or each.name in offered)
        self.tools = {tool.name: tool for tool in wanted if tool is not None}

    def _tool(self, listed) -> McpTool | None:
        name = f"{PREFIX}{self.name}__{listed.name}"
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):  # what every provider accepts
            logger.warning("MCP server %s: tool %r left out (name)", self.name, listed.name)
            return None
        description = listed.description or listed.title or listed.name
        return McpTool(name, description, listed.input_schema, listed.name, self)

    async def _on_message(self, message) -> None:
        from mcp.types import ToolListChangedNotification

        if isinstance(message, Exception):
            self._lost.set()
        elif isinstance(message, ToolListChangedNotification) and self._session is not None:
            await self._list_tools(self._session)
            logger.info("MCP server %s: tools now %s", self.name, ", ".join(self.tools))


async def _wait(event: asyncio.Event, timeout_s: float, also: asyncio.Event | None = None) -> bool:
    """Whether `event` was set within `timeout_s` (returns early when `also` is set)."""
    waiters = [asyncio.ensure_future(e.wait()) for e in (event, also) if e is not None]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return event.is_set()


def _reason(exc: BaseException) -> str:
    """The first error inside the SDK's exception groups, in a few words."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class McpServers:
    """Every configured server, on an event loop in a thread of its own, for this process."""

    def __init__(self, config: McpConfig) -> None:
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self.links = [ServerLink(name, each, self._loop) for name, each in config.servers.items()]
        self._thread = threading.Thread(target=self._run, name="mcp-servers", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def tools(self) -> dict:
        return {name: tool for link in self.links for name, tool in link.tools.items()}

    def health(self) -> dict[str, str]:
        return {link.name: link.status for link in self.links}

    def close(self) -> None:
        """End every session: stdio servers get EOF, then SIGTERM after 2 s (the SDK's way)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._keep_all())

    async def _keep_all(self) -> None:
        async with asyncio.TaskGroup() as group:
            for link in self.links:
                group.create_task(link.keep_connected(self._stop))


_servers: dict[Path, McpServers] = {}
_starting = threading.Lock()


def servers(path: Path) -> McpServers:
    """This process's connections to the servers `path` lists, started on first use."""
    with _starting:
        if path not in _servers:
            _servers[path] = McpServers(McpConfig.read(path))
        return _servers[path]
