"""What was verified: each requirement of the plan, judged by the verdicts of the delivered candidate.

A requirement its critic checked is `passed` or `failed` (a text element by its own reading, a person by
their own identity match, a reference object by its own search); one whose critic is unavailable, did not
run, or does not exist is `unverified`, with the reason. `passed` for a run means every verified requirement
holds; `strict` turns any unverified requirement into a run below threshold.
"""

from __future__ import annotations

from agent.loop.correction.diagnosis import evidence_of
from agent.models import Requirement, Verdict
from agent.models.evidence import FaceEvidence, ReferenceEvidence, TextEvidence

NO_CRITIC = {
    "content": "no critic checks scene content; configure the VLM judge (PIXLOOP_VLM_BASE_URL, PIXLOOP_VLM_MODEL)",
    "style": "no critic checks style; configure the VLM judge (PIXLOOP_VLM_BASE_URL, PIXLOOP_VLM_MODEL)",
    "count": "no critic counts objects; configure the VLM judge (PIXLOOP_VLM_BASE_URL, PIXLOOP_VLM_MODEL)",
    "object": "the reference critic is not enabled",
    "identity": "the face critic is not enabled",
    "text": "the OCR critic is not enabled",
    "canvas": "the spec critic is not enabled",
    "preservation": "the preservation critic is not enabled",
    "layout": "the structure critic is not enabled",
}


def assess(requirements: list[Requirement], verdicts: list[Verdict]) -> list[Requirement]:
    """The requirements with their status from the verdicts of one candidate."""
    by_critic = {v.critic: v for v in verdicts}
    return [_one(r, by_critic) for r in requirements]


def _one(req: Requirement, by_critic: dict[str, Verdict]) -> Requirement:
    if req.verified_by is None:
        return req.model_copy(update={"status": "unverified", "detail": NO_CRITIC[req.kind]})
    verdict = by_critic.get(req.verified_by)
    if verdict is None:
        return req.model_copy(update={"status": "unverified", "detail": f"{req.verified_by} did not run"})
    if not verdict.checked:
        return req.model_copy(update={"status": "unverified",
                                      "detail": f"{req.verified_by} could not run: {verdict.error or ''}".strip()})
    held, detail = verdict.passed, "" if verdict.passed else verdict.feedback
    evidence = evidence_of(verdict)
    if isinstance(evidence, TextEvidence) and req.ref is not None:
        reading = next((e for e in evidence.elements if e.id == req.ref), None)
        if reading is not None:
            held = reading.accuracy >= verdict.threshold
            detail = "" if held else (f"read {reading.read!r}" if reading.read else "missing or illegible")
    if isinstance(evidence, FaceEvidence) and req.ref is not None:
        match = next((i for i in evidence.identities if i.subject == req.ref), None)
        if match is not None:
            held = match.same
            detail = "" if held else "not the same person as the reference"
    if isinstance(evidence, ReferenceEvidence) and req.ref is not None:
        found = next((r for r in evidence.references if r.subject == req.ref), None)
        if found is not None:
            held = found.found and found.similarity >= verdict.threshold
            detail = "" if held else ((found.detail or "not found in the image") if not found.found else
                                      f"only a weak match (similarity {found.similarity:.2f} < {verdict.threshold:.2f})")
    return req.model_copy(update={"status": "passed" if held else "failed", "detail": detail})


def unverified(requirements: list[Requirement]) -> list[Requirement]:
    return [r for r in requirements if r.status == "unverified"]


def describe_unverified(requirements: list[Requirement]) -> list[str]:
    """One line per reason: "not verified: 'red bicycle', 'marble counter' — no critic checks scene content; ..."."""
    groups: dict[str, list[str]] = {}
    for r in unverified(requirements):
        groups.setdefault(r.detail, []).append(repr(r.text))
    return [f"not verified: {', '.join(texts)} — {why}" for why, texts in groups.items()]


__all__ = ["assess", "describe_unverified", "unverified"]
