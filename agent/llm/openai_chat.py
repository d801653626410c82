"""OpenAI-compatible chat completions with image input and JSON-schema output.

One client for OpenAI, vLLM, Ollama, LM Studio and Gemini's OpenAI-compatible endpoint
(shared/docs/backend-protocols.md §3). Flavour differences handled here: OpenAI wants
`max_completion_tokens` (reasoning models reject `max_tokens`), the others read `max_tokens`;
Ollama takes images only as data URLs (so every flavour gets data URLs); vLLM has a flat
`{"object": "error"}` body besides the nested `{"error": {...}}` one; the key is required
for OpenAI and Gemini, optional for local servers.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from agent.llm import (
    ChatMessage,
    ChatResult,
    HttpChat,
    LLMBlocked,
    LLMOutputError,
    LLMRefusal,
    LLMTruncated,
    data_url,
    detect_flavour,
    strict_schema,
)
from agent.llm.errors import AuthError, BadRequest, MalformedResponse, QuotaExhausted, RateLimited, ServerError
from agent.llm.json_output import extract_json
from agent.runtime.http import HttpSettings, Retryable, duration_seconds, error_detail, parse_retry_after
from agent.runtime.secrets import api_key as env_api_key

_SAFETY_CODES = {"content_filter", "content_policy_violation", "moderation_blocked", "safety"}
_TRY_AGAIN = re.compile(r"try again in\s+((?:[\d.]+\s*(?:ms|s|m|h)\s*)+)", re.IGNORECASE)


def _error_object(resp: httpx.Response) -> dict[str, Any]:
    """The error dict of a nested (`{"error": {...}}`), flat vLLM (`{"object": "error", ...}`) or listed body."""
    try:
        body = resp.json()
    except ValueError:
        return {}
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return {}
    err = body.get("error")
    if isinstance(err, dict):
        return err
    if body.get("object") == "error" or "message" in body:
        return body
    return {"message": err} if isinstance(err, str) else {}


def openai_classifier(resp: httpx.Response) -> Any:
    """Map OpenAI-style error bodies to precise errors; 429/5xx are retryable with the server's hint."""
    status = resp.status_code
    err = _error_object(resp)
    code = str(err.get("code") or "").lower()
    etype = str(err.get("type") or "").lower()
    detail = error_detail(resp)
    if "insufficient_quota" in (code, etype):
        return QuotaExhausted(f"HTTP {status}: {detail} (billing quota exhausted; retrying cannot help)")
    if status == 429:
        hint = parse_retry_after(resp.headers)
        m = _TRY_AGAIN.search(str(err.get("message") or ""))
        if hint is None and m:
            hint = duration_seconds(m.group(1))
        return Retryable(RateLimited(f"HTTP 429: {detail}"), hint)
    if status in (408, 409) or status >= 500:
        return Retryable(ServerError(f"HTTP {status}: {detail}"), parse_retry_after(resp.headers))
    if status in (401, 403):
        return AuthError(f"HTTP {status}: {detail}")
    if code in _SAFETY_CODES or etype in _SAFETY_CODES:
        return LLMBlocked(f"HTTP {status}: {detail}", reason=code or etype)
    return BadRequest(f"HTTP {status}: {detail}")


def _content_text(content: Any) -> tuple[str, str]:
    """(text, refusal) from `message.content` given as a string or a list of parts."""
    if content is None:
        return "", ""
    if isinstance(content, str):
        return content, ""
    texts, refusals = [], []
    for part in content if isinstance(content, list) else [content]:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            if part.get("type") == "refusal" or "refusal" in part and part.get("refusal"):
                refusals.append(str(part.get("refusal") or ""))
            elif isinstance(part.get("text"), str):
                texts.append(part["text"])
    return "".join(texts), " ".join(refusals)


