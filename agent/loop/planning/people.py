"""Whether a reference image shows a person (the face critic then checks their identity) or is an object.

One detector decides, for the planner and the face critic alike: a reference is a person exactly when the
face critic finds a face it can match in it (`shows_a_person`), so a planned identity check is never
unpassable; a reference without a detectable face is an object (product) reference.
"""

from __future__ import annotations

from typing import Any

from agent.models import ImageRef
from critics import get_critic


def looks_like_person(store: Any, ref: ImageRef) -> bool:
    critic = get_critic("face")
    decide = getattr(critic, "shows_a_person", None)
    return bool(decide(store, ref)) if callable(decide) else False


__all__ = ["looks_like_person"]
