"""The simulated backend: a test and benchmark double that imitates real image models' failure modes.

It is not a generator. It renders the plan with the compose renderer (correct text, the reference
subjects, the planned size) and then injects, each at a configurable rate, the failures real image
models show: misspelt, dropped or extra text; identity drift; blur, noise and JPEG blocking; an
extra face; a wrong size; and a native resolution below the request. It answers feedback the way
real models do, partially and not always. Every number is a configurable rate (or strength), set
with `--backend-option KEY=VALUE` or a `profile` preset, and `meta["simulated"]` lists what was
injected and what feedback fixed, so tests and the quality benchmark can check that the critics
find each failure and the loop repairs it.

Determinism: every random draw comes from a numpy generator seeded with (request.seed, a BLAKE2b
hash of the prompt, of the edit instruction and of the base image's hash, the failure kind). The
same request always gives byte-identical pixels; another seed, or a corrected prompt, gives new
draws; and each failure kind has its own stream, so changing one rate never reshuffles another
failure's draws.

Feedback: the request's correction (`GenerationRequest.correction`, structured: which attempt and its
feedback lines, never parsed from the prompt's wording) and an edit instruction's own words are matched
against each failure's cues (FEEDBACK_CUES: "should read" for a misspelling, "blur"/"sharp" for
blur, ...). An addressed failure that would fire is avoided with probability `feedback_response`;
otherwise it recurs at its base rate. A masked edit regenerates the masked region from the plan
and succeeds with probability `edit_response`; `edit_artifacts` of edits degrade the whole image
slightly, as repeated edits with real models do.

Planned edits (a plan with an `EditSpec`: "put her on a beach", "make his jacket red") run compose's real
edit (`apply_edit`) and then, at their rates, what real edit models do wrong: `edit_spill` (the edit reaches
past its mask into what had to stay), `identity_drift` of a kept person (their face, in place), and
`edit_shift` (the whole image shifted by a few pixels, slightly zoomed, or rescaled along one axis). For a
planned edit a correction also addresses the failures of the critics it names (`Correction.addresses`:
preservation -> spill and shift, spec -> shift, face -> drift; `CRITIC_FAILURES`).

Layout: `options` (failure kinds, profiles, SimulatedOptions), `feedback` (seeded streams, which failures a
correction addresses), `failures` (the text and image failures themselves), `edits` (the edit failures),
`backend` (SimulatedBackend).
"""

from __future__ import annotations

from agent.testing.simulated.backend import SimulatedBackend
from agent.testing.simulated.edits import (
    RESCALE,
    SHIFT_KINDS,
    SHIFT_PX,
    SPILL_SHARE,
    ZOOM,
    shift_image,
    spill_mask,
)
from agent.testing.simulated.failures import (
    BLUR_SIGMA,
    DRIFT_BLUR,
    EDIT_ARTIFACT_BLUR,
    EDIT_ARTIFACT_NOISE,
    EXTRA_FACE_SCALE,
    EXTRA_TEXT_SIZES,
    GIBBERISH,
    JPEG_QUALITY,
    NOISE_SIGMA,
    SUBSTITUTES,
    add_noise,
    blur,
    box_edges,
    drift_identity,
    free_spot,
    jpeg,
    misspell,
    native_size,
    paste_extra_face,
    typo_candidates,
    wrong_size,
)
from agent.testing.simulated.feedback import (
    CRITIC_FAILURES,
    FEEDBACK_CUES,
    addressed_failures,
    attempt_number,
    feedback_text,
    request_key,
    stream,
)
from agent.testing.simulated.options import (
    EDIT_FAILURES,
    EDIT_STREAM,
    FAILURES,
    PROFILES,
    SimulatedOptions,
    parse_options,
    stream_of,
)

__all__ = [
    "BLUR_SIGMA", "CRITIC_FAILURES", "DRIFT_BLUR", "EDIT_ARTIFACT_BLUR", "EDIT_ARTIFACT_NOISE", "EDIT_FAILURES",
    "EDIT_STREAM", "EXTRA_FACE_SCALE", "EXTRA_TEXT_SIZES", "FAILURES", "FEEDBACK_CUES", "GIBBERISH", "JPEG_QUALITY",
    "NOISE_SIGMA", "PROFILES", "RESCALE", "SHIFT_KINDS", "SHIFT_PX", "SPILL_SHARE", "SUBSTITUTES", "ZOOM",
    "SimulatedBackend", "SimulatedOptions", "add_noise", "addressed_failures", "attempt_number", "blur", "box_edges",
    "drift_identity", "feedback_text", "free_spot", "jpeg", "misspell", "native_size", "parse_options",
    "paste_extra_face", "request_key", "shift_image", "spill_mask", "stream", "stream_of", "typo_candidates",
    "wrong_size",
]
