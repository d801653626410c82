"""`pixloop mcp`: pixloop's tools (generate, edit, check, story, report) for MCP clients, on the official SDK.

`settings` holds what the operator decides (confinement, configuration, defaults), `inputs` what a client may
name, `tools` the tool bodies, `progress` the notifications of long runs, `results` what a tool sends back,
`server` the MCPServer and `transport` stdio and streamable HTTP.
"""

from agent.interfaces.mcp.server import build_server
from agent.interfaces.mcp.settings import ServerSettings
from agent.interfaces.mcp.tools import TOOL_NAMES, PixloopTools

__all__ = ["TOOL_NAMES", "PixloopTools", "ServerSettings", "build_server"]
