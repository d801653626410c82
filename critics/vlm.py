"""VLM judge: a vision-language model scores prompt adherence and logical consistency.

It covers what no measured critic can: does the image show what the brief asks for, and does
it make physical sense (hands, perspective, shadows, object contact)? Score = weighted mean of
`adherence` and `consistency` (0-10 each) / 10, with the model's reasons and problems as evidence.

Measured critics outrank it on their own domains. The judge is told (prompts/vlm_judge.txt) to
leave spelling/text accuracy and face identity alone; any problem it still raises about them is
moved to `evidence["deferred"]` and never becomes its feedback; `outranked_by()` names the critics
whose verdicts win when they and the judge disagree, for the corrector's choice of what to fix.

Opt-in: it applies only when configured (PIXLOOP_VLM_BASE_URL and PIXLOOP_VLM_MODEL, optional
PIXLOOP_VLM_FLAVOUR, or a client passed to the constructor), so offline runs never touch a
network. A judge that cannot answer (unreachable, refusing, unreadable) gives an `unavailable` verdict with
`error`: nothing verified, and the loop does not regenerate for it; never an exception.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from agent.llm import ChatClient, ChatMessage, downscale, make_chat_client, run_sync
from agent.llm.json_output import complete_json
from agent.models import Plan, Verdict
from critics.base import CheckContext, CriticInfo, threshold_for

INFO = CriticInfo(
    threshold=0.6,
    threshold_source=(
        "6/10 on the judge's weighted rubric (0.6 adherence + 0.4 consistency); opt-in, never the judge of "
        "text or identity, which measured critics own"
    ),
    description="a vision chat model scores prompt adherence and consistency (opt-in; never text or identity)",
    weight=1.0, measured=False, needs=(), on_by_default=True,
    strategies=("reprompt", "new_seed"),
)
"""What the loop knows about this critic (see `critics.base.CriticInfo`)."""

SCHEMA_NAME = "pixloop_judge"
"""Structured-output schema name; the chat fake recognises judge requests by it."""
WEIGHTS = {"adherence": 0.6, "consistency": 0.4}
IMAGE_MAX_SIDE = 1024
ENV_BASE_URL, ENV_MODEL, ENV_FLAVOUR = "PIXLOOP_VLM_BASE_URL", "PIXLOOP_VLM_MODEL", "PIXLOOP_VLM_FLAVOUR"
_OWNED = re.compile(
    r"\b(spell\w*|misspel\w*|typo\w*|letters?|ocr|wording|identity|likeness|resembl\w*|"
    r"same person|(?:the )?reference (?:photo|face|person))\b", re.IGNORECASE)
"""Problems in the measured critics' domains (OCR: spelling; face: identity), deferred to them."""


def outranked_by() -> list[str]:
    """The measured critics (their `CriticInfo.measured`): they own their domain, the judge never vetoes them."""
    from critics.registry import critic_names, is_measured

    return sorted(n for n in critic_names() if is_measured(n))


class JudgeProblem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    what: str = Field(description="what is wrong")
    where: str = Field(description="where in the image")


class JudgeReply(BaseModel):
    model_config = ConfigDict(extra="ignore")

    adherence: float = Field(ge=0, le=10, description="0-10: the image shows what the brief asks for")
    consistency: float = Field(ge=0, le=10, description="0-10: the image is logically and physically coherent")
    reasons: list[str]
    problems: list[JudgeProblem]


def judge_messages(image: Image.Image, plan: Plan) -> list[ChatMessage]:
    """The judge's single user turn: the filled prompts/vlm_judge.txt and the image."""
    from prompts import render

    text = "; ".join(f'{e.role} "{e.content}" at {e.region.describe()}' for e in plan.text) or "none"
    subjects = "; ".join(f"{s.kind} at {s.region.describe()}" for s in plan.subjects) or "none"
    prompt = render("vlm_judge", prompt=plan.prompt, canvas=f"{plan.aspect_ratio}, {plan.width}x{plan.height}",
                    text=text, subjects=subjects)
    return [ChatMessage("user", prompt, [downscale(image.convert("RGB"), IMAGE_MAX_SIDE)])]


