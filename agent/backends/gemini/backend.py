"""The gemini backend class and its options: build the generateContent turns (history with thought
signatures, references as inlineData, imageConfig from the plan), POST them and turn the answer into a result."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args
from urllib.parse import urlparse

import httpx
from PIL import Image
from pydantic import Field, field_validator

from agent.backends.base import GenerationRequest, GenerationResult, HttpOptions, parse_options
from agent.backends.errors import VARIANTS, AuthError, BadRequest, MalformedResponse, ServerError
from agent.backends.gemini.errors import classify
from agent.backends.gemini.models import DEFAULT_MODEL, MODELS, capabilities_for, model_spec
from agent.backends.gemini.regions import describe_mask
from agent.backends.gemini.response import merge_stream, pixel_key, read_answer, usage_numbers
from agent.models import ImageRef
from agent.models.errors import BackendError
from agent.runtime.http import HttpClient, Retryable
from agent.runtime.images import ImageInputError, decode_image_bytes, sniff_mime
from agent.runtime.provenance import has_manifest
from agent.runtime.secrets import api_key, redact

GOOGLE_BASE_URL = "https://generativelanguage.googleapis.com"
ApiVersion = Literal["v1beta", "v1"]
API_VERSIONS: tuple[ApiVersion, ...] = get_args(ApiVersion)
NO_KEY_PLACEHOLDER = "pixloop-no-key"
"""Sent to custom endpoints (fake servers, gateways) when no key is set, so the header is never empty."""
INPUT_MIMES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
INLINE_MAX_BYTES = 7 * 1024 * 1024
"""Vertex's documented per-image limit; larger references are re-encoded as JPEG before sending."""


class GeminiOptions(HttpOptions):
    """The gemini backend's `--backend-option`s, plus the HttpSettings fields."""

    model: str | None = Field(None, description="model id when --model is not given")
    image_size: str | None = Field(None, description='imageSize instead of the plan\'s tier ("512" needs 3.1 Flash)')
    aspect_ratio: str | None = Field(None, description='aspectRatio instead of the plan\'s ("1:4" etc.)')
    response_modalities: list[str] = Field(["TEXT", "IMAGE"], description='"TEXT,IMAGE" or "IMAGE"')
    thinking_level: str | None = Field(None, description="thinkingConfig.thinkingLevel")
    include_thoughts: bool | None = Field(None, description="thinkingConfig.includeThoughts")
    system_instruction: str | None = Field(None, description="systemInstruction text")
    send_seed: bool = Field(True, description="put the request's seed in generationConfig")
    stream: bool = Field(False, description="use the SSE streamGenerateContent endpoint")
    api_version: ApiVersion = Field("v1beta", description="API version in the path")

    @field_validator("response_modalities", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return [s.strip().upper() for s in v.split(",") if s.strip()] if isinstance(v, str) else v

    @field_validator("image_size", mode="before")
    @classmethod
    def _upper_k(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v


def inline_image(data: bytes, mime: str | None, open_image: Callable[[], Image.Image]) -> dict[str, Any]:
    """An image as an inlineData part: its own bytes when Gemini takes the type and the size, else re-encoded
    (JPEG 90 when too large, PNG for a type it does not take) within 4096 px."""
    if mime not in INPUT_MIMES or len(data) > INLINE_MAX_BYTES:
        img = open_image()
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


class GeminiBackend:
    """Gemini native image generation and editing (Nano Banana family) behind the ImageBackend protocol."""

    name = "gemini"
    TURN_CACHE = 64
    """Model turns remembered per process, keyed by the pixels of the image they produced."""

    def __init__(self, model: str | None = None, base_url: str | None = None,
                 options: GeminiOptions | Mapping[str, Any] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.options = options if isinstance(options, GeminiOptions) else parse_options(
            GeminiOptions, options, self.name)
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
                               settings=self.options.http_settings(), classifier=classify, transport=transport,
                               family=VARIANTS)
        self._turns: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._turns_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Any) -> GeminiBackend:
        """Build from a PixloopConfig: model (else the model option, else the default), base_url and options."""
        return cls(model=getattr(config, "model", None), base_url=getattr(config, "base_url", None),
                   options=getattr(config, "options", None))

    # -- request --------------------------------------------------------------------------------

    def key_headers(self) -> dict[str, str]:
        """The API key header, read from the environment now; Google's endpoint requires one, a custom endpoint
        (fake servers, gateways) gets a placeholder so the header is never empty."""
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
        data = store.read_bytes(ref)
        return inline_image(data, sniff_mime(data) or ref.mime, lambda: store.open(ref))

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

    @staticmethod
    def _mask_in_words(request: GenerationRequest, store: Any, edit: bool) -> tuple[str | None, str]:
        """Gemini has no mask parameter: a mask becomes a sentence naming the boxes that may change (appended to
        the instruction), and a note saying so; the preservation critic verifies the rest was kept."""
        if request.mask is None:
            return None, ""
        if not edit:
            return "mask ignored: there is no image to edit", ""
        try:
            mask = store.open(request.mask)
        except (OSError, ValueError, AttributeError) as e:
            raise BackendError(f"gemini: cannot open the edit mask {request.mask.path}: {e}") from e
        sentence, boxes = describe_mask(mask)
        if not boxes:
            return "mask ignored: it marks nothing as editable", ""
        return (f"mask stated in words ({len(boxes)} box{'es' if len(boxes) > 1 else ''}): Gemini takes no mask; "
                "the preservation critic checks what was kept"), sentence

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
        mask_note, regions = self._mask_in_words(request, store, edit)
        if regions:
            text = f"{text}\n{regions}"
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
        if mask_note:
            notes.append(mask_note)
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
        image_tokens = numbers["image_tokens"]
        estimated = image_tokens is None
        tokens = image_tokens if image_tokens is not None else self.spec.image_tokens.get(size, 0)
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
        if has_manifest(answer.image, mime):
            meta["c2pa_manifest"] = True
        return GenerationResult(image=image, cost=cost, meta=meta, original=answer.image)

    def _remember(self, key: str, record: dict[str, Any]) -> None:
        with self._turns_lock:
            self._turns[key] = record
            self._turns.move_to_end(key)
            while len(self._turns) > self.TURN_CACHE:
                self._turns.popitem(last=False)

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """One image from Gemini: build the turn(s), POST with retries, parse the last non-thought image."""
        headers = {**self.key_headers(), "content-type": "application/json"}
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


__all__ = ["API_VERSIONS", "GOOGLE_BASE_URL", "GeminiBackend", "GeminiOptions", "inline_image"]
