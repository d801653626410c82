"""Determinism and feedback for the simulated backend: seeded random streams per request and failure kind,
and which failures a request's correction (structured, never parsed from prompt wording) addresses."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import numpy as np

from agent.backends.base import GenerationRequest
from agent.testing.simulated.options import FAILURES, stream_of

FEEDBACK_CUES: dict[str, re.Pattern[str]] = {k: re.compile(p, re.IGNORECASE) for k, p in {
    "misspell": r"should read|misspel|spell|typo|exact text",
    "drop_text": r"missing|illegible|omitted|add the (?:text|headline|words)",
    "extra_text": r"extra text|not in the plan|stray text|no other text|remove (?:the )?(?:extra |stray )?text",
    "identity_drift": r"identity|look like the reference|reference face|likeness|same person|weak match|"
                      r"no face found",
    "extra_face": r"extra face|extra person|more people|only one (?:person|face)",
    "blur": r"blur|sharp|in focus",
    "noise": r"nois|grain",
    "jpeg": r"jpe?g|png|blocking|compression",
    "wrong_size": r"aspect|ratio|upscale|resolution|regenerate at|delivered \d+x\d+",
    "edit_spill": r"outside (?:the|its) mask|\bspill|only the masked",
    "edit_shift": r"\bshift(?:ed)?\b|\brescal|\brealign|\bzoom",
}.items()}
"""Words in a correction that address each failure (the critics' feedback lines use them)."""
CRITIC_FAILURES: dict[str, tuple[str, ...]] = {
    "preservation": ("edit_spill", "edit_shift"),
    "spec": ("edit_shift",),
    "face": ("identity_drift",),
}
"""The failures of a planned edit that a correction addressing each critic (`Correction.addresses`) addresses,
whatever its words: the edit gates (preservation, face, spec) measure exactly these."""


def request_key(request: GenerationRequest) -> list[int]:
    """Four 32-bit words of a BLAKE2b hash of what makes a request distinct besides its seed."""
    h = hashlib.blake2b(digest_size=16)
    for part in (request.prompt, request.instruction or "", request.base_image.sha256 if request.base_image else ""):
        h.update(part.encode("utf-8", "surrogatepass") + b"\0")
    d = h.digest()
    return [int.from_bytes(d[i:i + 4], "little") for i in range(0, 16, 4)]


def stream(request: GenerationRequest, purpose: int) -> np.random.Generator:
    """The reproducible random stream of one purpose (a failure kind's index, or an edit draw) for a request."""
    return np.random.default_rng([request.seed & 0xFFFFFFFF, *request_key(request), purpose])


def failure_stream(request: GenerationRequest, kind: str) -> np.random.Generator:
    """The stream of one failure kind (`stream_of`: its own, whatever other kinds exist)."""
    return stream(request, stream_of(kind))


def attempt_number(request: GenerationRequest) -> int:
    """The attempt a request carries out (1 for a first render; a correction says which)."""
    return request.correction.attempt if request.correction is not None else 1


def feedback_text(request: GenerationRequest) -> str:
    """The words a request adds to its plan: the correction's feedback lines (structured, not parsed from the
    prompt) and the edit instruction's own lines (lines it shares with the prompt do not count)."""
    parts: list[str] = list(request.correction.feedback) if request.correction is not None else []
    if request.instruction:
        prompt_lines = {ln.strip() for ln in request.prompt.splitlines()}
        parts.extend(ln for ln in request.instruction.splitlines() if ln.strip() and ln.strip() not in prompt_lines)
    return "\n".join(parts)


def addressed_failures(text: str, critics: Iterable[str] = ()) -> list[str]:
    """Failure kinds whose cues appear in a correction, plus (for a planned edit) those of the critics it addresses
    (`CRITIC_FAILURES`)."""
    named = {k for c in critics for k in CRITIC_FAILURES.get(c, ())}
    return [k for k in FAILURES if k in named or (text.strip() and FEEDBACK_CUES[k].search(text))]
