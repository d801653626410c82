"""An optional OpenAI-compatible moderation endpoint: `POST {base}/moderations` with `{"model", "input"}`.

The answer is OpenAI's: `{"results": [{"flagged": bool, "categories": {name: bool}, "category_scores":
{name: float}}]}`. A flagged input is refused by the rule `moderation.<category>` (the flagged category with
the highest score). The client uses the shared HTTP plumbing (retries, deadlines, redaction) through
`agent.llm.HttpChat`, with OpenAI's error classifier, so its failures are the LLM variants of the HTTP kinds.

An endpoint that cannot be reached or answers nonsense is NOT a refusal: `classify` raises the service
error (`ServerError`, `ServiceTimeout`, `AuthError`, `MalformedResponse`, ... — all `ServiceError`s), and
`check` turns that into an allowed decision with `verified=False` and the message
"policy unverified: moderation endpoint ...", which the caller must report (or, if it is strict, refuse).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from agent.llm import HttpChat
from agent.llm.errors import AuthError, MalformedResponse
from agent.llm.openai_chat import openai_classifier
from agent.loop.policy.rules import PolicyDecision, Where
from agent.models.errors import ServiceError
from agent.runtime.http import HttpSettings
from agent.runtime.secrets import api_key as env_api_key
from agent.runtime.secrets import redact

DEFAULT_MODEL = "omni-moderation-latest"
CATEGORY_MAP = {
    "sexual/minors": "sexual_content_minors", "sexual": "sexual_explicit", "hate": "hate",
    "hate/threatening": "hate", "harassment": "hate", "harassment/threatening": "violent_threats",
    "self-harm": "self_harm", "self-harm/intent": "self_harm", "self-harm/instructions": "self_harm",
    "violence": "violent_threats", "violence/graphic": "violent_threats", "illicit": "fraud_and_stolen_goods",
    "illicit/violent": "weapons_and_explosives_instructions",
}
"""OpenAI's moderation categories as this policy's categories (unknown ones keep their own name)."""


@dataclass(frozen=True)
class ModerationResult:
    """One input's result: flagged, the flagged categories, every score."""

    flagged: bool
    categories: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    model: str = ""


def parse_moderation(body: Any, name: str = "moderation") -> list[ModerationResult]:
    """The results of a moderation answer, or MalformedResponse naming what is missing."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list) or not body["results"]:
        raise MalformedResponse(f"{name}: expected {{'results': [...]}} from the moderation endpoint, "
                                f"got {str(body)[:160]}")
    out = []
    for i, r in enumerate(body["results"]):
        if not isinstance(r, dict) or not isinstance(r.get("flagged"), bool):
            raise MalformedResponse(f"{name}: results[{i}] has no boolean 'flagged': {str(r)[:160]}")
        cats = r.get("categories") or {}
        scores = r.get("category_scores") or {}
        if not isinstance(cats, dict) or not isinstance(scores, dict):
            raise MalformedResponse(f"{name}: results[{i}].categories / category_scores must be objects")
        flagged = tuple(sorted((k for k, v in cats.items() if v is True),
                               key=lambda k: -float(scores.get(k) or 0.0)))
        out.append(ModerationResult(flagged=r["flagged"], categories=flagged,
                                    scores={str(k): float(v) for k, v in scores.items()
                                            if isinstance(v, (int, float)) and not isinstance(v, bool)},
                                    model=str(body.get("model") or "")))
    return out


class ModerationClient(HttpChat):
    """POST {base_url}/moderations. The key comes from OPENAI_API_KEY when the request is built (optional for
    a local endpoint, required for api.openai.com)."""

    def __init__(self, base_url: str, model: str = DEFAULT_MODEL, *, api_key: str | None = None,
                 settings: HttpSettings | None = None):
        self.model = model
        self._api_key = api_key
        super().__init__("moderation", base_url,  headers={},
                         settings=settings or HttpSettings(read_timeout=30.0, max_attempts=3, total_timeout=60.0),
                         classifier=openai_classifier)

    def _auth_headers(self) -> dict[str, str]:
        key = self._api_key or env_api_key("openai")
        if not key and "api.openai.com" in self.base_url:
            raise AuthError(f"{self.name}: no API key: set OPENAI_API_KEY")
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def classify(self, text: str | list[str]) -> list[ModerationResult]:
        """One result per input; raises the project's ServiceError kinds when the endpoint fails."""
        http = self.http()
        resp = await http.request("POST", "/moderations", json={"model": self.model, "input": text},
                                  headers=self._auth_headers())
        results = parse_moderation(http.json(resp), self.name)
        expected = len(text) if isinstance(text, list) else 1
        if len(results) != expected:
            raise MalformedResponse(f"{self.name}: {len(results)} results for {expected} input(s)")
        return results

    async def acheck(self, text: str, where: Where = "prompt") -> PolicyDecision:
        """A PolicyDecision: refused naming `moderation.<category>`; unverified (allowed, verified=False) when
        the endpoint failed — never a refusal for an outage."""
        if not text.strip():
            return PolicyDecision.ok(where, source="moderation")
        try:
            (result,) = await self.classify(text)
        except ServiceError as e:
            return PolicyDecision.unverified(where, f"moderation endpoint failed: {redact(str(e))}", "moderation")
        if not result.flagged:
            return PolicyDecision.ok(where, source="moderation", details={"scores": result.scores})
        top = result.categories[0] if result.categories else "flagged"
        category = CATEGORY_MAP.get(top, top)
        score = result.scores.get(top)
        how = f" (score {score:.2f})" if score is not None else ""
        return PolicyDecision(allowed=False, where=where, rule_id=f"moderation.{top}", category=category,
                              severity="refuse", matched=text[:120],
                              message=f"refused by rule moderation.{top} ({category}): the moderation endpoint "
                                      f"flagged {where.replace('_', ' ')}{how}",
                              source="moderation", details={"categories": list(result.categories),
                                                            "scores": result.scores})

    def check(self, text: str, where: Where = "prompt") -> PolicyDecision:
        """`acheck` for synchronous callers (runs its own event loop; not from inside a running loop)."""
        async def run() -> PolicyDecision:
            try:
                return await self.acheck(text, where)
            finally:
                await self.aclose()
        return asyncio.run(run())


__all__ = ["CATEGORY_MAP", "DEFAULT_MODEL", "ModerationClient", "ModerationResult", "parse_moderation"]
