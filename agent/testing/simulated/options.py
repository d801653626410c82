"""The simulated backend's options: failure kinds, rate profiles and `SimulatedOptions` (`--backend-option`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from agent.backends.base import BackendOptions
from agent.backends.base import parse_options as parse_backend_options
from agent.testing.simulated.failures import BLUR_SIGMA, JPEG_QUALITY, NOISE_SIGMA

FAILURES: tuple[str, ...] = ("misspell", "drop_text", "extra_text", "identity_drift", "extra_face",
                             "blur", "noise", "jpeg", "wrong_size", "edit_spill", "edit_shift")
"""Failure kinds in the order they are decided; each has its own random stream (`stream_of`). `edit_spill` and
`edit_shift` happen only in planned edits (a plan with an `EditSpec`), as does identity drift of a kept person."""
EDIT_FAILURES: tuple[str, ...] = ("edit_spill", "edit_shift")
EDIT_STREAM = 9
"""The random stream of an edit's own draws (did it apply, artifacts); kept at 9, where it was before the edit
failures were added, so earlier draws did not change."""


def stream_of(kind: str) -> int:
    """The random stream a failure kind draws from: its index in FAILURES, skipping EDIT_STREAM."""
    i = FAILURES.index(kind)
    return i if i < EDIT_STREAM else i + 1


PROFILES: dict[str, dict[str, float]] = {
    "clean": dict.fromkeys(FAILURES, 0.0),
    "typical": {"misspell": 0.35, "drop_text": 0.1, "extra_text": 0.15, "identity_drift": 0.3,
                "extra_face": 0.05, "blur": 0.1, "noise": 0.08, "jpeg": 0.08, "wrong_size": 0.1,
                "edit_spill": 0.25, "edit_shift": 0.2},
    "hard": {"misspell": 0.6, "drop_text": 0.25, "extra_text": 0.3, "identity_drift": 0.5,
             "extra_face": 0.15, "blur": 0.2, "noise": 0.15, "jpeg": 0.15, "wrong_size": 0.2,
             "edit_spill": 0.45, "edit_shift": 0.35},
}
"""Preset failure rates. "typical" is a rough picture of current text-capable image models on
posters with text and a reference face, and of instruction-following edit models (which spill past
what they were told to change and return the image a few pixels off); the rates are guesses to
exercise the loop, not measurements."""


class SimulatedOptions(BackendOptions):
    """Backend options (`--backend-option KEY=VALUE`; strings are parsed). Rates left unset come from `profile`."""

    profile: str = "typical"
    misspell: float | None = Field(None, ge=0, le=1)
    drop_text: float | None = Field(None, ge=0, le=1)
    extra_text: float | None = Field(None, ge=0, le=1)
    identity_drift: float | None = Field(None, ge=0, le=1)
    extra_face: float | None = Field(None, ge=0, le=1)
    blur: float | None = Field(None, ge=0, le=1)
    noise: float | None = Field(None, ge=0, le=1)
    jpeg: float | None = Field(None, ge=0, le=1)
    wrong_size: float | None = Field(None, ge=0, le=1)
    edit_spill: float | None = Field(None, ge=0, le=1, description="a planned edit changes pixels past its mask")
    edit_shift: float | None = Field(None, ge=0, le=1,
                                     description="a planned edit comes back shifted, zoomed or rescaled")
    native_long_side: int = Field(1024, ge=64, le=8192, description="requests above it are delivered at it")
    feedback_response: float = Field(0.7, ge=0, le=1, description="chance a correction naming a failure fixes it")
    edit_response: float = Field(0.85, ge=0, le=1,
                                 description="chance a masked or planned edit does what it was asked")
    edit_artifacts: float = Field(0.15, ge=0, le=1, description="chance an edit degrades the image slightly")
    cost_per_image: float = Field(0.04, ge=0, description="USD estimate per image, for budget checks")
    latency: float = Field(0.0, ge=0, le=600, description="seconds each image takes at least, like a remote model "
                                                          "(for benches of concurrency)")
    blur_sigma: float = Field(BLUR_SIGMA, gt=0, le=50, description="blur strength at a long side of 1024")
    noise_sigma: float = Field(NOISE_SIGMA, gt=0, le=128, description="noise strength, grey levels")
    jpeg_quality: int = Field(JPEG_QUALITY, ge=1, le=95, description="JPEG quality of the blocking failure")

    @model_validator(mode="after")
    def _known_profile(self) -> SimulatedOptions:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        return self

    def rates(self) -> dict[str, float]:
        """The effective rate of every failure kind: the option if given, else the profile's."""
        preset = PROFILES[self.profile]
        return {k: preset[k] if getattr(self, k) is None else float(getattr(self, k)) for k in FAILURES}


def parse_options(options: Mapping[str, Any] | None) -> SimulatedOptions:
    """Validated options; an unknown key or a bad value is a BackendOptionError naming the known options."""
    return parse_backend_options(SimulatedOptions, options, "simulated")
