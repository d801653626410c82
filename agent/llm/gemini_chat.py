"""Native Gemini text/vision chat: POST /v1beta/models/{model}:generateContent.

Images go as `inlineData` parts, system turns as `systemInstruction`, structured output as
`responseMimeType: application/json` plus `responseJsonSchema` (JSON Schema; the older
OpenAPI-subset `responseSchema` on request). Thought parts are skipped; a blocked prompt
(`promptFeedback.blockReason`, HTTP 200 without candidates) and safety finish reasons become
`LLMBlocked`, MAX_TOKENS becomes `LLMTruncated` (shared/docs/backend-protocols.md §1).
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from agent.llm import (
    ChatMessage,
    ChatResult,
    HttpChat,
    LLMBlocked,
    LLMOutputError,
    LLMTruncated,
    image_payload,
    strict_schema,
)
from agent.llm.errors import AuthError, BadRequest, MalformedResponse, QuotaExhausted, RateLimited, ServerError
from agent.llm.json_output import extract_json
from agent.runtime.http import HttpSettings, Retryable, duration_seconds, error_detail, parse_retry_after
from agent.runtime.secrets import api_key as env_api_key

DEFAULT_BASE = "https://generativelanguage.googleapis.com/v1beta"
BLOCK_FINISH = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE",
                "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"}
_SCHEMA_DROP = {"additionalProperties", "title", "default", "$schema"}


def gemini_classifier(resp: httpx.Response) -> Any:
    """Google error bodies: RetryInfo.retryDelay as the retry hint, PerDay quotas and bad keys not retried."""
    status = resp.status_code
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if isinstance(body, list) and body:
        body = body[0]
    err = body.get("error", {}) if isinstance(body, dict) else {}
    details = err.get("details", []) if isinstance(err, dict) else []
    detail = error_detail(resp)
    retry_after = parse_retry_after(resp.headers)
    per_day = False
    for d in details if isinstance(details, list) else []:
        if not isinstance(d, dict):
            continue
        kind = str(d.get("@type", ""))
        if kind.endswith("RetryInfo") and d.get("retryDelay"):
            retry_after = duration_seconds(str(d["retryDelay"]))
        if kind.endswith("QuotaFailure"):
            per_day |= any("PerDay" in str(v.get("quotaId", "")) for v in d.get("violations", []) if isinstance(v, dict))
        if kind.endswith("ErrorInfo") and d.get("reason") in ("API_KEY_INVALID", "API_KEY_EXPIRED"):
            return AuthError(f"HTTP {status}: {detail}")
    if status == 429:
        if per_day:
            return QuotaExhausted(f"HTTP 429: {detail} (daily quota used up; retrying today cannot help)")
        return Retryable(RateLimited(f"HTTP 429: {detail}"), retry_after)
    if status in (408, 409) or status >= 500:
        return Retryable(ServerError(f"HTTP {status}: {detail}"), retry_after)
    if status in (401, 403):
        return AuthError(f"HTTP {status}: {detail}")
    return BadRequest(f"HTTP {status}: {detail}")


def openapi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema -> the OpenAPI subset of `responseSchema` (no additionalProperties, `nullable` flags)."""

    def conv(node: Any) -> Any:
        if isinstance(node, list):
            return [conv(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: conv(v) for k, v in node.items() if k not in _SCHEMA_DROP}
        t = out.get("type")
        if isinstance(t, list):
            kinds = [k for k in t if k != "null"]
            out["type"] = kinds[0] if kinds else "string"
            if "null" in t:
                out["nullable"] = True
        return out

    return conv(strict_schema(schema))


class GeminiChatClient(HttpChat):
    """Gemini generateContent with inline images and JSON-schema output; key from GEMINI_API_KEY/GOOGLE_API_KEY."""

    flavour = "gemini"

    def __init__(self, base_url: str | None, model: str, *, api_key: str | None = None,
                 settings: HttpSettings | None = None, schema_field: str = "responseJsonSchema",
                 thinking_level: str | None = None):
        if schema_field not in ("responseJsonSchema", "responseSchema"):
            raise ValueError("schema_field is responseJsonSchema or responseSchema")
        base = (base_url or DEFAULT_BASE).rstrip("/")
        if not base.endswith(("/v1beta", "/v1")):
            base += "/v1beta"
        self.model = model.removeprefix("models/")
        self.schema_field = schema_field
        self.thinking_level = thinking_level
        self._api_key = api_key
        super().__init__("chat:gemini", base, headers={}, settings=settings, classifier=gemini_classifier)

    def request_body(self, messages: list[ChatMessage], *, json_schema: dict[str, Any] | None = None,
                     temperature: float | None = 0.2, max_tokens: int = 1024) -> dict[str, Any]:
        """The generateContent body for a conversation."""
        system = [m.text for m in messages if m.role == "system"]
        contents = []
        for m in messages:
            if m.role == "system":
                continue
            parts: list[dict[str, Any]] = [{"text": m.text}] if m.text else []
            for img in m.images:
                mime, data = image_payload(img)
                parts.append({"inlineData": {"mimeType": mime, "data": base64.b64encode(data).decode("ascii")}})
            contents.append({"role": "model" if m.role == "assistant" else "user", "parts": parts})
        config: dict[str, Any] = {"maxOutputTokens": max_tokens}
        if temperature is not None:
            config["temperature"] = temperature
        if json_schema is not None:
            config["responseMimeType"] = "application/json"
            config[self.schema_field] = (strict_schema(json_schema) if self.schema_field == "responseJsonSchema"
                                         else openapi_schema(json_schema))
        if self.thinking_level:
            config["thinkingConfig"] = {"thinkingLevel": self.thinking_level}
        body: dict[str, Any] = {"contents": contents, "generationConfig": config}
        if system:
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        return body

    async def complete(self, messages: list[ChatMessage], *, json_schema: dict[str, Any] | None = None,
                       schema_name: str = "response", temperature: float | None = 0.2,
                       max_tokens: int = 1024) -> ChatResult:
        key = self._api_key or env_api_key("gemini")
        if not key:
            raise AuthError(f"{self.name}: no API key: set GEMINI_API_KEY (or GOOGLE_API_KEY)")
        body = self.request_body(messages, json_schema=json_schema, temperature=temperature, max_tokens=max_tokens)
        http = self.http()
        resp = await http.request("POST", f"/models/{self.model}:generateContent", json=body,
                                  headers={"x-goog-api-key": key})
        return self.parse_response(http.json(resp), want_json=json_schema is not None, max_tokens=max_tokens)

    def parse_response(self, body: Any, *, want_json: bool = False, max_tokens: int = 0) -> ChatResult:
        """Text of candidates[0] without thought parts, or the precise error the answer amounts to."""
        if isinstance(body, list) and body:
            body = body[0]
        if not isinstance(body, dict):
            raise MalformedResponse(f"{self.name}: expected a GenerateContentResponse, got {type(body).__name__}")
        model = str(body.get("modelVersion") or self.model)
        usage = self._usage(body.get("usageMetadata"))
        candidates = body.get("candidates") or []
        feedback = body.get("promptFeedback") or {}
        if not candidates:
            reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
            if reason:
                raise LLMBlocked(f"{self.name}: the prompt was blocked ({reason})", reason=str(reason))
            raise MalformedResponse(f"{self.name}: the answer has no candidates: {str(body)[:160]}")
        cand = candidates[0] if isinstance(candidates[0], dict) else {}
        finish = str(cand.get("finishReason") or "STOP")
        parts = (cand.get("content") or {}).get("parts") or []
        text = "".join(p.get("text", "") for p in parts
                       if isinstance(p, dict) and not p.get("thought") and isinstance(p.get("text"), str))
        if finish in BLOCK_FINISH:
            message = cand.get("finishMessage") or ""
            raise LLMBlocked(f"{self.name}: the answer was blocked ({finish}) {message}".strip(), reason=finish)
        if finish == "MAX_TOKENS":
            raise LLMTruncated(f"{self.name}: {model} stopped at the token limit (MAX_TOKENS, maxOutputTokens "
                               f"{max_tokens}); the answer is incomplete: raise max_tokens", text=text)
        if not text.strip():
            raise LLMOutputError(f"{self.name}: {model} returned no text (finishReason {finish})")
        parsed = None
        if want_json:
            try:
                parsed = extract_json(text)
            except ValueError:
                parsed = None
        normal = {"STOP": "stop", "MAX_TOKENS": "length"}.get(finish, finish.lower())
        return ChatResult(text=text, parsed=parsed, usage=usage, finish_reason=normal, raw_model=model)

    def _usage(self, raw: Any) -> dict[str, int]:
        if not isinstance(raw, dict):
            return {}
        names = {"promptTokenCount": "prompt_tokens", "candidatesTokenCount": "completion_tokens",
                 "totalTokenCount": "total_tokens", "thoughtsTokenCount": "reasoning_tokens"}
        usage = {ours: int(raw[theirs]) for theirs, ours in names.items() if isinstance(raw.get(theirs), (int, float))}
        self.usage.add_tokens(**usage)
        return usage


__all__ = ["GeminiChatClient", "gemini_classifier", "openapi_schema"]
