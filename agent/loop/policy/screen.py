"""The loop's two policy gates: the brief before anything is planned, and every candidate after its checks.

A brief is screened on its prompt and its required text (and, when configured, by a moderation endpoint); a
candidate on the text OCR read in it (the OCR critic's evidence, so an innocent prompt whose image says something
harmful is caught) and by the image screen. A refusal ends the run `refused` (exit 5) with the rule that
refused it, and the refused candidate is never delivered. A check that could not be made (no detector, an
endpoint down) is `verified=False`: reported, never counted as passed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from agent.loop.policy.rules import Policy, PolicyDecision, load_policy
from agent.models import Brief, Verdict
from agent.models.evidence import TextEvidence, read_evidence


@functools.lru_cache(maxsize=8)
def policy_for(path: str | None) -> Policy:
    """The policy of a run (its file merged over the defaults), loaded once per process."""
    return load_policy(path)


@functools.lru_cache(maxsize=1)
def _screen() -> Any:
    from agent.loop.policy.images import ImageScreen

    return ImageScreen()


def warm_image_screen() -> None:
    """Load the image screen's model now (once per process), so the first candidate's check is not slower."""
    _screen().warm()


def screen_brief(policy: Policy, brief: Brief) -> PolicyDecision:
    """The first refusal among the prompt and the required text, else an allowing decision."""
    decision = policy.check_text(brief.prompt, "prompt")
    if not decision.allowed:
        return decision
    for text in brief.required_text:
        found = policy.check_text(text, "required_text")
        if not found.allowed:
            return found
    return decision


def moderate(base_url: str, model: str | None, brief: Brief) -> PolicyDecision:
    """The prompt and required text through an OpenAI-compatible moderation endpoint. An endpoint that does not
    answer gives `verified=False` (reported), never a refusal and never a pass."""
    from agent.llm.factory import run_sync
    from agent.loop.policy.moderation import DEFAULT_MODEL, ModerationClient

    async def ask() -> PolicyDecision:
        client = ModerationClient(base_url, model or DEFAULT_MODEL)
        try:
            return await client.acheck("\n".join([brief.prompt, *brief.required_text]), "prompt")
        finally:
            await client.aclose()

    return run_sync(ask)


def image_text(verdicts: Iterable[Verdict]) -> str:
    """Every line the OCR critic read in a candidate, required or not, as one text (a phrase split over lines is
    still one phrase)."""
    lines: list[str] = []
    for v in verdicts:
        if v.critic == "ocr" and v.checked:
            read = v.evidence.get("lines")  # every line read, in reading order
            if isinstance(read, list):
                lines += [str(line.get("text", "")) for line in read if isinstance(line, dict)]
            else:
                ev = read_evidence(v, TextEvidence)
                lines += [e.read for e in ev.elements if e.read] + [x.text for x in ev.extra_text if x.text]
    return " ".join(line for line in lines if line)


def screen_candidate(policy: Policy, image: Any, verdicts: list[Verdict]) -> PolicyDecision:
    """The candidate's read text through the text rules, then the image through the image screen."""
    text = image_text(verdicts)
    if text:
        decision = policy.check_text(text, "image_text")
        if not decision.allowed:
            return decision
    return _screen().check(image)  # type: ignore[no-any-return]


__all__ = ["image_text", "moderate", "policy_for", "screen_brief", "screen_candidate", "warm_image_screen"]
