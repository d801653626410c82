"""The diffusers backend: runs a local Stable Diffusion-style pipeline folder on this machine.

The user names a folder saved by diffusers (one with model_index.json, e.g. from
`save_pretrained` or a downloaded snapshot); nothing is ever downloaded: loading uses
`local_files_only=True` with HF_HUB_OFFLINE=1. The weights are loaded once per
(folder, device, dtype) and shared by the text-to-image, image-to-image and inpainting
pipelines (`from_pipe`), so SD 1.5 and SDXL folders work through diffusers' AutoPipelines.

Options (`DiffusersOptions`; CLI values arrive as strings): model_path (or config.model),
device (auto|cpu|cuda|cuda:N|mps), dtype (auto|float16|bfloat16|float32), steps (30),
guidance_scale, scheduler (a diffusers scheduler class name), max_side (1024), strength
(img2img, 0.6), inpaint_strength (1.0), overlay (paste the unmasked original back, true),
variant (e.g. fp16 weight files).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub is imported: it reads the flag once

try:
    import diffusers
    import torch
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image
    from diffusers.configuration_utils import ConfigMixin
    from diffusers.schedulers.scheduling_utils import SchedulerMixin
except ImportError as e:  # the registry turns this into "install pixloop[diffusers]"
    raise ImportError(f"the diffusers backend needs torch, diffusers and transformers ({e})") from e

from PIL import Image
from pydantic import Field

from agent.backends.base import BackendOptions, Capabilities, GenerationRequest, GenerationResult, parse_options
from agent.backends.errors import SafetyBlocked
from agent.backends.sd import open_ref
from agent.models import ASPECT_RATIOS, LONG_SIDE, SIZE_TIERS
from agent.models.errors import BackendError, ConfigError

DEFAULT_STEPS = 30
DEFAULT_MAX_SIDE = 1024
DEFAULT_STRENGTH = 0.6
DEFAULT_INPAINT_STRENGTH = 1.0
MIN_MULTIPLE = 8
"""Every diffusers image pipeline needs sides divisible by 8; some (Flux) need more."""
DTYPES = {"float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float32": torch.float32, "fp32": torch.float32, "float": torch.float32}
SIZED_BY_IMAGE = {"width", "height", "output_type"}
"""Call arguments a pipeline may lack without losing anything (img2img takes its size from the image)."""
MODES = {"text2img": AutoPipelineForText2Image, "img2img": AutoPipelineForImage2Image,
         "inpaint": AutoPipelineForInpainting}


class DiffusersConfigError(BackendError, ConfigError):
    """The diffusers backend is misconfigured (no model folder, bad option); raised by from_config."""


class DiffusersOptions(BackendOptions):
    """The diffusers backend's `--backend-option`s (it makes no HTTP calls, so there are no HTTP settings)."""

    model_path: str | None = Field(None, description="the local diffusers pipeline folder (default: --model)")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    dtype: str = Field("auto", description="auto (float16 on a GPU, float32 on CPU), float16, bfloat16, float32")
    steps: int = Field(DEFAULT_STEPS, ge=1, description="inference steps")
    guidance_scale: float | None = Field(None, ge=0, description="classifier-free guidance (default: the pipeline's)")
    scheduler: str | None = Field(None, description="a diffusers scheduler class name (default: the folder's)")
    max_side: int = Field(DEFAULT_MAX_SIDE, ge=MIN_MULTIPLE, description="longest side generated")
    strength: float = Field(DEFAULT_STRENGTH, gt=0, le=1, description="img2img strength")
    inpaint_strength: float = Field(DEFAULT_INPAINT_STRENGTH, gt=0, le=1, description="inpainting strength")
    overlay: bool = Field(True, description="paste the unmasked original back over an inpainting result")
    variant: str | None = Field(None, description="weight file variant, e.g. fp16")


@dataclass
class _Loaded:
    """One pipeline's weights in memory, with a lock: a pipeline runs one image at a time."""

    pipe: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


