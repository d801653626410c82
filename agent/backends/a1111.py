"""The AUTOMATIC1111 / Forge backend: /sdapi/v1/txt2img, and /sdapi/v1/img2img for edits and masks.

Edits send the base image as ``init_images`` with ``denoising_strength`` (options["denoise"],
0.6); a mask (white = repaint, pixloop's convention and A1111's) adds ``mask``,
``inpainting_fill`` (1 = original) and ``inpaint_full_res``. Stable Diffusion cannot fuse
reference images, so references are ignored (noted in meta) unless
``reference_mode=img2img``, which starts from reference 1 with a higher denoise
(options["reference_denoise"], 0.85): ``max_references`` says 0 or 1 accordingly.

Basic auth (``--api-auth``) comes from the A1111_AUTH environment variable ("user:pass") or
options["username"]/["password"]; prefer the variable, options are saved in run.json.
Errors: 401 -> AuthError; 404 ("Sampler not found", "Init image not found") and 422 (field
list) -> BadRequest; 500 OutOfMemoryError -> BackendError at once (retrying cannot free GPU
memory); other 5xx are retried.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import time
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from PIL import Image
from pydantic import Field, SecretStr, field_validator, model_validator

from agent.backends.base import Capabilities, GenerationRequest, GenerationResult, parse_options
from agent.backends.errors import VARIANTS, AuthError, BadRequest, MalformedResponse, NoImageReturned
from agent.backends.sd import StableDiffusionOptions, decode_output, max_side_sizes, open_ref, png_bytes, sd_inputs
from agent.models import ASPECT_RATIOS
from agent.models.errors import BackendError, UnknownBackendError
from agent.runtime.http import HttpClient, default_classifier, error_detail

DEFAULT_BASE_URL = "http://127.0.0.1:7860"
AUTH_ENV = "A1111_AUTH"
INFO_KEYS = ("seed", "subseed", "sd_model_name", "sd_model_hash", "sampler_name", "scheduler", "steps", "cfg_scale",
             "width", "height", "denoising_strength", "version")


class A1111Options(StableDiffusionOptions):
    """The a1111 backend's `--backend-option`s: the shared sampling options (checkpoint, steps, cfg, denoise,
    reference_denoise, max_side, timeout) and HTTP settings, plus these."""

    sampler: str = Field("Euler a", description="sampler_name (GET /sdapi/v1/samplers lists them)")
    scheduler: str | None = Field(None, description="scheduler (Forge and A1111 1.9+); default: the sampler's")
    reference_mode: Literal["img2img", "ignore"] = Field(
        "ignore", description="without a base image, start img2img from reference 1, or ignore references")
    inpainting_fill: int = Field(1, description="masked area start: 0 fill, 1 original, 2 latent noise, "
                                                "3 latent nothing")
    inpaint_full_res: bool = Field(False, description="inpaint the masked area at full resolution")
    mask_blur: int = Field(4, ge=0, description="mask edge blur in pixels")
    username: str | None = Field(None, description="HTTP Basic user (prefer the A1111_AUTH variable)")
    password: SecretStr | None = Field(None, description="HTTP Basic password (prefer the A1111_AUTH variable)")
    # None = derive from timeout: _timeouts_follow_timeout fills both, so they are floats once validated
    read_timeout: float | None = Field(  # type: ignore[assignment]  # see above
        None, gt=0, description="seconds to wait for one answer (default: timeout)")
    total_timeout: float | None = Field(  # type: ignore[assignment]  # see above
        None, gt=0, description="give up retrying after this many seconds (default: 2 x timeout)")
    max_concurrency: int = Field(1, ge=1, description="requests in flight at once (the WebUI runs one)")

    @field_validator("inpainting_fill")
    @classmethod
    def _fill(cls, v: int) -> int:
        if v not in (0, 1, 2, 3):
            raise ValueError("inpainting_fill must be 0 fill, 1 original, 2 latent noise or 3 latent nothing")
        return v

    @model_validator(mode="after")
    def _timeouts_follow_timeout(self) -> A1111Options:
        if self.read_timeout is None:
            self.read_timeout = self.timeout
        if self.total_timeout is None:
            self.total_timeout = 2 * self.timeout
        return self


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def explain_422(body: Any) -> str:
    """'body.steps: value is not a valid integer; ...' from FastAPI's validation detail list."""
    items = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return str(body)[:300]
    parts = []
    for item in items[:10]:
        if isinstance(item, dict):
            loc = ".".join(str(x) for x in item.get("loc") or []) or "request"
            parts.append(f"{loc}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or str(items)[:300]


def decode_b64_image(data: Any, label: str) -> Image.Image:
    """A base64 image string (bare, or with a data: prefix) -> image; anything else is MalformedResponse."""
    if not isinstance(data, str) or not data:
        raise MalformedResponse(f"{label} is not a base64 string")
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedResponse(f"{label} is not valid base64") from None
    return decode_output(raw, label)


def b64_png(img: Image.Image) -> str:
    return base64.b64encode(png_bytes(img)).decode("ascii")


class A1111Backend:
    """Stable Diffusion through an AUTOMATIC1111 or Forge WebUI started with --api (local; costs nothing)."""

    name = "a1111"

    def __init__(self, base_url: str | None = None, options: A1111Options | Mapping[str, Any] | None = None,
                 model: str | None = None, transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.options = o = (options if isinstance(options, A1111Options)
                            else parse_options(A1111Options, options, self.name))
        self.checkpoint = o.checkpoint or model or None
        self.sampler, self.scheduler, self.reference_mode = o.sampler, o.scheduler, o.reference_mode
        self.steps, self.cfg, self.denoise, self.reference_denoise = o.steps, o.cfg, o.denoise, o.reference_denoise
        self.inpainting_fill, self.inpaint_full_res, self.mask_blur = o.inpainting_fill, o.inpaint_full_res, o.mask_blur
        self.max_side = o.max_side
        try:
            auth = self._auth()
        except ValueError as e:
            raise UnknownBackendError(f"a1111 backend: {e}") from None
        self.has_auth = auth is not None
        self.http = HttpClient(self.name, self.base_url, settings=o.http_settings(), classifier=self._classify,
                               auth=auth, transport=transport, family=VARIANTS)
        self.capabilities = Capabilities(
            edit=True, mask=True, max_references=1 if self.reference_mode == "img2img" else 0,
            aspect_ratios=list(ASPECT_RATIOS), sizes=max_side_sizes(self.max_side),
            native_long_side=min(1024, self.max_side), deterministic=False, cost_per_image=0.0)

    @classmethod
    def from_config(cls, config: Any) -> A1111Backend:
        """Build from a PixloopConfig: base_url, model (a checkpoint title) and options."""
        return cls(getattr(config, "base_url", None), getattr(config, "options", None),
                   getattr(config, "model", None))

    def _auth(self) -> httpx.BasicAuth | None:
        """HTTP Basic credentials from A1111_AUTH ('user:pass') or the username/password options."""
        env = os.environ.get(AUTH_ENV, "")
        if env:
            user, sep, password = env.partition(":")
            if not sep:
                raise ValueError(f"{AUTH_ENV} must be 'user:password'")
            return httpx.BasicAuth(user, password)
        if self.options.username:
            password = self.options.password.get_secret_value() if self.options.password else ""
            return httpx.BasicAuth(self.options.username, password)
        return None

    def _classify(self, resp: httpx.Response) -> Any:
        """A1111's {"error", "detail", "body", "errors"} and FastAPI's 422 into pixloop's exceptions."""
        status, body = resp.status_code, _body(resp)
        detail = str(body.get("detail") or "") if isinstance(body, dict) and not isinstance(
            body.get("detail"), list) else ""
        if status == 401:
            if self.has_auth:
                return AuthError(f"HTTP 401: the server rejected the Basic auth credentials ({detail or 'no detail'})")
            return AuthError(f"HTTP 401: the server wants HTTP Basic auth (--api-auth); set {AUTH_ENV}=user:pass "
                             "or the username/password backend options")
        if status == 404:
            if "sampler" in detail.lower():
                return BadRequest(f"HTTP 404: {detail}: sampler_name {self.sampler!r} is not installed "
                                  "(see GET /sdapi/v1/samplers; set --backend-option sampler=NAME)")
            if detail == "Not Found":
                return BadRequest(f"HTTP 404 for {resp.request.url.path}: is the WebUI started with --api?")
            return BadRequest(f"HTTP 404: {detail or error_detail(resp)}")
        if status == 422:
            return BadRequest(f"HTTP 422: invalid request fields: {explain_422(body)}")
        if status >= 500 and isinstance(body, dict):
            text = " ".join(str(body.get(k) or "") for k in ("error", "detail", "errors"))
            if "OutOfMemory" in text or "out of memory" in text.lower():
                return BackendError(f"HTTP {status}: the server ran out of GPU memory ({text.strip()[:200]}); "
                                    "lower --backend-option max_side or free the GPU")
            if "Invalid encoded image" in text:
                return BadRequest(f"HTTP {status}: the server could not decode an image we sent ({text.strip()[:200]})")
        return default_classifier(resp)

    def _payload(self, request: GenerationRequest,
                 store: Any) -> tuple[str, dict[str, Any], list[str], tuple[int, int]]:
        """The endpoint and JSON body for a request, plus notes (runs in a worker thread: it encodes images)."""
        from agent.backends.compose import cover_fit

        plan = request.plan
        w, h, notes, prompt = sd_inputs(request, self.max_side)
        payload: dict[str, Any] = {
            "prompt": prompt, "negative_prompt": ", ".join(plan.negative), "seed": request.seed,
            "steps": self.steps, "cfg_scale": self.cfg, "sampler_name": self.sampler, "width": w, "height": h,
            "batch_size": 1, "n_iter": 1, "send_images": True, "save_images": False,
        }
        if self.scheduler:
            payload["scheduler"] = self.scheduler
        if self.checkpoint:
            payload["override_settings"] = {"sd_model_checkpoint": self.checkpoint}
            payload["override_settings_restore_afterwards"] = True
        if request.base_image is not None:
            base = open_ref(store, request.base_image, "base image").convert("RGB")
            if base.size != (w, h):
                base = base.resize((w, h), Image.Resampling.LANCZOS)
            payload.update(init_images=[b64_png(base)], denoising_strength=self.denoise, resize_mode=0)
            if request.mask is not None:
                mask = open_ref(store, request.mask, "mask").convert("L")
                if mask.size != (w, h):
                    mask = mask.resize((w, h), Image.Resampling.NEAREST)
                payload.update(mask=b64_png(mask), inpainting_fill=self.inpainting_fill,
                               inpaint_full_res=self.inpaint_full_res, inpaint_full_res_padding=32,
                               mask_blur=self.mask_blur, inpainting_mask_invert=0)
            if request.references:
                notes.append(f"{len(request.references)} reference image(s) ignored: an edit starts from the "
                             "base image and SD has no multi-image fusion")
            return "img2img", payload, notes, (w, h)
        if request.mask is not None:
            raise BadRequest("a1111: a mask needs a base image to edit")
        if request.references and self.reference_mode == "img2img":
            ref = request.references[0]
            init = cover_fit(open_ref(store, ref, "reference image").convert("RGB"), w, h)
            payload.update(init_images=[b64_png(init)], denoising_strength=self.reference_denoise, resize_mode=0)
            notes.append(f"reference image 1 used as the img2img start (denoise {self.reference_denoise})")
            if len(request.references) > 1:
                notes.append(f"{len(request.references) - 1} further reference image(s) ignored")
            return "img2img", payload, notes, (w, h)
        if request.references:
            notes.append(f"{len(request.references)} reference image(s) ignored: Stable Diffusion has no "
                         "multi-image fusion (set --backend-option reference_mode=img2img to start from the first)")
        return "txt2img", payload, notes, (w, h)

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """One txt2img or img2img call; the first returned image is ours (extensions may append more)."""
        before = self.http.usage.snapshot()
        t0 = time.perf_counter()
        endpoint, payload, notes, size = await asyncio.to_thread(self._payload, request, store)
        resp = await self.http.request("POST", f"/sdapi/v1/{endpoint}", json=payload)
        body = self.http.json(resp)
        if not isinstance(body, dict) or not isinstance(body.get("images"), list):
            raise MalformedResponse(f"a1111: /sdapi/v1/{endpoint} answered without an images list: {str(body)[:200]}")
        if not body["images"]:
            raise NoImageReturned(f"a1111: /sdapi/v1/{endpoint} returned no image")
        image = await asyncio.to_thread(decode_b64_image, body["images"][0], f"a1111 {endpoint} image")
        info = self._info(body.get("info"), notes)
        if image.size != size:
            notes.append(f"the server returned {image.width}x{image.height}, not the requested {size[0]}x{size[1]}")
        after = self.http.usage.snapshot()
        meta: dict[str, Any] = {
            "backend": self.name, "endpoint": endpoint, "seed": info.get("seed", request.seed), "size": list(size),
            "sampler": info.get("sampler_name", self.sampler), "steps": info.get("steps", self.steps),
            "cfg": info.get("cfg_scale", self.cfg), "model": info.get("sd_model_name") or self.checkpoint,
            "seconds": round(time.perf_counter() - t0, 3),
            "usage": {k: after[k] - before[k] for k in ("requests", "retries", "failures")},
        }
        for key in ("sd_model_hash", "version", "subseed"):
            if info.get(key) is not None:
                meta[key] = info[key]
        if endpoint == "img2img":
            meta["denoise"] = payload["denoising_strength"]
            meta["masked"] = "mask" in payload
        if notes:
            meta["notes"] = notes
        return GenerationResult(image=image, cost=0.0, meta=meta)

    @staticmethod
    def _info(raw: Any, notes: list[str]) -> dict[str, Any]:
        """The response's `info` (a JSON string) reduced to the keys worth keeping; unparsable info is a note."""
        if isinstance(raw, dict):
            info = raw
        else:
            try:
                info = json.loads(raw) if isinstance(raw, str) and raw else {}
            except ValueError:
                notes.append("the response's info field is not JSON")
                return {}
        if not isinstance(info, dict):
            return {}
        return {k: info[k] for k in INFO_KEYS if info.get(k) is not None}


__all__ = ["A1111Backend", "A1111Options", "explain_422"]
