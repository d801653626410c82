"""Gemini image models: what each accepts (sizes, aspect ratios, references) and what its output costs."""

from __future__ import annotations

from dataclasses import dataclass

from agent.backends.base import Capabilities

DEFAULT_MODEL = "gemini-3.1-flash-image"

STANDARD_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
FLASH_31_RATIOS = STANDARD_RATIOS + ("1:4", "4:1", "1:8", "8:1")

PRICE_SOURCE = ("shared/docs/backend-protocols.md §1 Cost / latency: \"Output billed as tokens. 2.5 Flash Image "
                "1,290 tok at $30/M ≈ $0.039; 3 Pro 1,120 tok (1K/2K) / 2,000 (4K) at $120/M ≈ $0.134 / $0.24; "
                "3.1 Flash $60/M ≈ $0.045 (512) / $0.067 (1K) / $0.101 (2K) / $0.151 (4K); Batch API −50%; "
                "Lite ≈ half of NB2.\"")
"""Where the prices below come from (reported figures; confirm on Google's pricing page)."""


@dataclass(frozen=True)
class ModelSpec:
    """What one Gemini image model accepts and what its output costs."""

    model: str
    alias: str
    sizes: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    max_references: int
    usd_per_million_image_tokens: float
    image_tokens: dict[str, int]
    send_image_size: bool = True
    thinking_levels: tuple[str, ...] = ()
    max_objects: int | None = None
    max_people: int | None = None
    note: str = ""

    def estimate(self, size: str) -> float:
        """USD for one output image at a size tier (documented tokens x price)."""
        tokens = self.image_tokens.get(size) or max(self.image_tokens.values())
        return tokens * self.usd_per_million_image_tokens / 1e6


MODELS: dict[str, ModelSpec] = {
    "gemini-3.1-flash-image": ModelSpec(
        "gemini-3.1-flash-image", "Nano Banana 2", ("512", "1K", "2K", "4K"), FLASH_31_RATIOS, 14, 60.0,
        {"512": 750, "1K": 1117, "2K": 1683, "4K": 2517}, thinking_levels=("minimal", "high"),
        max_objects=10, max_people=4),
    "gemini-3-pro-image": ModelSpec(
        "gemini-3-pro-image", "Nano Banana Pro", ("1K", "2K", "4K"), STANDARD_RATIOS, 14, 120.0,
        {"1K": 1120, "2K": 1120, "4K": 2000}, max_objects=6, max_people=5, note="always thinks"),
    "gemini-3.1-flash-lite-image": ModelSpec(
        "gemini-3.1-flash-lite-image", "Nano Banana 2 Lite", ("1K",), FLASH_31_RATIOS, 3, 30.0,
        {"1K": 1117}, send_image_size=False, thinking_levels=("minimal", "high"),
        note="reference limit unconfirmed (3 assumed); price assumed half of 3.1 Flash"),
    "gemini-2.5-flash-image": ModelSpec(
        "gemini-2.5-flash-image", "Nano Banana", ("1K",), STANDARD_RATIOS, 3, 30.0, {"1K": 1290},
        send_image_size=False, note="shuts down 2 Oct 2026"),
}

RETIRED: dict[str, str] = {
    "gemini-3-pro-image-preview": "gemini-3-pro-image",
    "gemini-3.1-flash-image-preview": "gemini-3.1-flash-image",
}
"""Preview ids shut down on 25 Jun 2026 -> their GA replacement (the server answers 404 NOT_FOUND)."""


def model_spec(model: str) -> ModelSpec:
    """The spec of a known model; an unknown id gets Gemini 3 defaults with a conservative reference limit."""
    if model in MODELS:
        return MODELS[model]
    base = MODELS.get(RETIRED.get(model, ""))
    if base is not None:
        return ModelSpec(**{**base.__dict__, "model": model, "note": f"retired; use {base.model}"})
    return ModelSpec(model, "unknown Gemini image model", ("1K", "2K", "4K"), STANDARD_RATIOS, 3, 60.0,
                     {"1K": 1120, "2K": 1680, "4K": 2520}, note="not in pixloop's table: capabilities assumed")


def capabilities_for(spec: ModelSpec) -> Capabilities:
    top = max(spec.sizes, key=lambda s: {"512": 0, "1K": 1, "2K": 2, "4K": 4}.get(s, 1))
    return Capabilities(edit=True, mask=False, max_references=spec.max_references,
                        aspect_ratios=list(spec.aspect_ratios), sizes=list(spec.sizes),
                        native_long_side={"512": 512, "1K": 1024, "2K": 2048, "4K": 4096}.get(top, 1024),
                        deterministic=False, cost_per_image=round(spec.estimate("1K"), 4))


__all__ = ["DEFAULT_MODEL", "FLASH_31_RATIOS", "MODELS", "PRICE_SOURCE", "RETIRED", "STANDARD_RATIOS", "ModelSpec",
           "capabilities_for", "model_spec"]
