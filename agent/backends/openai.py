"""The OpenAI Images API backend: gpt-image models through /images/generations and /images/edits.

A plan becomes one JSON generation request, or a multipart edit when there is a base image
(or reference images, which gpt-image models only take on the edits endpoint). The plan's
canvas is mapped to a size the model accepts (gpt-image-2: any multiple-of-16 WxH within
limits; older gpt-image models: three fixed sizes) and the rounding is reported in meta.
Costs come from the token usage the API returns, priced with the table below. The API key is
read from OPENAI_API_KEY at request time and travels only in the request headers.
See shared/docs/backend-protocols.md section 2 for the wire format.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from PIL import Image

from agent.models.errors import BackendError, BackendOptionError, UnknownBackendError
from agent.backends.base import Capabilities, GenerationRequest, GenerationResult
from agent.backends.errors import (
    VARIANTS,
    AuthError, BadRequest, MalformedResponse, NoImageReturned, QuotaExhausted, RateLimited, SafetyBlocked, ServerError,
)
from agent.runtime.http import HttpClient, HttpSettings, Retryable, duration_seconds, parse_retry_after
from agent.runtime.secrets import api_key, redact
from agent.runtime.images import ImageInputError, decode_image_bytes, sniff_mime
from agent.models import ASPECT_RATIOS, ImageRef

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-image-2"
MODELS = ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2", "chatgpt-image-latest")
LOCAL_KEY = "sk-local"
"""Sent to a custom base_url when OPENAI_API_KEY is unset (local servers ignore or want any key)."""

FIXED_SIZES: dict[str, tuple[int, int]] = {"1024x1024": (1024, 1024), "1536x1024": (1536, 1024),
                                           "1024x1536": (1024, 1536)}
"""The only sizes gpt-image-1, -1-mini, -1.5 and chatgpt-image-latest accept (besides 'auto')."""
FLEX_STEP = 16
FLEX_MAX_RATIO = 3.0
FLEX_MAX_SIDE = 3840
FLEX_MAX_PIXELS = 3840 * 2160
FLEX_MIN_PIXELS = 655_360
"""gpt-image-2 size rules (protocols doc section 2: multiples of 16, 1:3..3:1, max 3840x2160). The pixel
budget 3840*2160 for any shape and the 655,360 floor are third-party measurements (unconfirmed)."""
FLEX_RATIO_TOLERANCE = 0.015
"""Largest aspect-ratio drift accepted when rounding to multiples of 16 (the spec critic allows 2 %)."""
MAX_IMAGES = 16
"""Most input images one edit request takes (base image plus references)."""
MAX_PROMPT_CHARS = 32_000

QUALITIES = ("low", "medium", "high", "auto")
BACKGROUNDS = ("transparent", "opaque", "auto")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
MODERATIONS = ("auto", "low")
FIDELITIES = ("high", "low")
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True)
class TokenPrices:
    """USD per 1M tokens for one model, and where the numbers come from."""

    text_in: float
    image_in: float
    image_out: float
    text_out: float
    source: str


PRICES: dict[str, TokenPrices] = {
    "gpt-image-1": TokenPrices(5.0, 10.0, 40.0, 40.0,
                              "OpenAI pricing page; protocols doc §2 'gpt-image-1 1024² ≈ $0.011 low / $0.042 "
                              "medium / $0.167 high (token-billed: use usage)' = 272/1056/4160 tokens at $40/M"),
    "gpt-image-1-mini": TokenPrices(2.0, 2.5, 8.0, 8.0,
                                   "developers.openai.com/api/docs/models/gpt-image-1-mini: text $2, image in $2.50, "
                                   "image out $8 per 1M"),
    "gpt-image-1.5": TokenPrices(5.0, 8.0, 32.0, 10.0, "reported (third-party copies of the OpenAI pricing page)"),
    "chatgpt-image-latest": TokenPrices(5.0, 8.0, 32.0, 10.0, "assumed equal to gpt-image-1.5 (unconfirmed)"),
    "gpt-image-2": TokenPrices(5.0, 8.0, 30.0, 10.0,
                              "reported from the OpenAI model page: text in $5, image in $8, image out $30, "
                              "text out $10 per 1M"),
}
"""Token prices per model; a snapshot id (gpt-image-2-2026-04-21) uses its family's row."""

OUTPUT_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160, "auto": 4160}
"""Output image tokens of a 1024x1024 image by quality (gpt-image-1's published table), used only to
estimate a cost before an answer arrives or when a server returns no usage; 'auto' is priced as high."""

