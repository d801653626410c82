"""What the Stable Diffusion server backends (ComfyUI, AUTOMATIC1111) share: the sampling options they both
take, the render size and prompt of a request, and opening, encoding and decoding images."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image
from pydantic import Field

from agent.backends.base import GenerationRequest, HttpOptions
from agent.backends.errors import MalformedResponse
from agent.models import ImageRef
from agent.models.errors import BackendError
from agent.runtime.images import ImageInputError, decode_image_bytes


class StableDiffusionOptions(HttpOptions):
    """Sampling options both Stable Diffusion servers take; each backend's options model adds its own.
    Steps and cfg are not bounded here: the server checks them and says what it accepts."""

    checkpoint: str | None = Field(None, description="checkpoint to load (default: --model, else the server's)")
    steps: int = Field(20, description="sampling steps")
    cfg: float = Field(7.0, description="classifier-free guidance scale")
    denoise: float = Field(0.6, ge=0, le=1, description="edit strength from the base image")
    reference_denoise: float = Field(0.85, ge=0, le=1,
                                     description="strength when reference 1 is the img2img start")
    max_side: int = Field(2048, ge=64, description="longest side rendered; larger plans are scaled down")
    timeout: float = Field(600.0, gt=0, description="seconds one image may take on the server")


def sd_inputs(request: GenerationRequest, max_side: int) -> tuple[int, int, list[str], str]:
    """Size rounded for Stable Diffusion, notes about the rounding, and the prompt with any edit instruction."""
    w, h, size_note = sd_size(request.plan.width, request.plan.height, max_side)
    prompt = request.prompt
    if request.instruction and request.instruction not in prompt:
        prompt = f"{request.instruction}\n{prompt}"
    return w, h, [size_note] if size_note else [], prompt


def sd_size(width: int, height: int, max_side: int) -> tuple[int, int, str | None]:
    """The size a Stable Diffusion server can render: multiples of 8, long side capped; plus a note if changed."""
    cap = max(64, max_side // 8 * 8)
    s = min(1.0, cap / max(width, height))
    w = min(cap, max(64, round(width * s / 8) * 8))
    h = min(cap, max(64, round(height * s / 8) * 8))
    if (w, h) == (width, height):
        return w, h, None
    return w, h, (f"plan size {width}x{height} rendered at {w}x{h} (multiples of 8, "
                  f"long side <= max_side {cap}); the spec critic judges the difference")


def max_side_sizes(max_side: int) -> list[str]:
    """The size tiers (1K, 2K, 4K) whose long side fits max_side."""
    return [tier for tier, side in (("1K", 1024), ("2K", 2048), ("4K", 4096)) if side <= max_side]


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def decode_output(data: bytes, label: str) -> Image.Image:
    """Decode an image the server sent; a truncated or non-image body is a MalformedResponse."""
    try:
        return decode_image_bytes(data, label=label)
    except ImageInputError as e:
        raise MalformedResponse(str(e)) from None


def open_ref(store: Any, ref: ImageRef | None, what: str) -> Image.Image:
    """Open an input image from the run's store, as a BackendError if there is none or it cannot be read."""
    if ref is None:
        raise BackendError(f"no {what} given")
    if store is None:
        raise BackendError(f"{what} given but no artifact store to open it")
    try:
        return store.open(ref)
    except (OSError, ValueError) as e:
        raise BackendError(f"cannot open {what} {ref.path}: {e}") from e


__all__ = ["StableDiffusionOptions", "decode_output", "max_side_sizes", "open_ref", "png_bytes", "sd_inputs",
           "sd_size"]
