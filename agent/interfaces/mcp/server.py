"""The MCPServer (official `mcp` SDK) that serves pixloop's tools; transports are in `transport`."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from agent import __version__
from agent.interfaces.mcp.settings import ServerSettings
from agent.interfaces.mcp.tools import READ_ONLY, PixloopTools, tool_functions

INSTRUCTIONS = """\
pixloop makes images that check themselves: `generate` plans an image, renders it, reads it back with critics
(OCR for "quoted" text, reference and face critics for given photos, the size) and corrects it until every
check passes. `edit` changes an image only where asked; `check` runs the critics on any image; `story` makes an
illustrated document from a Markdown script; `report` reads a finished run again by its run_id. Images go in as
data:image/...;base64, URLs (or paths the server allows); results carry a preview and the full-size file paths.
"""


def build_server(settings: ServerSettings) -> MCPServer:
    """The server with its five tools; `settings` confine every path a client names."""
    server: MCPServer = MCPServer(name="pixloop", title="pixloop", version=__version__, instructions=INSTRUCTIONS,
                                  log_level="WARNING")
    for name, fn in tool_functions(PixloopTools(settings)).items():
        read_only = name in READ_ONLY
        server.add_tool(fn, name=name, structured_output=False,
                        annotations=ToolAnnotations(read_only_hint=read_only, destructive_hint=False,
                                                    idempotent_hint=read_only, open_world_hint=not read_only))
    return server


__all__ = ["INSTRUCTIONS", "build_server"]