HTTP_OPTIONS = tuple(HttpSettings.model_fields)
IMAGE_OPTIONS = ("quality", "background", "output_format", "output_compression", "moderation",
                 "input_fidelity", "size", "user")


class InvalidBackendOption(BackendOptionError):
    """A --backend-option the openai backend cannot use (reported as bad input, exit 2)."""


# --- sizes -------------------------------------------------------------------------------------


def is_flex_model(model: str) -> bool:
    """gpt-image-2 (and its snapshots) take any valid WxH; the others only the fixed sizes."""
    return model.startswith("gpt-image-2")


def flex_size_ok(width: int, height: int) -> bool:
    """Whether gpt-image-2 accepts width x height."""
    long_side, short_side = max(width, height), min(width, height)
    return (width > 0 and height > 0 and width % FLEX_STEP == 0 and height % FLEX_STEP == 0
            and long_side <= FLEX_MAX_SIDE and long_side <= FLEX_MAX_RATIO * short_side
            and FLEX_MIN_PIXELS <= width * height <= FLEX_MAX_PIXELS)


def flex_size(width: int, height: int) -> tuple[int, int]:
    """The valid gpt-image-2 size nearest to width x height.

    The target is first brought inside the limits (ratio clamped to 1:3..3:1, area scaled into the pixel
    budget and under the long-side cap, keeping the ratio); then, among multiple-of-16 sizes whose ratio
    is within FLEX_RATIO_TOLERANCE, the one closest to it side by side wins (else the truest ratio).
    """
    ratio = min(max(width / height, 1 / FLEX_MAX_RATIO), FLEX_MAX_RATIO)
    area = float(min(max(width * height, FLEX_MIN_PIXELS), FLEX_MAX_PIXELS))
    area = min(area, FLEX_MAX_SIDE ** 2 * min(ratio, 1 / ratio))
    tw, th = math.sqrt(area * ratio), math.sqrt(area / ratio)
    best: tuple[tuple[int, float], tuple[int, int]] | None = None
    for dw in range(-2, 4):
        for dh in range(-2, 4):
            w = (math.floor(tw / FLEX_STEP) + dw) * FLEX_STEP
            h = (math.floor(th / FLEX_STEP) + dh) * FLEX_STEP
            if not flex_size_ok(w, h):
                continue
            ratio_error = abs(math.log(w / h / ratio))
            distance = abs(math.log(w / tw)) + abs(math.log(h / th))
            score = (0, distance) if ratio_error <= FLEX_RATIO_TOLERANCE else (1, ratio_error)
            if best is None or score < best[0]:
                best = (score, (w, h))
    return best[1] if best else (1024, 1024)


def fixed_size(width: int, height: int) -> tuple[int, int]:
    """The fixed gpt-image size closest in aspect ratio (square, 3:2 landscape or 2:3 portrait)."""
    return min(FIXED_SIZES.values(), key=lambda s: abs(math.log((s[0] / s[1]) / (width / height))))


def choose_size(model: str, width: int, height: int) -> tuple[int, int]:
    """The size to request from `model` for a plan canvas of width x height."""
    return flex_size(width, height) if is_flex_model(model) else fixed_size(width, height)


