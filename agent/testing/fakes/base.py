"""Shared parts of the fake servers: request recording, rendering and a threaded runner (faults:
`agent.testing.faults`; uvicorn is imported only when a server starts)."""

from __future__ import annotations

import asyncio
import functools
import io
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

from PIL import Image

from agent.testing.fakes.editing import render_image
from agent.testing.faults import Fault, FaultPlan


@dataclass
class Recorded:
    """One request a fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class RequestLog:
    """Every request a fake received (auth headers masked), for tests to assert on."""

    def __init__(self) -> None:
        self.items: list[Recorded] = []
        self._lock = threading.Lock()

    def add(self, method: str, path: str, headers: dict[str, str], body: Any) -> None:
        masked = {k: ("***" if k.lower() in ("authorization", "x-goog-api-key", "api-key") else v)
                  for k, v in headers.items()}
        with self._lock:
            self.items.append(Recorded(method, path, masked, body))

    def paths(self) -> list[str]:
        return [r.path for r in self.items]


def fake_render(prompt: str, width: int, height: int, seed: int = 0, fmt: str = "PNG",
                references: list[Image.Image] | None = None) -> bytes:
    """A real image for a prompt, encoded: quoted strings are set as text, style words picked up and each
    reference image placed in the canvas, as a model might (`editing.render_image`).

    Identical requests without references are answered from a small cache, so a load test measures the
    client, not the renderer.
    """
    if references:
        return encode(render_image(prompt, width, height, seed, references), fmt)
    return _cached_render(prompt, width, height, seed, fmt)


@functools.lru_cache(maxsize=32)
def _cached_render(prompt: str, width: int, height: int, seed: int, fmt: str) -> bytes:
    return encode(render_image(prompt, width, height, seed), fmt)


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    """An image as RGB file bytes (JPEG at quality 92)."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format=fmt, **({"quality": 92} if fmt.upper() == "JPEG" else {}))
    return buf.getvalue()


class FakeServer:
    """Runs an ASGI app with uvicorn on 127.0.0.1 in a background thread; `url` is known once started."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("fake servers bind to loopback only")
        self.app = app
        self.config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                     ws="websockets-sansio")
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def start(self, timeout: float = 30.0) -> FakeServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("fake server failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError("fake server did not start in time")
            time.sleep(0.01)
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class FakeService:
    """One fake protocol on a loopback port, for `with` in tests: its app is `create_app(FaultPlan.parse(faults),
    **options)`; `base_url` is the server's URL plus the API's path prefix (e.g. "/v1" for OpenAI-compatible
    clients), `bodies` the JSON bodies it received, oldest first."""

    def __init__(self, create_app: Any, *, prefix: str = "", faults: Sequence[str] = (), **options: Any):
        self.app = create_app(FaultPlan.parse(list(faults)), **options)
        self.server = FakeServer(self.app)
        self.prefix = prefix

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()

    @property
    def base_url(self) -> str:
        return self.server.url + self.prefix

    @property
    def bodies(self) -> list[Any]:
        return [r.body for r in self.app.state.requests.items]


def serve(app: Any, port: int = 0) -> None:
    """Serve an app in the foreground (the CLI); prints the bound URL first."""
    server = FakeServer(app, port=port).start()
    print(f"listening on {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        while server.thread.is_alive():
            server.thread.join(timeout=0.5)
    except KeyboardInterrupt:
        server.stop()


async def apply_delay(faults: FaultPlan, fault: Fault | None) -> None:
    """Base latency plus a 'slow' fault's extra sleep."""
    delay = faults.latency + ((fault.value or 2.0) if fault and fault.kind == "slow" else 0.0)
    if delay > 0:
        await asyncio.sleep(delay)


__all__ = ["Fault", "FaultPlan", "FakeServer", "FakeService", "RequestLog", "Recorded", "apply_delay", "encode", "fake_render",
           "serve"]
