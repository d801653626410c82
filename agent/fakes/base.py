"""Shared parts of the fake servers: fault plans, request recording, rendering and a threaded runner."""

from __future__ import annotations

import asyncio
import functools
import io
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

FAULT_KINDS = {
    "429": "rate limited, with Retry-After VALUE seconds (default 1) and the vendor's own hint",
    "500": "internal server error",
    "503": "overloaded / unavailable",
    "slow": "sleep VALUE seconds (default 2) before answering (trips client read timeouts)",
    "safety": "the provider's safety block for this protocol",
    "malformed": "a 200 with a body that is not valid JSON",
    "html": "a 502 with an HTML body, as an edge proxy sends",
    "truncated": "a 200 whose image data is cut in half",
    "wrong_size": "an image of half the requested size",
    "no_image": "a 200 with text but no image",
    "quota": "a non-retryable quota error (per-day quota / insufficient_quota)",
    "reset": "close the connection without an answer",
}


@dataclass
class Fault:
    """One injected failure: KIND[=VALUE][*COUNT], e.g. '429=2*1', 'slow=0.5', '500*2'."""

    kind: str
    value: float | None = None
    count: int = 1

    @classmethod
    def parse(cls, spec: str) -> "Fault":
        m = re.fullmatch(r"\s*([a-z_0-9]+)(?:=([\d.]+))?(?:\*(\d+))?\s*", spec)
        if not m or m.group(1) not in FAULT_KINDS:
            kinds = ", ".join(FAULT_KINDS)
            raise ValueError(f"bad fault {spec!r}: expected KIND[=VALUE][*COUNT] with KIND one of {kinds}")
        return cls(m.group(1), float(m.group(2)) if m.group(2) else None, int(m.group(3) or 1))


@dataclass
class FaultPlan:
    """Faults served in order, each to COUNT consecutive generation requests, then normal answers."""

    faults: list[Fault] = field(default_factory=list)
    latency: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def parse(cls, specs: list[str] | None = None, latency: float = 0.0) -> "FaultPlan":
        return cls([Fault.parse(s) for s in specs or []], latency)

    def add(self, spec: str) -> None:
        with self._lock:
            self.faults.append(Fault.parse(spec))

    def next(self) -> Fault | None:
        """The fault for the next generation request, if any (consumes one count)."""
        with self._lock:
            while self.faults and self.faults[0].count <= 0:
                self.faults.pop(0)
            if not self.faults:
                return None
            fault = self.faults[0]
            fault.count -= 1
            return Fault(fault.kind, fault.value, 1)


@dataclass
class Recorded:
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
    """A real image for a prompt: quoted strings are set as text, style words picked up, as a model might.

    Identical requests are answered from a small cache, so a load test measures the client, not the renderer.
    """
    if references:
        return _render(prompt, width, height, seed, fmt)
    return _cached_render(prompt, width, height, seed, fmt)


@functools.lru_cache(maxsize=32)
def _cached_render(prompt: str, width: int, height: int, seed: int, fmt: str) -> bytes:
    return _render(prompt, width, height, seed, fmt)


def _render(prompt: str, width: int, height: int, seed: int, fmt: str) -> bytes:
    from agent.backends.compose import render
    from agent.planner import _layout, _style, extract_quoted
    from agent.state import ASPECT_RATIOS, Plan, TextElement

    base, _, correction = prompt.partition("Correction for attempt")
    texts = extract_quoted(base)[:4]
    style, _ = _style(base, seed)
    if correction:
        style = _follow_feedback(style, correction)
    boxes, _ = _layout(len(texts), 0, width / max(1, height) >= 1.7)
    roles = ["headline", "subheading", "body", "cta"]
    elements = [TextElement(id=f"t{i}", content=t, role=roles[min(i, 3)], region=boxes[i]) for i, t in enumerate(texts)]
    ratio = min(ASPECT_RATIOS, key=lambda r: abs(int(r.split(":")[0]) / int(r.split(":")[1]) - width / height))
    plan = Plan(prompt=prompt, width=width, height=height, aspect_ratio=ratio, size="1K", text=elements, style=style)
    img, _ = render(plan, seed, None)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format=fmt, **({"quality": 92} if fmt.upper() == "JPEG" else {}))
    return buf.getvalue()


def _follow_feedback(style: Any, correction: str) -> Any:
    """Apply the legibility feedback of a correction prompt, as a cooperative model would."""
    from agent.planner import contrasting_text

    text = correction.lower()
    update: dict[str, Any] = {}
    if "bold" in text or "heavier" in text or "font" in text:
        update["font"] = "lato-black"
    if "contrast" in text:
        update["text_color"] = contrasting_text(style.palette)
    if "large" in text or "enlarge" in text:
        update["text_scale"] = 0.9
    if "plate" in text:
        update["text_plate"] = True
    if "outline" in text:
        update["text_outline"] = True
    return style.model_copy(update=update)


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

    def start(self, timeout: float = 30.0) -> "FakeServer":
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

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


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