def parse_size(text: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


# --- errors ------------------------------------------------------------------------------------


_TRY_AGAIN = re.compile(r"try again in\s+((?:[\d.]+\s*(?:ms|s|m|h)\s*)+)", re.I)


def _error_fields(resp: httpx.Response) -> tuple[dict[str, Any], str]:
    """The `error` object of an OpenAI error body (empty for HTML) and a readable one-line detail."""
    try:
        body = resp.json()
    except ValueError:
        text = re.sub(r"<[^>]+>", " ", resp.text or "")
        text = re.sub(r"\s+", " ", text).strip()[:200]
        return {}, f"{text or resp.reason_phrase or 'no body'} (non-JSON body)"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return {}, str(body)[:300]
    label = err.get("code") or err.get("type") or ""
    return err, f"{label}: {err.get('message') or ''}".strip(": ")[:400]


def retry_hint(resp: httpx.Response, message: str) -> float | None:
    """Seconds to wait before retrying: retry-after-ms / retry-after, 'try again in 20s', x-ratelimit-reset-*."""
    wait = parse_retry_after(resp.headers)
    if wait is not None:
        return wait
    m = _TRY_AGAIN.search(message or "")
    if m:
        return duration_seconds(m.group(1))
    for kind in ("requests", "tokens"):
        if resp.headers.get(f"x-ratelimit-remaining-{kind}") == "0":
            reset = resp.headers.get(f"x-ratelimit-reset-{kind}")
            if reset:
                return duration_seconds(reset)
    return None


def classify_openai_error(resp: httpx.Response) -> BackendError | Retryable | None:
    """Map an OpenAI error answer to the precise exception; rate limits and 5xx come back retryable."""
    status = resp.status_code
    err, detail = _error_fields(resp)
    code, etype = str(err.get("code") or ""), str(err.get("type") or "")
    where = f"HTTP {status} {detail}"
    if resp.headers.get("x-request-id"):
        where += f" (request {resp.headers['x-request-id']})"
    if code in ("moderation_blocked", "content_policy_violation"):
        return SafetyBlocked(f"the safety system rejected the request: {where}", reason=code)
    if "insufficient_quota" in (code, etype):
        return QuotaExhausted(f"quota exhausted, check the plan and billing: {where}")
    if status == 401:
        return AuthError(f"the API key was rejected (OPENAI_API_KEY): {where}")
    if status == 403:
        return AuthError(f"access denied (GPT image models need a verified organization): {where}")
    should_retry = resp.headers.get("x-should-retry")
    error: BackendError
    if status == 429:
        error = RateLimited(f"rate limited: {where}")
    elif status in (408, 409) or status >= 500:
        error = ServerError(where)
    elif status == 404:
        return BadRequest(f"not found (unknown or retired model?): {where}")
    else:
        error = BadRequest(where)
    if should_retry == "false":
        return error
    if isinstance(error, BadRequest) and should_retry != "true":
        return error
    return Retryable(error, retry_hint(resp, str(err.get("message") or "")))


# --- options -----------------------------------------------------------------------------------


def _choice(options: dict[str, Any], key: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = options.get(key, default)
    if value is None:
        return None
    value = str(value).strip().lower()
    if value not in allowed:
        raise InvalidBackendOption(f"openai backend: option {key}={value!r}; choose one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class ImageOptions:
    """The validated image options of one backend instance (from --backend-option)."""

    quality: str = "auto"
    background: str | None = None
    output_format: str = "png"
    output_compression: int | None = None
    moderation: str | None = None
    input_fidelity: str | None = None
    size: str | None = None
    user: str | None = None

    @classmethod
    def parse(cls, options: dict[str, Any]) -> "ImageOptions":
        unknown = sorted(set(options) - set(IMAGE_OPTIONS) - set(HTTP_OPTIONS))
        if unknown:
            raise InvalidBackendOption(f"openai backend: unknown option(s) {', '.join(unknown)}; known: "
                                       f"{', '.join(IMAGE_OPTIONS + HTTP_OPTIONS)}")
        fmt = _choice(options, "output_format", OUTPUT_FORMATS, "png") or "png"
        compression = options.get("output_compression")
        if compression is not None:
            try:
                compression = int(compression)
            except (TypeError, ValueError):
                compression = -1
            if not 0 <= compression <= 100:
                raise InvalidBackendOption("openai backend: output_compression must be an integer 0-100")
            if fmt == "png":
                raise InvalidBackendOption("openai backend: output_compression needs output_format=jpeg or webp")
        background = _choice(options, "background", BACKGROUNDS, None)
        if background == "transparent" and fmt == "jpeg":
            raise InvalidBackendOption("openai backend: background=transparent needs output_format=png or webp")
        size = options.get("size")
        if size is not None:
            size = str(size).strip().lower()
            if size != "auto" and parse_size(size) is None:
                raise InvalidBackendOption(f"openai backend: size={size!r}; use WxH (e.g. 1536x1024) or auto")
        return cls(quality=_choice(options, "quality", QUALITIES, "auto") or "auto", background=background,
                   output_format=fmt, output_compression=compression,
                   moderation=_choice(options, "moderation", MODERATIONS, None),
                   input_fidelity=_choice(options, "input_fidelity", FIDELITIES, None), size=size,
                   user=str(options["user"]) if options.get("user") else None)


def _http_settings(options: dict[str, Any]) -> HttpSettings:
    try:
        return HttpSettings(**{k: v for k, v in options.items() if k in HTTP_OPTIONS})
    except ValueError as e:
        raise InvalidBackendOption(f"openai backend: bad HTTP option: {e}") from None


def _normalise_base_url(base_url: str | None) -> str:
    """The API root; a bare host (http://127.0.0.1:8080) gets the conventional /v1."""
    if not base_url:
        return DEFAULT_BASE_URL
    base = base_url.rstrip("/")
    return base + "/v1" if urlsplit(base).path in ("", "/") else base


# --- cost --------------------------------------------------------------------------------------


def prices_for(model: str) -> TokenPrices | None:
    """The price row for a model id, matching snapshots to their family (longest prefix)."""
    matches = [m for m in PRICES if model == m or model.startswith(m + "-")]
    return PRICES[max(matches, key=len)] if matches else None


def cost_from_usage(model: str, usage: dict[str, Any]) -> float | None:
    """USD for one answer from its token usage, or None when the model's prices are unknown."""
    prices = prices_for(model)
    if prices is None:
        return None
    in_details = usage.get("input_tokens_details") or {}
    out_details = usage.get("output_tokens_details") or {}
    input_tokens, output_tokens = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    in_image = int(in_details.get("image_tokens") or 0)
    in_text = int(in_details.get("text_tokens", input_tokens - in_image) or 0)
    out_text = int(out_details.get("text_tokens") or 0)
    out_image = int(out_details.get("image_tokens", output_tokens - out_text) or 0)
    usd = (in_text * prices.text_in + in_image * prices.image_in + out_image * prices.image_out
           + out_text * prices.text_out) / 1e6
    return round(usd, 6)


def estimate_cost(model: str, quality: str, width: int, height: int) -> float:
    """A before-the-fact USD estimate for one image (budget checks); the real cost comes from usage."""
    prices = prices_for(model) or PRICES[DEFAULT_MODEL]
    tokens = OUTPUT_TOKENS_1024.get(quality, OUTPUT_TOKENS_1024["high"]) * (width * height) / (1024 * 1024)
    return round(tokens * prices.image_out / 1e6 + 200 * prices.text_in / 1e6, 6)


# --- the backend -------------------------------------------------------------------------------


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
                 options: dict[str, Any] | None = None, transport: httpx.AsyncBaseTransport | None = None):
        options = dict(options or {})
        self.model = model
        self.base_url = _normalise_base_url(base_url)
        self.official = urlsplit(self.base_url).hostname == "api.openai.com"
        self.image_options = ImageOptions.parse(options)
        if self.image_options.input_fidelity and model.startswith("gpt-image-1-mini"):
            raise InvalidBackendOption("openai backend: input_fidelity is not supported by gpt-image-1-mini")
        self.http = HttpClient("openai", self.base_url, settings=_http_settings(options),
                               classifier=classify_openai_error, transport=transport, family=VARIANTS)
        flex = is_flex_model(model)
        self.capabilities = Capabilities(
            edit=True, mask=True, max_references=MAX_IMAGES,
            aspect_ratios=list(ASPECT_RATIOS) if flex else ["1:1", "3:2", "2:3"],
            sizes=["1K", "2K", "4K"] if flex else ["1K"],
            native_long_side=FLEX_MAX_SIDE if flex else 1536, deterministic=False,
            cost_per_image=estimate_cost(model, self.image_options.quality, 1024, 1024))

    @classmethod
    def from_config(cls, config: Any) -> "OpenAIBackend":
        """Build from a PixloopConfig: model, base_url and --backend-option values (image and HTTP settings)."""
        return cls(model=getattr(config, "model", None) or DEFAULT_MODEL,
                   base_url=getattr(config, "base_url", None), options=getattr(config, "options", None) or {})

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
        opt = self.image_options.size
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
        o = self.image_options
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
        if self.image_options.moderation:
            body["moderation"] = self.image_options.moderation
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
        size, rounding = self._size(request.plan.width, request.plan.height)
        prompt = request.instruction if request.base_image is not None and request.instruction else request.prompt
        fields = {**self._common_fields(size), "prompt": prompt[:MAX_PROMPT_CHARS]}
        if self.image_options.input_fidelity:
            fields["input_fidelity"] = self.image_options.input_fidelity
        if rounding:
            notes["size_rounding"] = rounding
        return {k: str(v) for k, v in fields.items()}, files, notes

    @staticmethod
    def _image_file(ref: ImageRef, store: Any, index: int) -> tuple[str, bytes, str]:
        """One input image as a multipart file; formats the API does not take are re-encoded as PNG."""
        try:
            if ref.mime in ("image/png", "image/jpeg", "image/webp"):
                data = store.path(ref).read_bytes()
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
        return GenerationResult(image=image, cost=cost, meta={k: v for k, v in meta.items() if v is not None})

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
                async with httpx.AsyncClient(timeout=self.http.settings.read_timeout) as client:
                    resp = await client.get(url)
                    resp.raise_for_status()
                    return resp.content
            except httpx.HTTPError as e:
                raise MalformedResponse(f"openai: could not download the image URL: {redact(str(e))}") from None
        raise NoImageReturned("openai: data[0] has neither b64_json nor url", reason="no_image")

    async def aclose(self) -> None:
        await self.http.aclose()
