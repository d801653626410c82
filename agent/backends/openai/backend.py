"""The openai backend class and its options: a plan becomes a JSON generation or a multipart edit request,
and the answer an image with its size notes, usage and cost."""

from __future__ import annotations

import base64
import binascii
import io
import os
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from PIL import Image
from pydantic import Field, field_validator, model_validator

from agent.backends.base import Capabilities, GenerationRequest, GenerationResult, HttpOptions, parse_options
from agent.backends.errors import VARIANTS, AuthError, MalformedResponse, NoImageReturned
from agent.backends.openai.errors import classify_openai_error
from agent.backends.openai.prices import DEFAULT_MODEL, cost_from_usage, estimate_cost
from agent.backends.openai.sizes import FLEX_MAX_SIDE, choose_size, is_flex_model, parse_size
from agent.models import ASPECT_RATIOS, ImageRef
from agent.models.errors import BackendError, BackendOptionError
from agent.runtime.http import HttpClient, current_deadline
from agent.runtime.images import ImageInputError, decode_image_bytes, sniff_mime
from agent.runtime.provenance import has_manifest
from agent.runtime.secrets import api_key, redact

DEFAULT_BASE_URL = "https://api.openai.com/v1"
LOCAL_KEY = "sk-local"
"""Sent to a custom base_url when OPENAI_API_KEY is unset (local servers ignore or want any key)."""
MAX_IMAGES = 16
"""Most input images one edit request takes (base image plus references)."""
MAX_PROMPT_CHARS = 32_000

Quality = Literal["low", "medium", "high", "auto"]
Background = Literal["transparent", "opaque", "auto"]
OutputFormat = Literal["png", "jpeg", "webp"]
Moderation = Literal["auto", "low"]
Fidelity = Literal["high", "low"]
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class InvalidBackendOption(BackendOptionError):
    """A --backend-option the openai backend cannot use (reported as bad input, exit 2)."""


