"""A small MCP server of the app's own, over stdio: a notebook the model can read and write,
kept in memory while the server runs. `mcp.json` lists it; README "MCP servers" shows how.

    python -m {{ cookiecutter.package_name }}.mcp_example

Any MCP server is added the same way; this one only shows the parts: tools with typed
arguments, and `delete_note` marked destructive (MCP's `destructiveHint`).
"""

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("notes", log_level="WARNING")
notes: list[str] = []


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def list_notes() -> list[str]:
    """The notes taken so far, oldest first, each with its number."""
    return [f"{number}. {note}" for number, note in enumerate(notes, start=1)]


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False))
def add_note(text: str) -> str:
    """Write down a note; its number is returned."""
    notes.append(text.strip())
    return f"Note {len(notes)} saved."


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
def delete_note(number: int) -> str:
    """Delete the note with this number (from `list_notes`)."""
    if not 1 <= number <= len(notes):
        raise ToolError(f"there is no note {number}; there are {len(notes)}")
    deleted = notes.pop(number - 1)
    return f"Deleted note {number}: {deleted}"


if __name__ == "__main__":
    server.run("stdio")
