"""The document's report.json: per image its verdicts, iterations and rounds, a consistency matrix per character,
the requirements with who verified them (as in single runs, plus one per character for cross-image identity),
and the total cost."""

from __future__ import annotations

from typing import Any

from agent.models import ImageOutcome, Requirement
from agent.models.document import ConsistencyReport, DocumentBrief

REPORT_VERSION = 1


def _image_row(doc: DocumentBrief, outcome: ImageOutcome | None, cue_id: str, section: str,
               history: list[ImageOutcome]) -> dict[str, Any]:
    rounds = [h for h in history if h.id == cue_id]
    row: dict[str, Any] = {"id": cue_id, "section": section, "rounds": len(rounds),
                           "iterations": sum(h.iterations for h in rounds), "cost": round(sum(h.cost for h in rounds), 4)}
    if outcome is None:
        return {**row, "status": "failed", "error": "not rendered (the document's budget or an earlier failure)"}
    return {**row, "status": outcome.status, "stop_reason": outcome.stop_reason, "round": outcome.round,
            "final_iterations": outcome.iterations, "image": outcome.image.path if outcome.image else None,
            "image_ref": outcome.image.model_dump(mode="json") if outcome.image else None,
            "run_dir": outcome.run_dir, "verdicts": outcome.verdicts, "scores": outcome.scores,
            "error": outcome.error}


def _requirements(doc: DocumentBrief, outcomes: dict[str, ImageOutcome],
                  consistency: ConsistencyReport | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for cue in doc.images:
        outcome = outcomes.get(cue.id)
        reqs: list[Requirement] = outcome.requirements if outcome else []
        rows += [{"image": cue.id, **r.model_dump(mode="json")} for r in reqs]
        if outcome is None:
            rows.append({"image": cue.id, "kind": "content", "text": cue.prompt, "status": "failed",
                         "verified_by": None})
    for character in (consistency.characters if consistency else []):
        status = "unverified" if not character.verified else ("failed" if character.failing else "passed")
        rows.append({"image": None, "kind": "character", "text": f"{character.name} looks the same in "
                     f"{', '.join(character.images) or 'no image'}", "status": status,
                     "verified_by": "face_consistency" if character.verified else None, "note": character.note})
    return rows


def _not_verified(requirements: list[dict[str, Any]]) -> list[str]:
    """One line per image (and per unverified character) naming what no critic checked."""
    per_image: dict[str | None, list[str]] = {}
    for r in requirements:
        if r.get("status") == "unverified":
            texts = per_image.setdefault(r.get("image"), [])
            if r["text"] not in texts:
                texts.append(r["text"])
    return [(f"{image}: " if image else "") + ", ".join(f"'{t}'" for t in texts) for image, texts in per_image.items()]


def document_report(state: dict[str, Any]) -> dict[str, Any]:
    """report.json of a document (also of one that failed before it had a plan)."""
    doc: DocumentBrief | None = state.get("doc")
    outcomes: dict[str, ImageOutcome] = state.get("outcomes") or {}
    history: list[ImageOutcome] = state.get("history") or []
    reports: list[ConsistencyReport] = state.get("consistency") or []
    last = reports[-1] if reports else None
    report: dict[str, Any] = {
        "version": REPORT_VERSION, "kind": "document", "status": state.get("status"),
        "stop_reason": state.get("stop_reason"), "error": state.get("error"),
        "cost": round(float(state.get("cost_used") or 0.0), 4), "rounds": len(reports)}
    if doc is None:
        return report
    sections = {c.id: s.id for s in doc.sections for c in s.images}
    requirements = _requirements(doc, outcomes, last)
    report.update({
        "title": doc.title, "layout": doc.layout, "source": doc.source,
        "images": [_image_row(doc, outcomes.get(c.id), c.id, sections[c.id], history) for c in doc.images],
        "consistency": last.model_dump(mode="json") if last else None,
        "consistency_rounds": [r.model_dump(mode="json") for r in reports],
        "sheet": state["sheet"].model_dump(mode="json") if state.get("sheet") else None,
        "requirements": requirements,
        "not_verified": _not_verified(requirements),
        "files": {"markdown": "story.md", "html": "story.html"}})
    return report


__all__ = ["REPORT_VERSION", "document_report"]
