"""The chat-client protocol and the plumbing the HTTP clients share.

`ChatClient.complete(messages, json_schema=...) -> ChatResult` is all the planner, the judge and the
prompt rewriter use; `HttpChat` gives each HTTP client one `HttpClient` per event loop, raising the
LLM variants of the HTTP failure kinds (`agent.llm.errors`), never backend errors.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from PIL import Image

from agent.llm.errors import VARIANTS
from agent.runtime.http import ErrorClassifier, HttpClient, HttpSettings, Usage

Role = Literal["system", "user", "assistant"]
ImageInput = bytes | bytearray | Image.Image


@dataclass
class ChatMessage:
    """One chat turn; images (PNG/JPEG/WebP bytes or PIL images) go only on user turns."""

    role: Role
    text: str
    images: list[ImageInput] = field(default_factory=list)


@dataclass
class ChatResult:
    """A model's answer: the text, the parsed JSON (when a schema was asked for and it parsed), usage."""

    text: str
    parsed: Any = None
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str = "stop"
    raw_model: str = ""


@runtime_checkable
class ChatClient(Protocol):
    model: str

    async def complete(self, messages: list[ChatMessage], *, json_schema: dict[str, Any] | None = None,
                       schema_name: str = "response", temperature: float | None = 0.2,
                       max_tokens: int = 1024) -> ChatResult:
        """One completion; with `json_schema` the server is asked for structured output."""
        ...

    async def aclose(self) -> None:
        """Close the connections this event loop opened."""
        ...


class HttpChat:
    """Shared plumbing of the HTTP chat clients: one HttpClient per event loop, one usage tally.

    Sync callers run each call in a fresh event loop (`complete_sync`); `aclose()` closes and
    forgets only the current loop's connections, so concurrent threads never close each other's.
    """

    def __init__(self, name: str, base_url: str, *, headers: dict[str, str], settings: HttpSettings | None,
                 classifier: ErrorClassifier):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.settings = settings or HttpSettings(read_timeout=120.0)
        self.usage = Usage()
        self._headers = headers
        self._classifier = classifier
        self._https: dict[asyncio.AbstractEventLoop, HttpClient] = {}
        self._lock = threading.Lock()

    def http(self) -> HttpClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            for stale in [lp for lp in self._https if lp.is_closed()]:
                del self._https[stale]
            client = self._https.get(loop)
            if client is None:
                client = HttpClient(self.name, self.base_url, headers=self._headers, settings=self.settings,
                                    classifier=self._classifier, family=VARIANTS)
                client.usage = self.usage
                self._https[loop] = client
            return client

    async def aclose(self) -> None:
        with self._lock:
            client = self._https.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


__all__ = ["ChatClient", "ChatMessage", "ChatResult", "HttpChat", "ImageInput", "Role"]