class OpenAIChatClient(HttpChat):
    """POST {base_url}/chat/completions; images as data-URL content parts, strict json_schema output."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, flavour: str | None = None,
                 settings: HttpSettings | None = None, image_detail: str | None = None,
                 extra_body: dict[str, Any] | None = None):
        self.flavour = flavour or detect_flavour(base_url)
        if self.flavour == "gemini":
            raise ValueError("the native Gemini API is GeminiChatClient; for this client use the "
                             "OpenAI-compatible base URL .../v1beta/openai/")
        self.model = model
        self.image_detail = image_detail
        self.extra_body = extra_body or {}
        self._api_key = api_key
        super().__init__(f"chat:{self.flavour}", base_url, headers={}, settings=settings,
                         classifier=openai_classifier)

    def _auth_headers(self) -> dict[str, str]:
        provider = "gemini" if self.flavour == "gemini-compat" else "openai"
        key = self._api_key or env_api_key(provider)
        if not key and self.flavour in ("openai", "gemini-compat"):
            var = "GEMINI_API_KEY" if provider == "gemini" else "OPENAI_API_KEY"
            raise AuthError(f"{self.name}: no API key: set {var}")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _message(self, m: ChatMessage) -> dict[str, Any]:
        if not m.images:
            return {"role": m.role, "content": m.text}
        if m.role != "user":
            raise ValueError(f"images can only be sent on user messages, not {m.role!r}")
        parts: list[dict[str, Any]] = [{"type": "text", "text": m.text}] if m.text else []
        for img in m.images:
            image_url: dict[str, Any] = {"url": data_url(img)}
            if self.image_detail:
                image_url["detail"] = self.image_detail
            parts.append({"type": "image_url", "image_url": image_url})
        return {"role": m.role, "content": parts}

    def request_body(self, messages: list[ChatMessage], *, json_schema: dict[str, Any] | None = None,
                     schema_name: str = "response", temperature: float | None = 0.2,
                     max_tokens: int = 1024) -> dict[str, Any]:
        """The JSON body for one completion (public so tests and debugging can see the exact shape)."""
        body: dict[str, Any] = {"model": self.model, "messages": [self._message(m) for m in messages],
                                "stream": False}
        if temperature is not None:
            body["temperature"] = temperature
        body["max_completion_tokens" if self.flavour == "openai" else "max_tokens"] = max_tokens
        if json_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": re.sub(r"[^a-zA-Z0-9_-]", "_", schema_name)[:64], "schema": strict_schema(json_schema),
                "strict": True}}
        return {**body, **self.extra_body}

    async def complete(self, messages: list[ChatMessage], *, json_schema: dict[str, Any] | None = None,
                       schema_name: str = "response", temperature: float | None = 0.2,
                       max_tokens: int = 1024) -> ChatResult:
        body = self.request_body(messages, json_schema=json_schema, schema_name=schema_name,
                                 temperature=temperature, max_tokens=max_tokens)
        http = self.http()
        resp = await http.request("POST", "/chat/completions", json=body, headers=self._auth_headers())
        return self.parse_response(http.json(resp), max_tokens=max_tokens, want_json=json_schema is not None)

    def parse_response(self, body: Any, *, max_tokens: int = 0, want_json: bool = False) -> ChatResult:
        """A ChatResult from a chat.completion body, or the precise error it amounts to."""
        if not isinstance(body, dict):
            raise MalformedResponse(f"{self.name}: expected a chat.completion object, got {type(body).__name__}")
        if body.get("object") == "error" or (isinstance(body.get("error"), dict) and not body.get("choices")):
            err = body.get("error")
            if not isinstance(err, dict):
                err = body
            raise BadRequest(f"{self.name}: error in a 200 answer: {err.get('type') or ''} "
                             f"{err.get('message') or err}".strip())
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise MalformedResponse(f"{self.name}: the answer has no choices: {str(body)[:160]}")
        choice = choices[0]
        message = choice.get("message") or {}
        finish = str(choice.get("finish_reason") or "stop")
        text, part_refusal = _content_text(message.get("content"))
        refusal = message.get("refusal") or part_refusal
        model = str(body.get("model") or self.model)
        usage = self._usage(body.get("usage"))
        if refusal:
            raise LLMRefusal(f"{self.name}: {model} refused: {str(refusal)[:300]}", refusal=str(refusal))
        if finish == "length":
            raise LLMTruncated(f"{self.name}: {model} stopped at the token limit (finish_reason 'length', "
                               f"max_tokens {max_tokens}); the answer is incomplete: raise max_tokens", text=text)
        if finish == "content_filter":
            raise LLMBlocked(f"{self.name}: {model}'s answer was withheld by the content filter",
                             reason="content_filter")
        if not text.strip():
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            hint = " (only reasoning text came back: raise max_tokens)" if reasoning else ""
            raise LLMOutputError(f"{self.name}: {model} returned an empty answer{hint}")
        parsed = None
        if want_json:
            try:
                parsed = extract_json(text)
            except ValueError:
                parsed = None
        return ChatResult(text=text, parsed=parsed, usage=usage, finish_reason=finish, raw_model=model)

    def _usage(self, raw: Any) -> dict[str, int]:
        if not isinstance(raw, dict):
            return {}
        usage = {k: int(raw[k]) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
                 if isinstance(raw.get(k), (int, float))}
        details = raw.get("completion_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), (int, float)):
            usage["reasoning_tokens"] = int(details["reasoning_tokens"])
        self.usage.add_tokens(**usage)
        return usage


__all__ = ["OpenAIChatClient", "openai_classifier"]
