"""How `pixloop mcp` is reached: stdio (a client starts it as a subprocess) or streamable HTTP on a port.

HTTP binds loopback unless the operator names another host. The socket is bound and listening before the URL is
announced, so a caller that reads the URL (port 0 picks a free one) can connect at once: connections wait in the
backlog until uvicorn serves them.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from mcp.server.mcpserver import MCPServer

MCP_PATH = "/mcp"
SHUTDOWN_GRACE_S = 5
"""Seconds open streams get to finish when the server is stopped (an idle client's event stream never would)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one); OSError when the address cannot be used."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{MCP_PATH}"


async def serve_http(server: MCPServer, sock: socket.socket, announce: Callable[[str], None] | None = None) -> None:
    """Serve MCP over streamable HTTP on a bound socket until stopped (SIGINT/SIGTERM)."""
    host = sock.getsockname()[0]
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    if announce is not None:
        announce(url_of(sock))
    with stop_signals_end_here():
        await uvicorn.Server(config).serve(sockets=[sock])


@contextmanager
def stop_signals_end_here() -> Iterator[None]:
    """uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again for the handler it found, to
    stop the program the usual way; under `asyncio.run` that interrupts the loop while the app's lifespan is still
    closing (a traceback, exit 130). With the signals ignored underneath, the graceful shutdown is the end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in stops}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def serve_stdio(server: MCPServer) -> None:
    """Serve MCP on stdin/stdout until the client closes them (the SDK keeps stray prints off the wire)."""
    await server.run_stdio_async()


def say(line: str) -> None:
    print(f"pixloop mcp: {line}", file=sys.stderr, flush=True)


__all__ = ["MCP_PATH", "bind", "is_loopback", "say", "serve_http", "serve_stdio", "url_of"]
