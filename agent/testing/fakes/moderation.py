"""Fake OpenAI moderation endpoint (`POST /v1/moderations`), served by the fake chat server.

It answers as OpenAI documents: `{"id", "model", "results": [{"flagged", "categories", "category_scores"}]}`,
one result per input (a string or a list of strings). An input is flagged when it contains one of the
configured words (option `moderation_flag`: "stolen,bomb" or a list; case-insensitive), under the category
`moderation_category` (default "illicit"). The chat server's faults and `api_key` option apply here too.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
              "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
              "violence/graphic")


def flag_words(options: dict[str, Any]) -> list[str]:
    raw = options.get("moderation_flag") or []
    words = raw.split(",") if isinstance(raw, str) else list(raw)
    return [w.strip().casefold() for w in words if w.strip()]


def moderation_result(text: str, options: dict[str, Any]) -> dict[str, Any]:
    """One OpenAI-shaped result for one input."""
    hit = any(w in text.casefold() for w in flag_words(options))
    flagged_cat = str(options.get("moderation_category") or "illicit")
    cats = {c: hit and c == flagged_cat for c in CATEGORIES}
    scores = {c: (0.93 if cats[c] else 0.0012) for c in CATEGORIES}
    return {"flagged": hit, "categories": cats, "category_scores": scores,
            "category_applied_input_types": {c: ["text"] for c in CATEGORIES}}


def make_handler(options: dict[str, Any], log: Any, guard: Callable[[Request], Awaitable[Response | None]]
                 ) -> Callable[[Request], Awaitable[Response]]:
    """The route handler; `guard` is the chat server's auth and fault check (a response ends the request)."""

    async def moderations(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            log.add(request.method, request.url.path, dict(request.headers), raw[:200].decode("latin-1"))
            return _error("We could not parse the JSON body of your request.")
        log.add(request.method, request.url.path, dict(request.headers), body)
        early = await guard(request)
        if early is not None:
            return early
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
            return _error("'input' must be a string or a non-empty array of strings", param="input")
        return JSONResponse({"id": "modr-fake", "model": str(body.get("model") or "omni-moderation-latest"),
                             "results": [moderation_result(t, options) for t in inputs]})

    return moderations


def _error(message: str, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": param,
                                   "code": None}}, status_code=400)


__all__ = ["CATEGORIES", "flag_words", "make_handler", "moderation_result"]