class OpenAIOptions(HttpOptions):
    """The openai backend's `--backend-option`s: the Images API fields it sends, plus HTTP settings.
    Choices are case-insensitive."""

    quality: Quality = Field("auto", description="image quality; 'auto' lets the model choose")
    background: Background | None = Field(None, description="transparent needs output_format png or webp")
    output_format: OutputFormat = Field("png", description="format of the returned image")
    output_compression: int | None = Field(None, ge=0, le=100, description="jpeg/webp compression, percent")
    moderation: Moderation | None = Field(None, description="moderation level (generations only)")
    input_fidelity: Fidelity | None = Field(None, description="how closely edits keep input images "
                                                              "(not gpt-image-1-mini)")
    size: str | None = Field(None, description="WxH to request instead of the plan's canvas, or auto")
    user: str | None = Field(None, description="end-user id sent for abuse monitoring")

    @field_validator("quality", "background", "output_format", "moderation", "input_fidelity", "size",
                     mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return str(v).strip().lower() if v is not None else v

    @field_validator("size")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None and v != "auto" and parse_size(v) is None:
            raise ValueError(f"size={v!r}; use WxH (e.g. 1536x1024) or auto")
        return v

    @model_validator(mode="after")
    def _format_rules(self) -> OpenAIOptions:
        if self.output_compression is not None and self.output_format == "png":
            raise ValueError("output_compression needs output_format=jpeg or webp")
        if self.background == "transparent" and self.output_format == "jpeg":
            raise ValueError("background=transparent needs output_format=png or webp")
        return self


def _normalise_base_url(base_url: str | None) -> str:
    """The API root; a bare host (http://127.0.0.1:8080) gets the conventional /v1."""
    if not base_url:
        return DEFAULT_BASE_URL
    base = base_url.rstrip("/")
    return base + "/v1" if urlsplit(base).path in ("", "/") else base


def openai_mask(mask: Image.Image, size: tuple[int, int]) -> bytes:
    """pixloop's mask (white = may change) as OpenAI wants it: an RGBA PNG of `size`, alpha 0 where editable."""
    grey = mask.convert("L")
    if grey.size != size:
        grey = grey.resize(size, Image.Resampling.NEAREST)
    alpha = grey.point(lambda v: 0 if v >= 128 else 255)
    rgba = Image.new("RGBA", size, (0, 0, 0, 255))
    rgba.putalpha(alpha)
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    return buf.getvalue()


class OpenAIBackend:
    """gpt-image models via the OpenAI Images API (or any server speaking it, such as the loopback fake)."""

    name = "openai"

    def __init__(self, model: str = DEFAULT_MODEL, base_url: str | None = None,
                 options: OpenAIOptions | Mapping[str, Any] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.model = model
        self.base_url = _normalise_base_url(base_url)
        self.official = urlsplit(self.base_url).hostname == "api.openai.com"
        self.options = options if isinstance(options, OpenAIOptions) else parse_options(
            OpenAIOptions, options, self.name, error=InvalidBackendOption)
        if self.options.input_fidelity and model.startswith("gpt-image-1-mini"):
            raise InvalidBackendOption("openai backend: input_fidelity is not supported by gpt-image-1-mini")
        self.http = HttpClient("openai", self.base_url, settings=self.options.http_settings(),
                               classifier=classify_openai_error, transport=transport, family=VARIANTS)
        flex = is_flex_model(model)
        self.capabilities = Capabilities(
            edit=True, mask=True, max_references=MAX_IMAGES,
            aspect_ratios=list(ASPECT_RATIOS) if flex else ["1:1", "3:2", "2:3"],
            sizes=["1K", "2K", "4K"] if flex else ["1K"],
            native_long_side=FLEX_MAX_SIDE if flex else 1536, deterministic=False,
            cost_per_image=estimate_cost(model, self.options.quality, 1024, 1024))

    @classmethod
    def from_config(cls, config: Any) -> OpenAIBackend:
        """Build from a PixloopConfig: model, base_url and --backend-option values (image and HTTP settings)."""
        return cls(model=getattr(config, "model", None) or DEFAULT_MODEL,
                   base_url=getattr(config, "base_url", None), options=getattr(config, "options", None))

    def _headers(self) -> dict[str, str]:
        """Auth headers for one request, read from the environment now (never stored)."""
        key = api_key("openai")
        if not key:
            if self.official:
                raise AuthError("openai: OPENAI_API_KEY is not set; export your key "
                                "(https://platform.openai.com/api-keys) or point --base-url at a compatible server")
            key = LOCAL_KEY
        headers = {"Authorization": f"Bearer {key}"}
        for env, header in (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project")):
            if os.environ.get(env):
                headers[header] = os.environ[env]
        return headers

    def _size(self, width: int, height: int) -> tuple[str, dict[str, Any]]:
        """The size field for a canvas and what was rounded (empty when the canvas is sent as is)."""
        opt = self.options.size
        if opt == "auto":
            return "auto", {"requested": f"{width}x{height}", "sent": "auto", "reason": "size=auto option"}
        if opt:
            width, height = parse_size(opt) or (width, height)
        w, h = choose_size(self.model, width, height)
        sent = f"{w}x{h}"
        if (w, h) == (width, height):
            return sent, {}
        why = ("fixed sizes only: 1024x1024, 1536x1024, 1024x1536" if not is_flex_model(self.model)
               else "multiples of 16, ratio 1:3..3:1, 655,360..8,294,400 pixels, long side <= 3840")
        return sent, {"requested": f"{width}x{height}", "sent": sent, "reason": f"{self.model}: {why}"}

    def _common_fields(self, size: str) -> dict[str, Any]:
        o = self.options
        fields: dict[str, Any] = {"model": self.model, "n": 1, "size": size, "quality": o.quality,
                                  "output_format": o.output_format}
        if o.background:
            fields["background"] = o.background
        if o.output_compression is not None:
            fields["output_compression"] = o.output_compression
        if o.user:
            fields["user"] = o.user
        return fields

    def generation_body(self, request: GenerationRequest) -> tuple[dict[str, Any], dict[str, Any]]:
        """The JSON body of POST /images/generations and the size rounding to report."""
        size, rounding = self._size(request.plan.width, request.plan.height)
        body = {**self._common_fields(size), "prompt": request.prompt[:MAX_PROMPT_CHARS]}
        if self.options.moderation:
            body["moderation"] = self.options.moderation
        return body, rounding

    def edit_form(self, request: GenerationRequest, store: Any) -> tuple[dict[str, str], list[tuple[str, tuple]],
                                                                         dict[str, Any]]:
        """Form fields, files and notes of POST /images/edits (base image first, then references)."""
        if store is None:
            raise BackendError("openai: an edit needs the artifact store to read its images")
        refs: list[ImageRef] = ([request.base_image] if request.base_image else []) + list(request.references)
        notes: dict[str, Any] = {}
        if len(refs) > MAX_IMAGES:
            notes["references_dropped"] = len(refs) - MAX_IMAGES
            refs = refs[:MAX_IMAGES]
        field = "image" if request.base_image is not None and len(refs) == 1 else "image[]"
        files = [(field, self._image_file(ref, store, i)) for i, ref in enumerate(refs)]
        if request.mask is not None:
            if request.base_image is None:
                notes["mask_ignored"] = "a mask applies to a base image; none was given"
            else:
                try:
                    mask = store.open(request.mask)
                except (OSError, ValueError) as e:
                    raise BackendError(f"openai: cannot open mask {request.mask.path}: {e}") from e
                files.append(("mask", ("mask.png", openai_mask(mask, (refs[0].width, refs[0].height)), "image/png")))
                notes["masked"] = True
        size, rounding = self._size(request.plan.width, request.plan.height)
        prompt = request.instruction if request.base_image is not None and request.instruction else request.prompt
        fields = {**self._common_fields(size), "prompt": prompt[:MAX_PROMPT_CHARS]}
        if self.options.input_fidelity:
            fields["input_fidelity"] = self.options.input_fidelity
        if rounding:
            notes["size_rounding"] = rounding
        return {k: str(v) for k, v in fields.items()}, files, notes

    @staticmethod
    def _image_file(ref: ImageRef, store: Any, index: int) -> tuple[str, bytes, str]:
        """One input image as a multipart file; formats the API does not take are re-encoded as PNG."""
        try:
            if ref.mime in ("image/png", "image/jpeg", "image/webp"):
                data = store.read_bytes(ref)
                ext = ref.mime.split("/")[1].replace("jpeg", "jpg")
                return f"image-{index}.{ext}", data, ref.mime
            buf = io.BytesIO()
            store.open(ref).save(buf, format="PNG")
            return f"image-{index}.png", buf.getvalue(), "image/png"
        except (OSError, ValueError) as e:
            raise BackendError(f"openai: cannot read input image {ref.path}: {e}") from e

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """One image: an edit when there is a base image or references, else a generation."""
        headers = self._headers()
        sent: dict[str, Any]
        if request.base_image is not None or request.references:
            fields, files, notes = self.edit_form(request, store)
            resp = await self.http.request("POST", "/images/edits", data=fields, files=files, headers=headers)
            endpoint, sent = "edits", {k: v for k, v in fields.items() if k != "prompt"}
            sent["images"] = sum(1 for f in files if f[0] != "mask")
        else:
            body, rounding = self.generation_body(request)
            resp = await self.http.request("POST", "/images/generations", json=body, headers=headers)
            endpoint, sent = "generations", {k: v for k, v in body.items() if k != "prompt"}
            notes = {"size_rounding": rounding} if rounding else {}
        return await self._result(resp, endpoint, sent, notes)

    async def _result(self, resp: httpx.Response, endpoint: str, sent: dict[str, Any],
                      notes: dict[str, Any]) -> GenerationResult:
        payload = self.http.json(resp)
        if not isinstance(payload, dict):
            raise MalformedResponse(f"openai: expected a JSON object, got {type(payload).__name__}")
        data = payload.get("data")
        if not isinstance(data, list):
            raise MalformedResponse("openai: the response has no 'data' list")
        if not data:
            raise NoImageReturned("openai: the response contained no image (empty data)", reason="no_image")
        item = data[0] if isinstance(data[0], dict) else {}
        raw = await self._image_bytes(item)
        try:
            image = decode_image_bytes(raw, label="openai image (data[0])")
        except ImageInputError as e:
            raise MalformedResponse(f"openai: the returned image is unusable: {e}") from None
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else None
        cost = cost_from_usage(self.model, usage) if usage else None
        w, h = image.size
        meta: dict[str, Any] = {
            "model": self.model, "endpoint": endpoint, "size": payload.get("size") or sent.get("size"),
            "quality": payload.get("quality") or sent.get("quality"),
            "output_format": payload.get("output_format") or sent.get("output_format"),
            "background": payload.get("background"), "mime": sniff_mime(raw), "width": w, "height": h,
            "request_id": resp.headers.get("x-request-id"), "created": payload.get("created"),
            "usage": usage, "cost_source": "usage" if cost is not None else "estimate", **notes,
        }
        declared = _MIME.get(str(meta["output_format"]))
        if declared and meta["mime"] and declared != meta["mime"]:
            meta["format_mismatch"] = f"declared {meta['output_format']}, bytes are {meta['mime']}"
        requested = parse_size(str(sent.get("size") or ""))
        if requested and requested != (w, h):
            meta["size_mismatch"] = f"asked for {requested[0]}x{requested[1]}, got {w}x{h}"
        if item.get("revised_prompt"):
            meta["revised_prompt"] = str(item["revised_prompt"])[:500]
        if cost is None:
            cost = estimate_cost(self.model, str(meta["quality"] or "auto"), w, h)
        if usage:
            details = usage.get("output_tokens_details") or {}
            self.http.usage.add_tokens(input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"),
                                       output_image_tokens=details.get("image_tokens"))
        self.http.usage.cost += cost
        if has_manifest(raw, meta["mime"]):
            meta["c2pa_manifest"] = True
        return GenerationResult(image=image, cost=cost, meta={k: v for k, v in meta.items() if v is not None},
                                original=raw)

    async def _image_bytes(self, item: dict[str, Any]) -> bytes:
        """The image bytes of one data item: b64_json (GPT models), or a URL download (dall-e style servers)."""
        b64 = item.get("b64_json")
        if isinstance(b64, str) and b64:
            try:
                return base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise MalformedResponse(f"openai: data[0].b64_json is not valid base64 ({len(b64)} chars, "
                                        "truncated?)") from None
        url = item.get("url")
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            try:
                timeout = self.http.settings.read_timeout
                scope = current_deadline()  # the run's time budget bounds the download too
                if scope is not None:
                    timeout = max(0.001, min(timeout, scope.remaining()))
                async with httpx.AsyncClient(timeout=timeout) as client:
                    resp = await client.get(url)
                    resp.raise_for_status()
                    return resp.content
            except httpx.HTTPError as e:
                raise MalformedResponse(f"openai: could not download the image URL: {redact(str(e))}") from None
        raise NoImageReturned("openai: data[0] has neither b64_json nor url", reason="no_image")

    async def aclose(self) -> None:
        await self.http.aclose()


__all__ = ["DEFAULT_BASE_URL", "MAX_IMAGES", "InvalidBackendOption", "OpenAIBackend", "OpenAIOptions",
           "openai_mask"]
