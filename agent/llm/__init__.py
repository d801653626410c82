"""Chat clients for the LLM planner, the prompt rewriter and the VLM judge.

One small protocol, `ChatClient.complete(messages, json_schema=...) -> ChatResult`, with two
implementations: `OpenAIChatClient` (OpenAI, vLLM, Ollama, LM Studio, Gemini's OpenAI-compatible
endpoint) and `GeminiChatClient` (native generateContent). Both take images (bytes or PIL) and go
through the shared `agent.runtime.http.HttpClient` for timeouts, retries and redaction. Errors are
`LLMError`s (`agent.llm.errors`): `LLMRefusal`, `LLMTruncated`, `LLMBlocked`, `LLMOutputError` and the
HTTP failure kinds; a chat model's failure is never an image-backend error.
"""

from __future__ import annotations

from typing import Any

from agent.llm.base import ChatClient, ChatMessage, ChatResult, HttpChat, ImageInput, Role
from agent.llm.errors import LLMBlocked, LLMError, LLMOutputError, LLMRefusal, LLMTruncated
from agent.llm.factory import (
    FLAVOURS,
    client_from_config,
    complete_sync,
    detect_flavour,
    llm_settings,
    make_chat_client,
    run_sync,
)
from agent.llm.payload import data_url, downscale, image_payload, strict_schema
from agent.llm.rewrite import rewrite_prompt, spell_out
from agent.runtime.images import sniff_mime


def __getattr__(name: str) -> Any:
    if name == "OpenAIChatClient":
        from agent.llm.openai_chat import OpenAIChatClient

        return OpenAIChatClient
    if name == "GeminiChatClient":
        from agent.llm.gemini_chat import GeminiChatClient

        return GeminiChatClient
    raise AttributeError(name)


__all__ = [
    "ChatClient", "ChatMessage", "ChatResult", "FLAVOURS", "GeminiChatClient", "HttpChat", "ImageInput", "LLMBlocked",
    "LLMError", "LLMOutputError", "LLMRefusal", "LLMTruncated", "OpenAIChatClient", "Role", "client_from_config",
    "complete_sync", "data_url", "detect_flavour", "downscale", "image_payload", "llm_settings", "make_chat_client",
    "rewrite_prompt", "run_sync", "sniff_mime", "spell_out", "strict_schema",
]
