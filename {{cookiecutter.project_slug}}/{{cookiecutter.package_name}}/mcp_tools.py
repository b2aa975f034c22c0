"""Tools from MCP servers (`mcp_config.py` reads which), offered to the model next to `TOOLS`.

Each server's tool `t` is offered as `mcp__<server>__t`, a name no local tool may take. The
official `mcp` SDK's sessions live on an event loop in a thread of their own, started in each
serving process on first use: a process forked later would inherit a dead copy, and Reflex's
`prod` imports the app before it forks its workers. A task per server connects, lists the tools
(again on the server's `list_changed`), pings the server while no call is running, and
reconnects with back-off when it fails. Every request, whichever framework and event loop it
runs on, calls through these sessions. A server that is down only loses its tools: the app
starts and answers anyway, and `/api/health` says which is unavailable (the log says why).
"""

import asyncio
import atexit
import logging
import os
import re
import threading
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .mcp_config import HttpServer, McpConfig, StdioServer

if TYPE_CHECKING:  # the SDK is imported where it is used, not by every start of the app
    from mcp import ClientSession
    from mcp.types import CallToolResult, ContentBlock, Tool

logger = logging.getLogger(__name__)

PREFIX = "mcp__"
CONNECT_TIMEOUT_S = 20.0  # to start a server (a first `uvx` may install it) and shake hands
HTTP_READ_TIMEOUT_S = 300.0  # the SDK's own; each call is bounded by TOOL_TIMEOUT_S anyway
PING_EVERY_S = 15.0  # while no call runs: a server that died between calls loses its tools
FIRST_RETRY_S, LAST_RETRY_S = 1.0, 60.0  # back-off between attempts to reconnect
MAX_TOOL_PAGES = 50  # of `tools/list`: a server repeating its cursor is not listed forever


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
    needs_approval: bool

    def definition(self) -> dict:
        parameters = {"type": "object", "properties": {}, **self.parameters}
        function = {"name": self.name, "description": self.description, "parameters": parameters}
        return {"type": "function", "function": function}

    async def call(self, arguments: dict) -> object:
        """The tool's structured result, or its text. Its errors, the server's and the
        server's absence are raised as ValueError: their text is for the model."""
        from mcp import MCPError

        try:
            result = await self.link.call(self.remote_name, arguments)
        except ServerUnavailable as exc:
            raise ValueError(f"The MCP server {self.link.name} {exc}") from None
        except MCPError as exc:  # e.g. invalid params: the server's own words
            raise ValueError(f"The MCP server {self.link.name} refused: {exc.message}") from None
        text = "\n".join(filter(None, map(_text_of, result.content)))
        if result.is_error:
            raise ValueError(text or f"{self.name} failed.")
        return text if result.structured_content is None else result.structured_content


