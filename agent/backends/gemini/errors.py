"""Google error answers as pixloop's exceptions: bad keys, per-day quotas, retired models, RetryInfo delays."""

from __future__ import annotations

from typing import Any

import httpx

from agent.backends.errors import AuthError, BadRequest, QuotaExhausted, RateLimited, ServerError
from agent.backends.gemini.models import MODELS, RETIRED
from agent.models.errors import BackendError
from agent.runtime.http import Retryable, duration_seconds, error_detail, parse_retry_after


def google_error(resp: httpx.Response) -> dict[str, Any]:
    """The `error` object of a Google error body (also when wrapped in a one-element list), or {}."""
    try:
        body = resp.json()
    except ValueError:
        return {}
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else {}


def _details(err: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [d for d in err.get("details") or [] if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)]


def retry_delay(err: dict[str, Any]) -> float | None:
    """Seconds from `RetryInfo.retryDelay` ('37s', '0.5s', or {'seconds': 37})."""
    for info in _details(err, "RetryInfo"):
        delay = info.get("retryDelay")
        if isinstance(delay, str):
            return duration_seconds(delay)
        if isinstance(delay, dict):
            return float(delay.get("seconds", 0)) + float(delay.get("nanos", 0)) / 1e9
    return None


def quota_ids(err: dict[str, Any]) -> list[str]:
    return [str(v.get("quotaId", "")) for q in _details(err, "QuotaFailure") for v in q.get("violations") or []]


def error_reasons(err: dict[str, Any]) -> list[str]:
    return [str(d.get("reason", "")) for d in _details(err, "ErrorInfo")]


def classify(resp: httpx.Response) -> BackendError | Retryable | None:
    """Map a Google error response to pixloop's exceptions; retryable ones carry Google's retryDelay."""
    status = resp.status_code
    err = google_error(resp)
    detail = error_detail(resp)
    message = f"HTTP {status}: {detail}"
    if "API_KEY_INVALID" in error_reasons(err) or "API key not valid" in str(err.get("message", "")):
        return AuthError(f"{message} (check GEMINI_API_KEY / GOOGLE_API_KEY)")
    if status == 429:
        ids = quota_ids(err)
        if any("PerDay" in q for q in ids):
            day = next(q for q in ids if "PerDay" in q)
            return QuotaExhausted(f"{message} (daily quota {day} is used up; retrying today will not help)")
        if "limit: 0" in str(err.get("message", "")):
            return QuotaExhausted(f"{message} (this key has no quota for image models; enable billing)")
        return Retryable(RateLimited(message), retry_delay(err) or parse_retry_after(resp.headers))
    if status in (408, 409) or status >= 500:
        return Retryable(ServerError(message), retry_delay(err) or parse_retry_after(resp.headers))
    if status in (401, 403):
        return AuthError(f"{message} (the key lacks access to this model or API)")
    if status == 404:
        model = resp.request.url.path.rpartition("/")[2].partition(":")[0] if resp.request else "?"
        hint = (f"{model} was shut down; use {RETIRED[model]}" if model in RETIRED
                else f"model {model!r} is unknown or retired; pick one of {', '.join(MODELS)} (--model)")
        return BadRequest(f"{message} ({hint})")
    if err.get("status") == "FAILED_PRECONDITION":
        return BadRequest(f"{message} (billing or region not enabled for this key)")
    return BadRequest(message)


__all__ = ["classify", "error_reasons", "google_error", "quota_ids", "retry_delay"]
