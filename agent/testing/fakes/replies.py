"""HTTP replies the fakes share for faults that answer the request itself: a dropped connection, 429, 5xx and
an HTML proxy page (used by the ComfyUI and AUTOMATIC1111 fakes)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from agent.testing.faults import Fault


async def reset_connection(request: Request) -> Response:
    """Drop the TCP connection without an answer (the 'reset' fault), as a crashed server or proxy does."""
    transport = getattr(getattr(request.receive, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionResetError("fake reset")  # uvicorn answers 500 and closes: still a failed request
    transport.abort()
    await asyncio.sleep(0.01)
    return Response(status_code=500)


def request_fault_response(fault: Fault | None) -> Response | None:
    """The reply for a fault that answers the request itself (429, 5xx, HTML), or None."""
    if fault is None:
        return None
    if fault.kind == "429":
        wait = fault.value if fault.value is not None else 1
        return JSONResponse({"error": {"type": "rate_limited", "message": "Too many requests, slow down"}},
                            status_code=429, headers={"Retry-After": f"{wait:g}"})
    if fault.kind == "500":
        return Response("500 Internal Server Error\n\nServer got itself in trouble", status_code=500,
                        media_type="text/plain")
    if fault.kind == "503":
        return JSONResponse({"error": {"type": "unavailable", "message": "Service Unavailable"}}, status_code=503)
    if fault.kind == "html":
        return Response("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
                        "</h1></center><hr><center>nginx</center></body></html>", status_code=502,
                        media_type="text/html")
    return None
