"""OpenAI error answers as pixloop's exceptions: moderation, quota, keys, rate limits and retry hints."""

from __future__ import annotations

import re
from typing import Any

import httpx

from agent.backends.errors import AuthError, BadRequest, QuotaExhausted, RateLimited, SafetyBlocked, ServerError
from agent.models.errors import BackendError
from agent.runtime.http import Retryable, duration_seconds, parse_retry_after

_TRY_AGAIN = re.compile(r"try again in\s+((?:[\d.]+\s*(?:ms|s|m|h)\s*)+)", re.I)


def _error_fields(resp: httpx.Response) -> tuple[dict[str, Any], str]:
    """The `error` object of an OpenAI error body (empty for HTML) and a readable one-line detail."""
    try:
        body = resp.json()
    except ValueError:
        text = re.sub(r"<[^>]+>", " ", resp.text or "")
        text = re.sub(r"\s+", " ", text).strip()[:200]
        return {}, f"{text or resp.reason_phrase or 'no body'} (non-JSON body)"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return {}, str(body)[:300]
    label = err.get("code") or err.get("type") or ""
    return err, f"{label}: {err.get('message') or ''}".strip(": ")[:400]


def retry_hint(resp: httpx.Response, message: str) -> float | None:
    """Seconds to wait before retrying: retry-after-ms / retry-after, 'try again in 20s', x-ratelimit-reset-*."""
    wait = parse_retry_after(resp.headers)
    if wait is not None:
        return wait
    m = _TRY_AGAIN.search(message or "")
    if m:
        return duration_seconds(m.group(1))
    for kind in ("requests", "tokens"):
        if resp.headers.get(f"x-ratelimit-remaining-{kind}") == "0":
            reset = resp.headers.get(f"x-ratelimit-reset-{kind}")
            if reset:
                return duration_seconds(reset)
    return None


def classify_openai_error(resp: httpx.Response) -> BackendError | Retryable | None:
    """Map an OpenAI error answer to the precise exception; rate limits and 5xx come back retryable."""
    status = resp.status_code
    err, detail = _error_fields(resp)
    code, etype = str(err.get("code") or ""), str(err.get("type") or "")
    where = f"HTTP {status} {detail}"
    if resp.headers.get("x-request-id"):
        where += f" (request {resp.headers['x-request-id']})"
    if code in ("moderation_blocked", "content_policy_violation"):
        return SafetyBlocked(f"the safety system rejected the request: {where}", reason=code)
    if "insufficient_quota" in (code, etype):
        return QuotaExhausted(f"quota exhausted, check the plan and billing: {where}")
    if status == 401:
        return AuthError(f"the API key was rejected (OPENAI_API_KEY): {where}")
    if status == 403:
        return AuthError(f"access denied (GPT image models need a verified organization): {where}")
    should_retry = resp.headers.get("x-should-retry")
    error: BackendError
    if status == 429:
        error = RateLimited(f"rate limited: {where}")
    elif status in (408, 409) or status >= 500:
        error = ServerError(where)
    elif status == 404:
        return BadRequest(f"not found (unknown or retired model?): {where}")
    else:
        error = BadRequest(where)
    if should_retry == "false":
        return error
    if isinstance(error, BadRequest) and should_retry != "true":
        return error
    return Retryable(error, retry_hint(resp, str(err.get("message") or "")))


__all__ = ["classify_openai_error", "retry_hint"]
