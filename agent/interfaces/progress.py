"""One human line per graph step (the CLI prints them to stderr as a run goes)."""

from __future__ import annotations

from typing import Any


def describe_update(node: str, update: dict[str, Any] | None) -> str | None:
    """A short human line for one graph step, or None when there is nothing to say."""
    if not update:
        return None
    if node == "plan":
        if update.get("error"):
            return f"plan      {'REFUSED' if update.get('status') == 'refused' else 'FAILED'}: {update['error']}"
        p = update["plan"]
        checks = ", ".join(f"{k}>={c.threshold:.2f}" for k, c in p.checks.items()) or "none"
        text = "; ".join(f'"{e.content}"' for e in p.text) or "none"
        if p.edit is not None:
            e = p.edit
            return (f"plan      edit ({e.kind}) of the {p.width}x{p.height} source | mask: {e.method}, "
                    f"{e.mask_share:.0%} may change | text: {text} | checks: {checks}")
        return f"plan      {p.aspect_ratio} {p.size} {p.width}x{p.height} | text: {text} | checks: {checks}"
    if node == "generate":
        if update.get("error"):
            return f"generate  FAILED: {update['error']}"
        cs = update["candidates"]
        c = cs[0]
        ids = ", ".join(x.id for x in cs)
        return f"generate  #{c.iteration} {ids} ({c.strategy} via {c.backend}, seed {c.seed}) in {c.seconds:.2f}s"
    if node == "check":
        v = update["verdicts"][0]
        if not v.checked:
            return f"check     {v.candidate_id} {v.critic:<12}   -- unavailable: {v.error}"
        mark = "pass" if v.passed else "FAIL"
        return f"check     {v.candidate_id} {v.critic:<12} {v.score:.2f} {mark} (>= {v.threshold:.2f}) {v.feedback}"
    if node == "judge":
        reason = update.get("stop_reason")
        tail = f"stop: {reason}" if reason else "correcting"
        return f"judge     current {update.get('current_id')}, best {update.get('best_id')} | {tail}"
    if node == "correct":
        a = update["actions"][0]
        bits = [f"{k}={v}" for k, v in a.style.items()]
        if a.base_candidate_id:
            bits.append(f"on {a.base_candidate_id}" + (f" region {_boxes(a.regions)}" if a.regions else ""))
        if a.drafts > 1:
            bits.append(f"{a.drafts} drafts")
        if a.seed is not None and not a.style:
            bits.append(f"seed {a.seed}")
        return f"correct   {a.strategy}: {', '.join(bits)}"
    if node == "finalize":
        f = update.get("final")
        return f"finalize  {update['status']} ({update.get('stop_reason')}) best {f.id if f else 'none'}"
    return None


def _boxes(regions: list[Any]) -> list[int]:
    """Boxes as the flat pixel list the progress line has always shown: [x0, y0, x1, y1, ...]."""
    return [v for b in regions for v in b.as_tuple()]