def split_owned(problems: list[JudgeProblem]) -> tuple[list[JudgeProblem], list[JudgeProblem]]:
    """(kept, deferred): problems about spelling or identity belong to the OCR and face critics."""
    kept: list[JudgeProblem] = []
    deferred: list[JudgeProblem] = []
    for p in problems:
        (deferred if _OWNED.search(p.what) else kept).append(p)
    return kept, deferred


class VlmJudge:
    """Critic 'vlm': adherence and consistency from a vision-language model, below the measured critics."""

    name = "vlm"
    info = INFO

    def __init__(self, client: ChatClient | None = None, *, weights: dict[str, float] | None = None,
                 temperature: float | None = 0.0, max_tokens: int = 1024):
        self._explicit = client
        self.weights = weights or dict(WEIGHTS)
        self.temperature = temperature
        self.max_tokens = max_tokens

    def configured(self) -> bool:
        return self._explicit is not None or bool(os.environ.get(ENV_BASE_URL) and os.environ.get(ENV_MODEL))

    def client(self) -> ChatClient:
        if self._explicit is not None:
            return self._explicit
        if not self.configured():
            raise RuntimeError(f"the vlm judge is not configured: set {ENV_BASE_URL} and {ENV_MODEL}")
        return make_chat_client(os.environ[ENV_BASE_URL], os.environ[ENV_MODEL],
                                flavour=os.environ.get(ENV_FLAVOUR) or None)

    def applies(self, plan: Plan) -> bool:
        spec = plan.checks.get(self.name)
        if spec is not None and not spec.enabled:
            return False
        return self.configured()

    def _threshold(self, plan: Plan) -> float:
        return threshold_for(self.name, INFO, plan)

    def score(self, reply: JudgeReply) -> float:
        total = sum(self.weights.values()) or 1.0
        mean = (self.weights.get("adherence", 0) * reply.adherence
                + self.weights.get("consistency", 0) * reply.consistency) / total
        return round(min(1.0, max(0.0, mean / 10.0)), 4)

    def check(self, image: Image.Image, plan: Plan, context: CheckContext) -> Verdict:
        t0 = time.perf_counter()
        threshold = self._threshold(plan)
        model = "?"
        try:
            client = self.client()
            model = client.model
            messages = judge_messages(image, plan)

            async def ask() -> tuple[JudgeReply, str]:
                try:
                    reply, result = await complete_json(client, messages, JudgeReply, schema_name=SCHEMA_NAME,
                                                        temperature=self.temperature, max_tokens=self.max_tokens)
                    return reply, result.raw_model or client.model
                finally:
                    await client.aclose()

            reply, model = run_sync(ask)
        except Exception as e:  # noqa: BLE001 - a critic never crashes the loop
            error = f"{type(e).__name__}: {e}"
            # unreachable, refused or unreadable: the judge verified nothing, which is not a failing image
            return Verdict(critic=self.name, candidate_id=context.candidate_id, score=0.0, passed=False,
                           threshold=threshold, status="unavailable",
                           evidence={"model": model, "outranked_by": outranked_by()},
                           feedback=f"the vlm judge could not score the image ({error[:200]})",
                           seconds=round(time.perf_counter() - t0, 3), error=error[:1000])
        kept, deferred = split_owned(reply.problems)
        score = self.score(reply)
        passed = score >= threshold
        evidence: dict[str, Any] = {
            "adherence": reply.adherence, "consistency": reply.consistency,
            "reasons": [r for r in reply.reasons if r.strip()][:10],
            "problems": [p.model_dump() for p in kept][:10],
            "deferred": [{**p.model_dump(), "owner": "ocr/face"} for p in deferred][:10],
            "model": model, "weights": self.weights, "outranked_by": outranked_by(),
            "scope": "prompt adherence and logical consistency; text accuracy and identity are left to "
                     "the measured critics",
        }
        if kept:
            feedback = f"{kept[0].what} ({kept[0].where})" if kept[0].where.strip() else kept[0].what
        elif not passed and evidence["reasons"]:
            feedback = evidence["reasons"][0]
        else:
            feedback = "" if passed else "the image does not match the brief closely enough"
        return Verdict(critic=self.name, candidate_id=context.candidate_id, score=score, passed=passed,
                       threshold=threshold, evidence=evidence, feedback=feedback[:300],
                       seconds=round(time.perf_counter() - t0, 3))


__all__ = ["JudgeProblem", "JudgeReply", "SCHEMA_NAME", "VlmJudge", "judge_messages", "split_owned"]
