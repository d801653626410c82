"""The gemini backend: Google's native image models ("Nano Banana") over the generateContent REST API.

One request per image: `POST {base}/v1beta/models/{model}:generateContent` with the key in the
`x-goog-api-key` header (never `?key=`, which leaks into proxy logs), the prompt plus reference
images as `inlineData`, and `generationConfig.imageConfig {aspectRatio, imageSize}` from the plan.
Edits send the base image back with the instruction; when the model turn that produced the base
image is known (explicit history, or an image this process generated) it is resent with its
`thoughtSignature`s exactly as received, which Gemini 3 models need to edit well.

Every distinct outcome is a distinct exception: safety blocks (finishReason or a blocked prompt),
text-only answers, NO_IMAGE, per-day quota (never retried), retired models and bad keys. 429 and
5xx are retried by the shared HttpClient honouring Google's `RetryInfo.retryDelay`.
Wire format and model table: shared/docs/backend-protocols.md section 1.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx
from PIL import Image
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from agent.models.errors import BackendError, UnknownBackendError
from agent.backends.base import Capabilities, GenerationRequest, GenerationResult
from agent.backends.errors import (
    VARIANTS,
    AuthError, BadRequest, MalformedResponse, NoImageReturned, QuotaExhausted, RateLimited, SafetyBlocked, ServerError,
)
from agent.runtime.http import HttpClient, HttpSettings, Retryable, duration_seconds, error_detail, parse_retry_after
from agent.runtime.secrets import api_key, redact
from agent.runtime.images import ImageInputError, decode_image_bytes, sniff_mime
from agent.models import ImageRef

GOOGLE_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_MODEL = "gemini-3.1-flash-image"
API_VERSIONS = ("v1beta", "v1")
NO_KEY_PLACEHOLDER = "pixloop-no-key"
"""Sent to custom endpoints (fake servers, gateways) when no key is set, so the header is never empty."""

STANDARD_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
FLASH_31_RATIOS = STANDARD_RATIOS + ("1:4", "4:1", "1:8", "8:1")
INPUT_MIMES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
INLINE_MAX_BYTES = 7 * 1024 * 1024
"""Vertex's documented per-image limit; larger references are re-encoded as JPEG before sending."""

SAFETY_FINISH = frozenset({"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT",
                           "BLOCKLIST", "SPII", "RECITATION", "IMAGE_RECITATION"})
"""finishReasons that mean a policy refused the output: the same prompt will be refused again."""

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