def _text_of(block: "ContentBlock") -> str:
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

    def __init__(
        self, name: str, server: StdioServer | HttpServer, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.name, self.server, self.loop = name, server, loop
        self.tools: dict[str, McpTool] = {}
        self.status = "connecting"  # | ok | unavailable
        self._session: ClientSession | None = None
        self._lost = asyncio.Event()  # a new one for each connection
        self._calls = 0  # running now
        self._served = False  # by the current connection

    async def call(self, tool: str, arguments: dict) -> "CallToolResult":
        if not self.loop.is_running():
            raise ServerUnavailable("is not connected: the app is stopping.")
        future = asyncio.run_coroutine_threadsafe(self._call(tool, arguments), self.loop)
        return await asyncio.wrap_future(future)  # cancelling this cancels the call there

    async def _call(self, tool: str, arguments: dict) -> "CallToolResult":
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED

        if (session := self._session) is None:
            raise ServerUnavailable(f"is {self.status}.")
        self._calls += 1
        try:
            return await session.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code != CONNECTION_CLOSED:
                raise
            if isinstance(self.server, StdioServer):  # the child process has gone
                self._drop(session)
                raise ServerUnavailable("stopped during the call; it is being restarted.") from None
            raise ServerUnavailable("closed the call without an answer.") from None
        finally:
            self._calls -= 1

    def _drop(self, session: "ClientSession") -> None:
        """Offer none of the server's tools from now on, and have it reconnected."""
        if session is self._session:
            self._session, self.tools, self.status = None, {}, "unavailable"
            self._lost.set()

    async def keep_connected(self) -> None:
        """Until cancelled (the app stopping)."""
        retry_s, reason = FIRST_RETRY_S, ""
        while True:
            self._lost, self._served = asyncio.Event(), False
            try:
                await self._serve()
            except Exception as exc:  # the SDK's, the transport's, the child process's
                if self._served:  # it was up: a new outage, tried again soon
                    retry_s, reason = FIRST_RETRY_S, ""
                if _reason(exc) != reason:
                    reason = _reason(exc)
                    logger.warning("MCP server %s is unavailable: %s", self.name, reason)
            self._session, self.tools, self.status = None, {}, "unavailable"
            await asyncio.sleep(retry_s)
            retry_s = min(retry_s * 2, LAST_RETRY_S)

    async def _serve(self) -> None:
        """Connect, then serve calls until the server is lost (raises)."""
        from mcp import ClientSession

        async with AsyncExitStack() as stack:
            read, write = await self._connect(stack)
            session = ClientSession(read, write, message_handler=self._on_message)
            session = await stack.enter_async_context(session)
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await session.initialize()
                tools = await self._listed_tools(session)
            self._session, self.tools, self.status, self._served = session, tools, "ok", True
            logger.info("MCP server %s: tools %s", self.name, ", ".join(self.tools) or "none")
            while not await _set_within(self._lost, PING_EVERY_S):
                if self._calls == 0:
                    async with asyncio.timeout(CONNECT_TIMEOUT_S):
                        await session.send_ping()
            raise ConnectionError("it stopped during a call")

    async def _connect(self, stack: AsyncExitStack):
        """The transport's streams, closed with `stack`."""
        server = self.server
        if isinstance(server, StdioServer):
            from mcp import StdioServerParameters, stdio_client

            parameters = StdioServerParameters(
                command=server.command, args=server.args, env=server.env or None, cwd=server.cwd
            )
            return await stack.enter_async_context(stdio_client(parameters))
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        timeout = httpx2.Timeout(CONNECT_TIMEOUT_S, read=HTTP_READ_TIMEOUT_S)
        client = httpx2.AsyncClient(headers=server.headers, timeout=timeout)
        stack.push_async_callback(client.aclose)
        transport = streamable_http_client(server.url, http_client=client)
        return await stack.enter_async_context(transport)

    async def _listed_tools(self, session: "ClientSession") -> dict[str, McpTool]:
        from mcp.types import PaginatedRequestParams

        listed: list[Tool] = []
        cursor = None
        for _ in range(MAX_TOOL_PAGES):
            page = await session.list_tools(
                params=PaginatedRequestParams(cursor=cursor) if cursor else None
            )
            listed += page.tools
            if (cursor := page.next_cursor) is None:
                break
        offered = self.server.tools
        wanted = (self._tool(each) for each in listed if offered is None or each.name in offered)
        return {tool.name: tool for tool in wanted if tool is not None}

    def _tool(self, listed: "Tool") -> McpTool | None:
        name = f"{PREFIX}{self.name}__{listed.name}"
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):  # what every provider accepts
            logger.warning("MCP server %s: tool %r left out (its name)", self.name, listed.name)
            return None
        description = listed.description or listed.title or listed.name
        schema = listed.input_schema
        return McpTool(name, description, schema, listed.name, self, self._needs_approval(listed))

    def _needs_approval(self, listed: "Tool") -> bool:
        chosen = self.server.needs_approval
        if isinstance(chosen, bool):
            return chosen
        if chosen is not None:
            return listed.name in chosen
        hints = listed.annotations
        # MCP's defaults for a tool that says nothing: it may change things, destructively.
        read_only = bool(hints and hints.read_only_hint)
        destructive = not (hints and hints.destructive_hint is False)
        return destructive and not read_only

    async def _on_message(self, message: object) -> None:
        """The session's notifications (each in a task of its own) and its reader's errors."""
        from mcp.types import ToolListChangedNotification

        session = self._session
        if isinstance(message, Exception):  # a line that is not JSON-RPC, say: not fatal
            logger.warning("MCP server %s: %s", self.name, _reason(message))
        elif isinstance(message, ToolListChangedNotification) and session is not None:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                tools = await self._listed_tools(session)
            if session is self._session:  # not a connection lost meanwhile
                self.tools = tools
                logger.info("MCP server %s: tools now %s", self.name, ", ".join(tools) or "none")


async def _set_within(event: asyncio.Event, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True


def _reason(exc: BaseException) -> str:
    """The first error inside the SDK's exception groups, in a few words."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Connections:
    """This process's links to every server of one `MCP_SERVERS` file, on their own loop."""

    def __init__(self, config: McpConfig) -> None:
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        servers = config.servers.items()
        self.links = [ServerLink(name, server, self._loop) for name, server in servers]
        self._thread = threading.Thread(target=self._run, name="mcp-servers", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def tools(self) -> dict[str, McpTool]:
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
        tasks = [asyncio.create_task(link.keep_connected()) for link in self.links]
        await self._stop.wait()
        for task in tasks:  # links still connecting as well
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


_connections: dict[tuple[int, Path], Connections] = {}
_starting = threading.Lock()


def close_all() -> None:
    """End this process's connections. Servers call it as they stop: uvicorn ends its process
    with the signal it was sent, so `atexit` (enough for waitress) never runs there."""
    for connections in list(_connections.values()):
        connections.close()


def connections_for(path: Path) -> Connections:
    """This process's connections to the servers `path` lists, started on first use."""
    with _starting:
        key = (os.getpid(), path)
        if key not in _connections:
            _connections[key] = Connections(McpConfig.read(path))
        return _connections[key]
