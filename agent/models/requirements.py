"""What a brief asks for, one requirement at a time, and whether a critic verified it.

A run's report lists every requirement with the critic that checks it and its status, so `passed` never
claims more than was checked: a requirement no critic checks (the prompt's objects, scene or style when no
VLM judge is configured) is `unverified`, and the report says so.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.models.base import Model

RequirementKind = Literal["text", "identity", "object", "canvas", "preservation", "layout", "content", "style",
                          "count"]
RequirementStatus = Literal["passed", "failed", "unverified"]


class Requirement(Model):
    """One thing the brief asks for, which critic (if any) verifies it, and whether it holds.

    Kinds: required `text`; a reference person's `identity`; a reference `object` (product); the `canvas`
    (size and aspect); for an edit, `preservation` (only the masked area changes); with a sketch, its `layout`;
    the prompt's `content`
    (objects, scene), `style` and `count` words."""

    text: str
    kind: RequirementKind
    verified_by: str | None = Field(None, description="the critic that checks it; None: no critic does")
    ref: str | None = Field(None, description="the plan element it is about (text element or subject id)")
    status: RequirementStatus = "unverified"
    detail: str = Field("", description="why it failed or is unverified")


__all__ = ["Requirement", "RequirementKind", "RequirementStatus"]