class GeminiOptions(BaseModel):
    """Backend options (`--backend-option KEY=VALUE`); HttpSettings fields are accepted alongside.

    model (when --model is not given), image_size ("512" needs 3.1 Flash) and aspect_ratio ("1:4" etc.)
    override the plan; response_modalities "TEXT,IMAGE" or "IMAGE"; thinking_level / include_thoughts
    become thinkingConfig; send_seed puts the seed in generationConfig; stream uses the SSE endpoint.
    """

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    image_size: str | None = None
    aspect_ratio: str | None = None
    response_modalities: list[str] = ["TEXT", "IMAGE"]
    thinking_level: str | None = None
    include_thoughts: bool | None = None
    system_instruction: str | None = None
    send_seed: bool = True
    stream: bool = False
    api_version: str = "v1beta"

    @field_validator("response_modalities", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return [s.strip().upper() for s in v.split(",") if s.strip()] if isinstance(v, str) else v

    @field_validator("image_size", mode="before")
    @classmethod
    def _upper_k(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("api_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if v not in API_VERSIONS:
            raise ValueError(f"api_version must be one of {', '.join(API_VERSIONS)}")
        return v


def split_options(options: dict[str, Any]) -> tuple[GeminiOptions, HttpSettings]:
    """Separate gemini options from HTTP settings; unknown keys are an error naming the known ones."""
    http_keys = set(HttpSettings.model_fields)
    try:
        http = HttpSettings(**{k: v for k, v in options.items() if k in http_keys})
        opts = GeminiOptions(**{k: v for k, v in options.items() if k not in http_keys})
    except ValidationError as e:
        known = ", ".join(sorted({*GeminiOptions.model_fields, *http_keys}))
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise UnknownBackendError(f"gemini backend options: {problems} (known options: {known})") from None
    return opts, http


# --- errors ----------------------------------------------------------------------------------------


def google_error(resp: httpx.Response) -> dict[str, Any]:
    """The `error` object of a Google error body (also when wrapped in a one-element list), or {}."""
    try:
        body = resp.json()
    except ValueError:
        return {}
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else {}


def _details(err: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [d for d in err.get("details") or [] if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)]


def retry_delay(err: dict[str, Any]) -> float | None:
    """Seconds from `RetryInfo.retryDelay` ('37s', '0.5s', or {'seconds': 37})."""
    for info in _details(err, "RetryInfo"):
        delay = info.get("retryDelay")
        if isinstance(delay, str):
            return duration_seconds(delay)
        if isinstance(delay, dict):
            return float(delay.get("seconds", 0)) + float(delay.get("nanos", 0)) / 1e9
    return None


def quota_ids(err: dict[str, Any]) -> list[str]:
    return [str(v.get("quotaId", "")) for q in _details(err, "QuotaFailure") for v in q.get("violations") or []]


def error_reasons(err: dict[str, Any]) -> list[str]:
    return [str(d.get("reason", "")) for d in _details(err, "ErrorInfo")]


def classify(resp: httpx.Response) -> BackendError | Retryable | None:
    """Map a Google error response to pixloop's exceptions; retryable ones carry Google's retryDelay."""
    status = resp.status_code
    err = google_error(resp)
    detail = error_detail(resp)
    message = f"HTTP {status}: {detail}"
    if "API_KEY_INVALID" in error_reasons(err) or "API key not valid" in str(err.get("message", "")):
        return AuthError(f"{message} (check GEMINI_API_KEY / GOOGLE_API_KEY)")
    if status == 429:
        ids = quota_ids(err)
        if any("PerDay" in q for q in ids):
            day = next(q for q in ids if "PerDay" in q)
            return QuotaExhausted(f"{message} (daily quota {day} is used up; retrying today will not help)")
        if "limit: 0" in str(err.get("message", "")):
            return QuotaExhausted(f"{message} (this key has no quota for image models; enable billing)")
        return Retryable(RateLimited(message), retry_delay(err) or parse_retry_after(resp.headers))
    if status in (408, 409) or status >= 500:
        return Retryable(ServerError(message), retry_delay(err) or parse_retry_after(resp.headers))
    if status in (401, 403):
        return AuthError(f"{message} (the key lacks access to this model or API)")
    if status == 404:
        model = resp.request.url.path.rpartition("/")[2].partition(":")[0] if resp.request else "?"
        hint = (f"{model} was shut down; use {RETIRED[model]}" if model in RETIRED
                else f"model {model!r} is unknown or retired; pick one of {', '.join(MODELS)} (--model)")
        return BadRequest(f"{message} ({hint})")
    if err.get("status") == "FAILED_PRECONDITION":
        return BadRequest(f"{message} (billing or region not enabled for this key)")
    return BadRequest(message)


# --- the model turn ------------------------------------------------------------------------------


@dataclass
class _Answer:
    """What one generateContent answer held, after thoughts were dropped."""

    image: bytes
    declared_mime: str
    text: str
    finish: str | None
    turn_parts: list[dict[str, Any]]
    thoughts_skipped: int
    usage: dict[str, Any] = field(default_factory=dict)


def _inline(part: dict[str, Any]) -> dict[str, Any] | None:
    data = part.get("inlineData") or part.get("inline_data")
    return data if isinstance(data, dict) else None


def _signature(part: dict[str, Any]) -> str | None:
    return part.get("thoughtSignature") or part.get("thought_signature")


def merge_stream(text: str) -> dict[str, Any]:
    """Fold an SSE stream of GenerateContentResponse chunks into one response (parts concatenated)."""
    events: list[dict[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
        if not data.strip():
            if block.strip().startswith("{"):
                data = block
            else:
                continue
        try:
            events.append(json.loads(data))
        except ValueError:
            raise MalformedResponse(f"gemini: the stream ended mid-event after {len(events)} event(s)") from None
    if not events:
        raise MalformedResponse("gemini: the stream closed without a single event")
    merged: dict[str, Any] = {}
    parts: list[dict[str, Any]] = []
    candidate: dict[str, Any] = {}
    for ev in events:
        if "error" in ev:
            return ev
        for key in ("promptFeedback", "usageMetadata", "modelVersion", "responseId"):
            if key in ev:
                merged[key] = ev[key]
        for cand in (ev.get("candidates") or [])[:1]:
            parts.extend((cand.get("content") or {}).get("parts") or [])
            candidate.update({k: v for k, v in cand.items() if k != "content"})
    if candidate or parts:
        merged["candidates"] = [{**candidate, "content": {"role": "model", "parts": parts}}]
    return merged


def read_answer(payload: Any, model: str) -> _Answer:
    """Walk candidates[0].content.parts: skip thoughts, keep the last image; raise the precise outcome."""
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, dict):
        raise MalformedResponse(f"gemini: expected a JSON object, got {type(payload).__name__}")
    usage = payload.get("usageMetadata") or {}
    candidates = payload.get("candidates") or []
    if not candidates:
        feedback = payload.get("promptFeedback") or {}
        block = feedback.get("blockReason")
        if block:
            why = feedback.get("blockReasonMessage") or "the prompt or a reference image was refused"
            raise SafetyBlocked(f"gemini {model} blocked the prompt ({block}): {why}; rephrase the prompt or change "
                                "the reference images", reason=f"prompt_blocked:{block}")
        raise MalformedResponse(f"gemini: the answer has no candidates and no promptFeedback: {str(payload)[:160]}")
    cand = candidates[0]
    finish = cand.get("finishReason")
    if finish in SAFETY_FINISH:
        blocked = [r.get("category") for r in cand.get("safetyRatings") or [] if r.get("blocked")]
        extra = f"; {cand['finishMessage']}" if cand.get("finishMessage") else ""
        cats = f" ({', '.join(map(str, blocked))})" if blocked else ""
        raise SafetyBlocked(f"gemini {model} refused to return the image: finishReason {finish}{cats}{extra}",
                            reason=finish)
    parts = (cand.get("content") or {}).get("parts") or []
    kept = [p for p in parts if isinstance(p, dict) and not p.get("thought")]
    text = "\n".join(p["text"] for p in kept if isinstance(p.get("text"), str)).strip()
    images = [i for i, p in enumerate(kept) if _inline(p)]
    if not images:
        if finish == "NO_IMAGE":
            said = f": {text[:300]!r}" if text else ""
            raise NoImageReturned(f"gemini {model} finished with NO_IMAGE (no image was generated){said}",
                                  reason="NO_IMAGE")
        if finish in (None, "STOP") and text:
            raise NoImageReturned(f"gemini {model} answered with text only, no image: {text[:400]!r}",
                                  reason="text_only")
        raise NoImageReturned(f"gemini {model} returned no image (finishReason {finish or 'missing'})",
                              reason=str(finish or "no_image"))
    last = images[-1]
    inline = _inline(kept[last]) or {}
    try:
        data = base64.b64decode(inline.get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        raise MalformedResponse(f"gemini {model}: the image data is not valid base64") from None
    turn: list[dict[str, Any]] = []
    for i, p in enumerate(kept):
        if i == last:
            turn.append({"image": True, **({"thoughtSignature": _signature(p)} if _signature(p) else {})})
        elif isinstance(p.get("text"), str):
            turn.append({"text": p["text"], **({"thoughtSignature": _signature(p)} if _signature(p) else {})})
    declared = inline.get("mimeType") or inline.get("mime_type") or ""
    return _Answer(data, declared, text, finish, turn, len(parts) - len(kept), usage)


def usage_numbers(usage: dict[str, Any]) -> dict[str, int | None]:
    """Token counts from usageMetadata; image tokens from the IMAGE modality of the output details."""
    image = None
    for d in usage.get("candidatesTokensDetails") or []:
        if str(d.get("modality", "")).upper() == "IMAGE":
            image = (image or 0) + int(d.get("tokenCount") or 0)
    return {"prompt_tokens": usage.get("promptTokenCount"), "output_tokens": usage.get("candidatesTokenCount"),
            "image_tokens": image, "thoughts_tokens": usage.get("thoughtsTokenCount"),
            "total_tokens": usage.get("totalTokenCount")}


def pixel_key(image: Image.Image) -> str:
    """Identity of an image's pixels, so a stored PNG of an image we generated is recognised."""
    h = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


# --- the backend ----------------------------------------------------------------------------------


class GeminiBackend:
    """Gemini native image generation and editing (Nano Banana family) behind the ImageBackend protocol."""

    name = "gemini"
    TURN_CACHE = 64
    """Model turns remembered per process, keyed by the pixels of the image they produced."""

    def __init__(self, model: str | None = None, base_url: str | None = None,
                 options: GeminiOptions | None = None, settings: HttpSettings | None = None,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.options = options or GeminiOptions()
        self.model = model or self.options.model or DEFAULT_MODEL
        self.spec = model_spec(self.model)
        self.capabilities = capabilities_for(self.spec)
        base = (base_url or GOOGLE_BASE_URL).rstrip("/")
        self.api_version = self.options.api_version
        for version in API_VERSIONS:
            if base.endswith(f"/{version}"):
                base, self.api_version = base[: -len(version) - 1], version
        self.base_url = base
        host = urlparse(base).hostname or ""
        self.google_endpoint = host == "googleapis.com" or host.endswith(".googleapis.com")
        self.http = HttpClient("gemini", base, headers={"x-goog-api-client": "pixloop/0.1"},
                               settings=settings or HttpSettings(), classifier=classify, transport=transport, family=VARIANTS)
        self._turns: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._turns_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Any) -> "GeminiBackend":
        options, settings = split_options(dict(getattr(config, "options", None) or {}))
        return cls(model=getattr(config, "model", None), base_url=getattr(config, "base_url", None),
                   options=options, settings=settings)

    # -- request --------------------------------------------------------------------------------

    def _key_headers(self) -> dict[str, str]:
        """The API key header, read from the environment now; Google's endpoint requires one."""
        key = api_key("gemini")
        if key:
            return {"x-goog-api-key": key}
        if self.google_endpoint:
            raise AuthError("gemini: no API key: set GEMINI_API_KEY or GOOGLE_API_KEY")
        return {"x-goog-api-key": NO_KEY_PLACEHOLDER}

    def image_config(self, request: GenerationRequest) -> tuple[dict[str, str], str | None]:
        """imageConfig from the plan (or the aspect_ratio/image_size options) within the model's abilities,
        and a note when the plan's size tier had to be lowered."""
        ratio = self.options.aspect_ratio or request.plan.aspect_ratio
        if ratio not in self.spec.aspect_ratios:
            raise BadRequest(f"gemini {self.model} does not support aspect ratio {ratio}; "
                             f"it supports {' '.join(self.spec.aspect_ratios)}")
        config = {"aspectRatio": ratio}
        size, note = self.options.image_size or request.plan.size, None
        if size not in self.spec.sizes:
            if self.options.image_size:
                raise BadRequest(f"gemini {self.model} does not support imageSize {size}; "
                                 f"it supports {' '.join(self.spec.sizes)}")
            note = f"{size} requested; {self.model} makes {self.spec.sizes[-1]} at most"
            size = self.spec.sizes[-1]
        if self.spec.send_image_size:
            config["imageSize"] = size
        return config, note

    def _inline_part(self, ref: ImageRef, store: Any) -> dict[str, Any]:
        """A stored image as inlineData: its own bytes when the type is accepted and small enough."""
        data = store.path(ref).read_bytes()
        mime = sniff_mime(data) or ref.mime
        if mime not in INPUT_MIMES or len(data) > INLINE_MAX_BYTES:
            img = store.open(ref)
            img.thumbnail((4096, 4096))
            buf = io.BytesIO()
            if len(data) > INLINE_MAX_BYTES:
                img.convert("RGB").save(buf, format="JPEG", quality=90)
                mime = "image/jpeg"
            else:
                img.save(buf, format="PNG")
                mime = "image/png"
            data = buf.getvalue()
        return {"inlineData": {"mimeType": mime, "data": base64.b64encode(data).decode("ascii")}}

    def _model_turn(self, record: dict[str, Any], image: ImageRef | dict[str, Any], store: Any) -> dict[str, Any]:
        """A recorded model turn with its parts and signatures as received, the image read from the store."""
        ref = image if isinstance(image, ImageRef) else ImageRef.model_validate(image)
        parts = []
        for p in record.get("parts") or []:
            if p.get("image"):
                part = self._inline_part(ref, store)
            else:
                part = {"text": p.get("text", "")}
            if p.get("thoughtSignature"):
                part["thoughtSignature"] = p["thoughtSignature"]
            parts.append(part)
        return {"role": "model", "parts": parts}

    def _user_turn(self, text: str, images: list[ImageRef], store: Any, image_first: bool = False) -> dict[str, Any]:
        inline = [self._inline_part(r, store) for r in images]
        parts = inline + [{"text": text}] if image_first else [{"text": text}] + inline
        return {"role": "user", "parts": parts}

    def _history(self, request: GenerationRequest, store: Any) -> list[dict[str, Any]]:
        """Earlier turns to resend: `request.history` if given, else the turn that produced the base image."""
        given = getattr(request, "history", None) or []
        if given:
            return [dict(h) for h in given]
        if request.base_image is None:
            return []
        key = pixel_key(store.open(request.base_image))
        with self._turns_lock:
            record = self._turns.get(key)
        return [{**record, "image": request.base_image}] if record else []

    def build_body(self, request: GenerationRequest, store: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The generateContent JSON body and a small summary of what it holds (for meta)."""
        refs = list(request.references)
        edit = request.base_image is not None or bool(getattr(request, "history", None))
        history = self._history(request, store) if edit else []
        contents: list[dict[str, Any]] = []
        last_image: str | None = None
        signatures = 0
        for entry in history:
            if "role" in entry:
                contents.append(entry)
                continue
            user_images = [ImageRef.model_validate(r) for r in entry.get("user_images") or []]
            contents.append(self._user_turn(entry.get("user", ""), user_images, store))
            contents.append(self._model_turn(entry, entry["image"], store))
            signatures += sum(1 for p in entry.get("parts") or [] if p.get("thoughtSignature"))
            img = entry["image"]
            last_image = img.sha256 if isinstance(img, ImageRef) else img.get("sha256")
        new_images = list(refs)
        if request.base_image is not None and request.base_image.sha256 != last_image:
            new_images.insert(0, request.base_image)
        if len(new_images) > self.spec.max_references:
            what = "reference images (the base image counts)" if request.base_image is not None else "reference images"
            roomier = ", ".join(m for m, s in MODELS.items() if s.max_references > self.spec.max_references)
            raise BadRequest(f"gemini {self.model} accepts at most {self.spec.max_references} {what}; got "
                             f"{len(new_images)}. Drop some" + (f", or use {roomier}" if roomier else ""))
        text = (request.instruction or request.prompt) if edit else request.prompt
        contents.append(self._user_turn(text, new_images, store, image_first=edit))
        image_config, size_note = self.image_config(request)
        gen: dict[str, Any] = {"responseModalities": list(self.options.response_modalities),
                               "imageConfig": image_config}
        if self.options.send_seed:
            gen["seed"] = int(request.seed) & 0x7FFFFFFF
        thinking: dict[str, Any] = {}
        if self.options.thinking_level:
            thinking["thinkingLevel"] = self.options.thinking_level
        if self.options.include_thoughts is not None:
            thinking["includeThoughts"] = self.options.include_thoughts
        if thinking:
            gen["thinkingConfig"] = thinking
        body: dict[str, Any] = {"contents": contents, "generationConfig": gen}
        if self.options.system_instruction:
            body["systemInstruction"] = {"parts": [{"text": self.options.system_instruction}]}
        notes = [size_note] if size_note else []
        people = sum(1 for s in request.plan.subjects if s.kind == "person")
        objects = sum(1 for s in request.plan.subjects if s.kind == "product")
        if self.spec.max_people is not None and people > self.spec.max_people:
            notes.append(f"{people} people exceed the {self.spec.max_people} kept at high fidelity")
        if self.spec.max_objects is not None and objects > self.spec.max_objects:
            notes.append(f"{objects} objects exceed the {self.spec.max_objects} kept at high fidelity")
        if request.mask is not None:
            notes.append("mask ignored: Gemini edits from the instruction only")
        summary = {"mode": ("multi_turn" if history else "single_turn") if edit else "generate",
                   "user_text": text, "user_images": [r.model_dump(mode="json") for r in new_images],
                   "turns": len(contents), "signatures_sent": signatures, "references": len(refs),
                   "image_config": gen["imageConfig"], "notes": notes}
        return body, summary

    # -- response -------------------------------------------------------------------------------

    def _payload(self, resp: httpx.Response) -> Any:
        if self.options.stream:
            return merge_stream(resp.text)
        return self.http.json(resp)

    def _finish(self, payload: Any, summary: dict[str, Any], request: GenerationRequest,
                calls: dict[str, Any]) -> GenerationResult:
        """Account usage and cost, decode the image and build the result (or raise the outcome)."""
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            err = payload["error"]
            fake = httpx.Response(int(err.get("code") or 500), json=payload,
                                  request=httpx.Request("POST", f"{self.base_url}/models/{self.model}"))
            outcome = classify(fake)
            raise outcome.error if isinstance(outcome, Retryable) else (outcome or ServerError(str(err)))
        usage_meta = payload.get("usageMetadata") or {} if isinstance(payload, dict) else {}
        numbers = usage_numbers(usage_meta)
        self.http.usage.add_tokens(prompt=numbers["prompt_tokens"], output=numbers["output_tokens"],
                                   image=numbers["image_tokens"], thoughts=numbers["thoughts_tokens"])
        answer = read_answer(payload, self.model)
        size = summary["image_config"].get("imageSize", self.spec.sizes[0])
        estimated = numbers["image_tokens"] is None
        tokens = numbers["image_tokens"] if not estimated else self.spec.image_tokens.get(size, 0)
        cost = round(tokens * self.spec.usd_per_million_image_tokens / 1e6, 6)
        self.http.usage.cost += cost
        mime = sniff_mime(answer.image)
        try:
            image = decode_image_bytes(answer.image, label=f"gemini {self.model} image")
        except ImageInputError as e:
            raise MalformedResponse(f"gemini {self.model}: the returned image cannot be decoded: {e}") from None
        record = {"user": summary["user_text"], "parts": answer.turn_parts}
        if summary["user_images"]:
            record["user_images"] = summary["user_images"]
        self._remember(pixel_key(image), record)
        meta: dict[str, Any] = {
            "model": self.model, "model_version": payload.get("modelVersion"), "response_id": payload.get("responseId"),
            "finish_reason": answer.finish, "mime": mime or answer.declared_mime, "seed": request.seed,
            "image_config": summary["image_config"], "mode": summary["mode"],
            "usage": {**{k: v for k, v in numbers.items() if v is not None}, "image_tokens_billed": tokens,
                      "estimated": estimated, "usd_per_million_image_tokens": self.spec.usd_per_million_image_tokens,
                      **calls},
            "gemini_turn": record,
        }
        if mime and answer.declared_mime and mime != answer.declared_mime:
            meta["declared_mime"] = answer.declared_mime
        if answer.text:
            meta["text"] = answer.text[:500]
        if answer.thoughts_skipped:
            meta["thought_parts_skipped"] = answer.thoughts_skipped
        if summary["mode"] != "generate":
            meta["edit"] = {"turns": summary["turns"], "signatures_sent": summary["signatures_sent"]}
        if summary["notes"]:
            meta["notes"] = summary["notes"]
        return GenerationResult(image=image, cost=cost, meta=meta)

    def _remember(self, key: str, record: dict[str, Any]) -> None:
        with self._turns_lock:
            self._turns[key] = record
            self._turns.move_to_end(key)
            while len(self._turns) > self.TURN_CACHE:
                self._turns.popitem(last=False)

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """One image from Gemini: build the turn(s), POST with retries, parse the last non-thought image."""
        headers = {**self._key_headers(), "content-type": "application/json"}
        body, summary = await asyncio.to_thread(self.build_body, request, store)
        content = await asyncio.to_thread(lambda: json.dumps(body).encode())
        method = "streamGenerateContent" if self.options.stream else "generateContent"
        path = f"/{self.api_version}/models/{self.model}:{method}"
        usage = self.http.usage
        before = (usage.requests, usage.retries, usage.seconds)
        t0 = time.perf_counter()
        resp = await self.http.request("POST", path, content=content, headers=headers,
                                       params={"alt": "sse"} if self.options.stream else None)
        payload = self._payload(resp)
        calls = {"requests": usage.requests - before[0], "retries": usage.retries - before[1],
                 "seconds": round(time.perf_counter() - t0, 3)}
        try:
            return await asyncio.to_thread(self._finish, payload, summary, request, calls)
        except BackendError as e:
            e.args = (redact(str(e.args[0])) if e.args else "",)
            raise

    async def aclose(self) -> None:
        await self.http.aclose()


__all__ = ["DEFAULT_MODEL", "GeminiBackend", "GeminiOptions", "MODELS", "ModelSpec", "PRICE_SOURCE", "RETIRED",
           "classify", "merge_stream", "model_spec", "read_answer"]
