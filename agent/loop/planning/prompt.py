"""The text prompt a model backend receives for a plan (the template is `prompts/generation.txt`)."""

from __future__ import annotations

from agent.models import Plan
from prompts import render


def generation_prompt(plan: Plan) -> str:
    """The text prompt a model backend receives for a plan."""
    text_block = ""
    if plan.text:
        lines = [f'- {e.role} at {e.region.describe()}: "{e.content}"' for e in plan.text]
        text_block = "The image must contain exactly this text, spelled exactly as written:\n" + "\n".join(lines)
    subject_block = ""
    if plan.subjects:
        subject_block = "\n".join(
            f"- keep the {s.kind} from reference image {i + 1} recognisable, placed at {s.region.describe()}"
            for i, s in enumerate(plan.subjects))
    return render("generation", prompt=plan.prompt, aspect_ratio=plan.aspect_ratio, width=plan.width,
                  height=plan.height, text_block=text_block, subject_block=subject_block,
                  negative=", ".join(plan.negative) or "nothing in particular")


__all__ = ["generation_prompt"]