def _model_folder(raw: str | None) -> Path:
    """The local pipeline folder named by options['model_path'] or config.model, checked."""
    if not raw:
        raise DiffusersConfigError(
            "the diffusers backend needs a local model folder: pass --model PATH or --backend-option "
            "model_path=PATH (a diffusers pipeline folder with model_index.json; nothing is downloaded)")
    path = Path(str(raw)).expanduser()
    if not path.exists():
        raise DiffusersConfigError(f"diffusers model folder {path} does not exist (nothing is downloaded: "
                                   "name a folder on this machine)")
    if not path.is_dir() or not (path / "model_index.json").is_file():
        raise DiffusersConfigError(
            f"{path} is not a diffusers pipeline folder (no model_index.json); single-file checkpoints "
            "(.safetensors/.ckpt) must first be converted with diffusers' from_single_file(...).save_pretrained(DIR)")
    return path.resolve()


def _device(name: str) -> str:
    """'auto' -> cuda if available, else cpu; explicit devices are checked against what torch sees."""
    name = name.strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DiffusersConfigError(f"device {name!r} was asked for but torch sees no CUDA device "
                                       f"(torch {torch.__version__}); use device=cpu or auto")
        return name
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DiffusersConfigError("device 'mps' was asked for but torch sees no MPS device")
        return name
    if name == "cpu":
        return name
    raise DiffusersConfigError(f"unknown device {name!r}; choose auto, cpu, cuda, cuda:N or mps")


def _dtype(name: str, device: str) -> torch.dtype:
    """'auto' -> float16 on CUDA/MPS, float32 on CPU (half precision is slow or unsupported there)."""
    name = name.strip().lower()
    if name == "auto":
        return torch.float32 if device == "cpu" else torch.float16
    if name not in DTYPES:
        raise DiffusersConfigError(f"unknown dtype {name!r}; choose auto, float16, bfloat16 or float32")
    return DTYPES[name]


def _scheduler_class(name: str | None) -> type[ConfigMixin] | None:
    """A diffusers scheduler class by its class name (e.g. EulerDiscreteScheduler), or None for the folder's.
    Only concrete schedulers qualify: they are also ConfigMixins (from_config); the bare SchedulerMixin is not."""
    if not name:
        return None
    cls = getattr(diffusers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, SchedulerMixin) and issubclass(cls, ConfigMixin)):
        known = sorted(n for n in dir(diffusers) if n.endswith("Scheduler") and not n.startswith("_"))
        raise DiffusersConfigError(f"unknown diffusers scheduler {name!r}; choose one of {', '.join(known)}")
    return cls


def generation_size(width: int, height: int, max_side: int, multiple: int = MIN_MULTIPLE) -> tuple[int, int]:
    """The plan's size scaled down to fit max_side (aspect kept), each side rounded to `multiple`."""
    scale = min(1.0, max_side / max(width, height))

    def fit(side: int) -> int:
        n = max(1, int(side * scale / multiple + 0.5))
        while n > 1 and n * multiple > max_side:
            n -= 1
        return n * multiple

    return fit(width), fit(height)


