"""Making a chat client for an endpoint, and calling one from sync code (graph nodes run in worker threads)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from agent.llm.base import ChatClient, ChatMessage, ChatResult
from agent.models.errors import ConfigError, LLMError
from agent.runtime.http import HttpSettings

T = TypeVar("T")

Flavour = Literal["openai", "vllm", "ollama", "lmstudio", "gemini-compat", "gemini"]
FLAVOURS: tuple[str, ...] = Flavour.__args__  # type: ignore[attr-defined]


def detect_flavour(base_url: str) -> str:
    """The server kind from a base URL; any unknown server is treated like vLLM (generic OpenAI-compatible)."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host.endswith("generativelanguage.googleapis.com"):
        return "gemini-compat" if "/openai" in parts.path else "gemini"
    if host.endswith("openai.com"):
        return "openai"
    if parts.port == 11434 or "ollama" in host:
        return "ollama"
    if parts.port == 1234 or "lmstudio" in host:
        return "lmstudio"
    return "vllm"


def llm_settings(options: dict[str, Any] | None) -> HttpSettings:
    """HttpSettings from `llm_`-prefixed options (llm_read_timeout, llm_max_attempts, llm_backoff_initial, ...)."""
    options = options or {}
    fields = {name: options[f"llm_{name}"] for name in HttpSettings.model_fields if f"llm_{name}" in options}
    return HttpSettings(**{"read_timeout": 120.0, **fields})


def make_chat_client(base_url: str, model: str, *, flavour: str | None = None, api_key: str | None = None,
                     settings: HttpSettings | None = None) -> ChatClient:
    """The right client for an endpoint: native Gemini for generativelanguage URLs, OpenAI-compatible otherwise."""
    flavour = flavour or detect_flavour(base_url)
    if flavour not in FLAVOURS:
        raise ConfigError(f"unknown chat flavour {flavour!r}; choose one of {', '.join(FLAVOURS)}")
    if flavour == "gemini":
        from agent.llm.gemini_chat import GeminiChatClient

        return GeminiChatClient(base_url, model, api_key=api_key, settings=settings)
    from agent.llm.openai_chat import OpenAIChatClient

    return OpenAIChatClient(base_url, model, api_key=api_key, flavour=flavour, settings=settings)


def client_from_config(config: Any) -> ChatClient:
    """A chat client from a PixloopConfig's llm_base_url / llm_model (and llm_* options)."""
    if not getattr(config, "llm_base_url", None) or not getattr(config, "llm_model", None):
        raise LLMError("no chat model configured: set llm_base_url and llm_model "
                       "(e.g. http://localhost:11434/v1 and a vision model id)")
    options = getattr(config, "options", None) or {}
    return make_chat_client(config.llm_base_url, config.llm_model, flavour=options.get("llm_flavour"),
                            settings=llm_settings(options))


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from sync code (graph nodes run in worker threads); safe when a loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()  # type: ignore[arg-type]


def complete_sync(client: ChatClient, messages: list[ChatMessage], **kwargs: Any) -> ChatResult:
    """`client.complete` from sync code; the connections opened for it are closed afterwards."""

    async def go() -> ChatResult:
        try:
            return await client.complete(messages, **kwargs)
        finally:
            await client.aclose()

    return run_sync(go)


__all__ = ["FLAVOURS", "Flavour", "client_from_config", "complete_sync", "detect_flavour", "llm_settings",
           "make_chat_client", "run_sync"]
