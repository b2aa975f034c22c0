"""An MCP server for the tests, over stdio or (`--http PORT`) Streamable HTTP on loopback, with
tools that answer, fail, hang, crash the server mid-call, and add a tool (telling the client
that its tools changed).

    python -m tests.mcp_server [--http PORT] [--outlive-stdin]

`--outlive-stdin` keeps the process running after its stdin closes, as some servers do, so that
only the app's own shutdown (its SIGTERM) ends it.
"""

import argparse
import asyncio
import os
import time

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("test-server", log_level="WARNING")


@server.tool()
def echo(text: str) -> str:
    """Say `text` back."""
    return f"echo: {text}"


@server.tool()
def refuse(reason: str) -> str:
    """Fail with `reason`, as a tool does when its arguments are wrong."""
    raise ToolError(reason)


@server.tool()
async def hang() -> str:
    """Never answer."""
    await asyncio.Event().wait()
    return "never"


@server.tool()
def crash() -> str:
    """End the server process in the middle of the call."""
    os._exit(3)


@server.tool()
async def grow(ctx: Context) -> str:
    """Add the tool `grown`, and tell the client its tools changed."""

    def grown() -> str:
        """A tool that was not there at start."""
        return "grown"

    server.add_tool(grown)
    await ctx.session.send_tool_list_changed()
    return "added grown"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, metavar="PORT")
    parser.add_argument("--outlive-stdin", action="store_true")
    options = parser.parse_args()
    if options.http:
        server.run("streamable-http", host="127.0.0.1", port=options.http)
    else:
        server.run("stdio")
    if options.outlive_stdin:
        time.sleep(3600)