class DiffusersBackend:
    """Local diffusion on CPU or GPU from a user-named pipeline folder: free, seeded, edits and masks."""

    name = "diffusers"
    _loaded: ClassVar[dict[tuple[str, str, str, str | None], _Loaded]] = {}
    _loaded_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model_path: Path, options: DiffusersOptions | Mapping[str, Any] | None = None):
        o = options if isinstance(options, DiffusersOptions) else parse_options(
            DiffusersOptions, options, self.name, error=DiffusersConfigError)
        self.options = o
        self.model_path = model_path
        self.device = _device(o.device)
        self.dtype = _dtype(o.dtype, self.device)
        self.steps = o.steps
        self.guidance_scale = o.guidance_scale
        self.scheduler_cls = _scheduler_class(o.scheduler)
        self.max_side = o.max_side
        self.strength = o.strength
        self.inpaint_strength = o.inpaint_strength
        self.overlay = o.overlay
        self.variant = o.variant
        self._pipes: dict[str, Any] = {}
        self._pipes_lock = threading.Lock()
        self.capabilities = Capabilities(
            edit=True, mask=True, max_references=0, aspect_ratios=list(ASPECT_RATIOS),
            sizes=[t for t in SIZE_TIERS if LONG_SIDE[t] <= o.max_side], native_long_side=o.max_side,
            deterministic=True, cost_per_image=0.0,
        )

    @classmethod
    def from_config(cls, config: Any) -> DiffusersBackend:
        """Check the folder and options now (cheap); the weights load on the first generate()."""
        options = parse_options(DiffusersOptions, getattr(config, "options", None), cls.name,
                                error=DiffusersConfigError)
        return cls(_model_folder(options.model_path or getattr(config, "model", None)), options)

    # --- loading -----------------------------------------------------------------------------

    def _weights(self) -> _Loaded:
        """The text-to-image pipeline for this folder/device/dtype, loaded once per process."""
        key = (str(self.model_path), self.device, str(self.dtype).removeprefix("torch."), self.variant)
        with self._loaded_lock:
            loaded = self._loaded.get(key)
            if loaded is None:
                loaded = _Loaded(self._load())
                self._loaded[key] = loaded
            return loaded

    def _load(self) -> Any:
        """from_pretrained on the local folder only, moved to the device, per-step progress bars off."""
        kwargs: dict[str, Any] = {"dtype": self.dtype, "local_files_only": True}
        if self.variant:
            kwargs["variant"] = self.variant
        try:
            pipe = AutoPipelineForText2Image.from_pretrained(str(self.model_path), **kwargs)
            pipe = pipe.to(self.device)
        except torch.cuda.OutOfMemoryError as e:
            raise BackendError(f"out of GPU memory loading {self.model_path.name} on {self.device} "
                               "(try dtype=float16 or device=cpu)") from e
        except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as e:
            raise BackendError(f"cannot load a diffusers pipeline from {self.model_path}: "
                               f"{type(e).__name__}: {e}") from e
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _pipeline(self, mode: str) -> tuple[Any, threading.Lock]:
        """This backend's pipeline for a mode: the shared weights behind its own scheduler."""
        loaded = self._weights()
        with self._pipes_lock:
            pipe = self._pipes.get(mode)
            if pipe is None:
                kwargs: dict[str, Any] = {}
                if self.scheduler_cls is not None:
                    kwargs["scheduler"] = self.scheduler_cls.from_config(loaded.pipe.scheduler.config)
                try:
                    pipe = MODES[mode].from_pipe(loaded.pipe, **kwargs) if kwargs or mode != "text2img" else loaded.pipe
                except (ValueError, KeyError, TypeError) as e:
                    raise BackendError(f"{type(loaded.pipe).__name__} from {self.model_path.name} cannot do "
                                       f"{mode}: {e}") from e
                pipe.set_progress_bar_config(disable=True)
                self._pipes[mode] = pipe
        return pipe, loaded.lock

    # --- generation --------------------------------------------------------------------------

    def _generate_sync(self, request: GenerationRequest, store: Any) -> tuple[Image.Image, dict[str, Any]]:
        """Load (once), build the call for text2img / img2img / inpaint, run it and check the result."""
        plan = request.plan
        notes: list[str] = []
        if request.mask is not None and request.base_image is None:
            raise BackendError("a mask was given without a base_image to inpaint")
        mode = "inpaint" if request.mask is not None else "img2img" if request.base_image is not None else "text2img"
        pipe, lock = self._pipeline(mode)

        image_processor = getattr(pipe, "image_processor", None)
        multiple = max(MIN_MULTIPLE, int(getattr(getattr(image_processor, "config", None), "vae_scale_factor", 0) or 0))
        width, height = generation_size(plan.width, plan.height, self.max_side, multiple)
        if (width, height) != (plan.width, plan.height):
            notes.append(f"rendered at {width}x{height} instead of {plan.width}x{plan.height} "
                         f"(max_side {self.max_side}, sides a multiple of {multiple})")

        prompt = request.prompt
        if request.instruction and mode != "text2img":
            prompt = f"{prompt}. {request.instruction}" if prompt else request.instruction
        call: dict[str, Any] = {"prompt": prompt, "width": width, "height": height,
                                "num_inference_steps": self.steps, "output_type": "pil"}
        if plan.negative:
            call["negative_prompt"] = ", ".join(plan.negative)
        if self.guidance_scale is not None:
            call["guidance_scale"] = self.guidance_scale
        if request.references:
            notes.append(f"{len(request.references)} reference image(s) ignored: this backend takes none "
                         "(no IP-Adapter is configured)")

        base = mask = None
        if mode != "text2img":
            base = open_ref(store, request.base_image, "base image").convert("RGB")
            base = base.resize((width, height), Image.Resampling.LANCZOS) if base.size != (width, height) else base
            strength = self.inpaint_strength if mode == "inpaint" else self.strength
            call["image"], call["strength"] = base, strength
            if int(self.steps * strength) < 1:
                call["num_inference_steps"] = math.ceil(1 / strength)
                notes.append(f"steps raised to {call['num_inference_steps']} so strength {strength} runs one step")
        if mode == "inpaint":
            mask = open_ref(store, request.mask, "mask").convert("L")
            mask = mask.resize((width, height), Image.Resampling.NEAREST) if mask.size != (width, height) else mask
            call["mask_image"] = mask

        accepted = inspect.signature(type(pipe).__call__).parameters
        for key in [k for k in call if k not in accepted]:
            if key not in SIZED_BY_IMAGE:
                notes.append(f"{type(pipe).__name__} takes no {key}; dropped")
            del call[key]
        guidance_default = accepted["guidance_scale"].default if "guidance_scale" in accepted else None
        call["generator"] = torch.Generator(device=self.device).manual_seed(request.seed & 0xFFFF_FFFF_FFFF_FFFF)

        with lock:  # fast tokenizers and schedulers are not safe to share across threads
            tokenizer = getattr(pipe, "tokenizer", None)
            limit = getattr(tokenizer, "model_max_length", None)
            if tokenizer is not None and isinstance(limit, int) and limit < 100_000:
                tokens = len(tokenizer(prompt).input_ids)
                if tokens > limit:
                    notes.append(f"prompt is {tokens} tokens; the text encoder reads only the first {limit}")
            try:
                with torch.inference_mode():
                    out = pipe(**call)
            except torch.cuda.OutOfMemoryError as e:
                if self.device.startswith("cuda"):
                    torch.cuda.empty_cache()
                raise BackendError(f"out of GPU memory generating {width}x{height} on {self.device} "
                                   "(lower max_side or steps, or use dtype=float16)") from e
            except (RuntimeError, ValueError, TypeError, IndexError) as e:
                raise BackendError(f"diffusers {type(pipe).__name__} failed ({mode}, {width}x{height}): "
                                   f"{type(e).__name__}: {e}") from e

        if any(bool(flag) for flag in (getattr(out, "nsfw_content_detected", None) or [])):
            raise SafetyBlocked(f"{type(pipe).__name__}'s safety checker flagged the image as NSFW "
                                "(it returns a black image)", reason="nsfw_checker")
        images = getattr(out, "images", None)
        if not images:
            raise BackendError(f"diffusers {type(pipe).__name__} returned no image")
        image = images[0].convert("RGB")
        if mode == "inpaint" and self.overlay and base is not None and mask is not None:
            image = Image.composite(image, base, mask)
            notes.append("pixels outside the mask copied from the base image")

        meta: dict[str, Any] = {
            "model": self.model_path.name, "pipeline": type(pipe).__name__, "mode": mode,
            "seed": request.seed, "steps": call.get("num_inference_steps", self.steps),
            "guidance_scale": call.get("guidance_scale", guidance_default),
            "scheduler": type(pipe.scheduler).__name__, "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "size": {"requested": [plan.width, plan.height], "generated": [width, height]},
        }
        if "strength" in call:
            meta["strength"] = call["strength"]
        if request.base_image is not None:
            meta["base_image"] = request.base_image.sha256
        if notes:
            meta["notes"] = notes
        return image, meta

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """Run the pipeline off the event loop; local generation costs nothing."""
        image, meta = await asyncio.to_thread(self._generate_sync, request, store)
        return GenerationResult(image=image, cost=0.0, meta=meta)


__all__ = ["DiffusersBackend", "DiffusersConfigError", "DiffusersOptions", "generation_size"]
