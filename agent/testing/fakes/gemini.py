"""A loopback fake of the Gemini API's native image generation (generateContent and its SSE stream).

It checks what the real server checks (key, model lifecycle, aspect ratio and imageSize per model,
inline image data, image count, thinking config, optionally thought signatures) and renders at the
documented pixel size from what it receives (`editing`): a user turn that leads with an image (or a
multi-turn request whose model turn holds one) edits that image, keeping it and setting the
instruction's text on it, or, when the instruction states boxes (`gemini.regions`, how pixloop says a
mask in words), changing only the pixels inside them; any other images are references, placed in the
picture. It answers like Gemini 3:
a thought text, a small thought image, a text part and the final image carrying a thoughtSignature.
Faults from the FaultPlan replace or spoil answers in Google's own error shapes. A streamed request for
TEXT and IMAGE without an imageConfig is answered with an interleaved illustrated document, page by page
(`interleaved`, which documents its `interleaved_*` options and how it decides). Option `c2pa_sign=true`
signs every final image with C2PA Content Credentials as a fake Google would (`provenance`).
Spec: shared/docs/backend-protocols.md sections 1 and 7.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import io
import json
import re
import secrets
import threading
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agent.backends.gemini.regions import read_regions, regions_mask
from agent.runtime.images import sniff_mime
from agent.testing.fakes.base import Fault, FaultPlan, RequestLog, apply_delay, encode, fake_render
from agent.testing.fakes.editing import masked_edit, restyle
from agent.testing.fakes.interleaved import Document, DocumentOptions, document_response, wants_document
from agent.testing.fakes.provenance import provider_sign

STANDARD = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
FLASH = STANDARD + ("1:4", "4:1", "1:8", "8:1")
GEMINI3_1K = {"1:1": (1024, 1024), "2:3": (848, 1264), "3:2": (1264, 848), "3:4": (896, 1200),
              "4:3": (1200, 896), "4:5": (928, 1152), "5:4": (1152, 928), "9:16": (768, 1376),
              "16:9": (1376, 768), "21:9": (1584, 672), "1:4": (512, 2048), "4:1": (2048, 512),
              "1:8": (384, 3072), "8:1": (3072, 384)}
GEMINI25_1K = {"1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832), "3:4": (864, 1184),
               "4:3": (1184, 864), "4:5": (896, 1152), "5:4": (1152, 896), "9:16": (768, 1344),
               "16:9": (1344, 768), "21:9": (1536, 672)}
MODELS: dict[str, dict[str, Any]] = {
    "gemini-3.1-flash-image": {"ratios": FLASH, "sizes": ("512", "1K", "2K", "4K"), "thinks": True,
                               "tokens": {"512": 750, "1K": 1117, "2K": 1683, "4K": 2517}},
    "gemini-3-pro-image": {"ratios": STANDARD, "sizes": ("1K", "2K", "4K"), "thinks": True,
                           "tokens": {"1K": 1120, "2K": 1120, "4K": 2000}},
    "gemini-3.1-flash-lite-image": {"ratios": FLASH, "sizes": ("1K",), "thinks": True, "tokens": {"1K": 1117}},
    "gemini-2.5-flash-image": {"ratios": STANDARD, "sizes": ("1K",), "thinks": False, "tokens": {"1K": 1290}},
}
RETIRED = ("gemini-3-pro-image-preview", "gemini-3.1-flash-image-preview")
MAX_IMAGES = 14
INPUT_MIMES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
MODALITIES = {"TEXT", "IMAGE", "AUDIO"}


def google_error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    """A Google API error body: {"error": {code, message, status, details}}."""
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return JSONResponse({"error": err}, status_code=code, headers=headers)


def _camel(obj: Any) -> Any:
    """snake_case keys -> camelCase, recursively (requests may use either)."""
    if isinstance(obj, dict):
        return {(re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), k) if isinstance(k, str) else k): _camel(v)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_camel(v) for v in obj]
    return obj


def pixel_size(model: str, ratio: str, size: str) -> tuple[int, int]:
    """Documented output size for a model, ratio and imageSize (512 tier: half of 1K, only 1:1 documented)."""
    if model == "gemini-2.5-flash-image":
        return GEMINI25_1K[ratio]
    w, h = GEMINI3_1K[ratio]
    if size == "512":
        return w // 2, h // 2
    k = {"1K": 1, "2K": 2, "4K": 4}[size]
    return w * k, h * k


def _sniff(data: bytes) -> str | None:
    return sniff_mime(data)


class _Invalid(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class DroppedConnection(Response):
    """Starts a response, sends a few bytes and returns: uvicorn then closes the socket mid-body."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"candidates": [', "more_body": True})


class _State:
    """Options and mutable state of one fake server."""

    def __init__(self, faults: FaultPlan, options: dict[str, Any]):
        self.faults = faults
        self.api_key: str | None = options.get("api_key")
        self.mislabel_jpeg = bool(options.get("mislabel_jpeg", False))
        self.image_format = str(options.get("image_format", "PNG")).upper()
        self.block_reason: str | None = options.get("block_reason")
        self.finish_reason: str | None = options.get("finish_reason")
        self.require_signatures = bool(options.get("require_signatures", False))
        self.stream_cut = bool(options.get("stream_cut", False))
        self.c2pa_sign = bool(options.get("c2pa_sign", False))
        self.models = {**MODELS, **(options.get("models") or {})}
        self.signatures: set[str] = set()
        self.lock = threading.Lock()
        self.document = DocumentOptions.from_options(options)
        self.documents: list[Document] = []

    def sign(self) -> str:
        sig = base64.b64encode(b"fake-sig:" + secrets.token_bytes(24)).decode()
        with self.lock:
            self.signatures.add(sig)
        return sig


@functools.lru_cache(maxsize=16)
def _interim(final: bytes) -> str:
    """The small 'thought' preview image Gemini 3 models send before the final one (cached per image)."""
    small = Image.open(io.BytesIO(final))
    small.thumbnail((128, 128))
    buf = io.BytesIO()
    small.convert("RGB").save(buf, format="PNG")
    return _b64(buf.getvalue())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _validate(body: Any, model: str, spec: dict[str, Any], state: _State) -> dict[str, Any]:
    """Check a request as the real server would; returns what the answer needs. Raises _Invalid."""
    if not isinstance(body, dict):
        raise _Invalid("Invalid JSON payload received. Expected an object.")
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    if not isinstance(contents, list) or not contents:
        raise _Invalid("* GenerateContentRequest.contents: contents is not specified")
    images: list[bytes] = []
    user_texts: list[list[str]] = []
    last_user_images: list[bytes] = []
    last_model_image: bytes | None = None
    leads_with_image = False
    for i, turn in enumerate(contents):
        if not isinstance(turn, dict) or not isinstance(turn.get("parts"), list) or not turn["parts"]:
            raise _Invalid(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
        role = turn.get("role", "user")
        if role not in ("user", "model"):
            raise _Invalid(f"Please use a valid role: user, model. Got {role!r}.")
        texts: list[str] = []
        turn_images: list[bytes] = []
        for j, part in enumerate(turn["parts"]):
            where = f"contents[{i}].parts[{j}]"
            if "inlineData" in part:
                inline = part["inlineData"] or {}
                mime = inline.get("mimeType", "")
                if mime not in INPUT_MIMES:
                    raise _Invalid(f"* GenerateContentRequest.{where}.inline_data.mime_type: unsupported MIME "
                                   f"type {mime!r}")
                try:
                    data = base64.b64decode(inline.get("data", ""), validate=True)
                except (binascii.Error, ValueError):
                    raise _Invalid(f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding "
                                   "failed") from None
                if _sniff(data) is None:
                    raise _Invalid(f"Unable to process input image ({where}). Please retry or report in "
                                   "https://developers.generativeai.google/guide/troubleshooting")
                turn_images.append(data)
                if role == "model" and state.require_signatures and part.get("thoughtSignature") not in \
                        state.signatures:
                    raise _Invalid(f"Image part is missing a thought_signature in {where}.")
            elif "text" in part:
                texts.append(str(part["text"]))
                if role == "model" and state.require_signatures and j == 0 and \
                        part.get("thoughtSignature") not in state.signatures:
                    raise _Invalid(f"Function call / text part is missing a thought_signature in {where}.")
            elif "fileData" not in part:
                raise _Invalid(f"* GenerateContentRequest.{where}: part has no data")
        if role == "model" and turn_images:
            last_model_image = turn_images[-1]
        if role == "user":
            images += turn_images
            user_texts.append(texts)
            last_user_images = turn_images
            leads_with_image = "inlineData" in turn["parts"][0]
    if len(images) > MAX_IMAGES:
        raise _Invalid(f"Too many images in the request: {len(images)}; the maximum is {MAX_IMAGES}.")
    gen = body.get("generationConfig") or {}
    modalities = [str(m).upper() for m in gen.get("responseModalities") or ["TEXT", "IMAGE"]]
    bad = [m for m in modalities if m not in MODALITIES]
    if bad:
        raise _Invalid(f"Invalid value at 'generation_config.response_modalities' ({bad[0]})")
    image_cfg = gen.get("imageConfig") or ((gen.get("responseFormat") or {}).get("image")) or {}
    ratio = image_cfg.get("aspectRatio")
    if ratio is not None and ratio not in spec["ratios"]:
        raise _Invalid(f"Unsupported aspect ratio {ratio!r} for {model}. Supported: {', '.join(spec['ratios'])}")
    size = image_cfg.get("imageSize", "1K")
    if size not in spec["sizes"]:
        raise _Invalid(f"Unsupported image size {size!r} for {model}. Supported values: "
                       f"{', '.join(spec['sizes'])} (uppercase K).")
    for bad_key in ("personGeneration", "outputMimeType", "outputCompressionQuality"):
        if bad_key in image_cfg:
            raise _Invalid(f"{bad_key} parameter is not supported in Gemini API.")
    thinking = gen.get("thinkingConfig") or {}
    if "thinkingBudget" in thinking and "thinkingLevel" in thinking:
        raise _Invalid("thinking_budget and thinking_level cannot be set at the same time.")
    if ratio is None:
        ref = last_user_images[0] if last_user_images else (images[0] if images else None)
        try:
            w, h = Image.open(io.BytesIO(ref)).size if ref is not None else (1, 1)
        except OSError:
            w, h = 1, 1
        ratio = min(spec["ratios"], key=lambda r: abs(int(r.split(":")[0]) / int(r.split(":")[1]) - w / h))
    last = " ".join(user_texts[-1]) if user_texts else ""
    everything = " ".join(t for ts in user_texts for t in ts)
    # what the model is asked: an edit of the image the last user turn leads with (or, in a multi-turn edit,
    # of the model's last image), with a stated region when there is one; else a generation with references
    base: bytes | None = None
    if leads_with_image and last_user_images:
        base, references = last_user_images[0], last_user_images[1:]
    elif last_model_image is not None:
        base, references = last_model_image, list(last_user_images)
    else:
        references = list(images)
    regions: list[Any] = []
    if base is not None:
        regions, prompt = read_regions(last)
    else:
        prompt = last if ('"' in last or "“" in last) or not last_user_images else everything
    return {"ratio": ratio, "size": size, "prompt": prompt, "images": len(images),
            "seed": int(gen.get("seed") or 0), "want_image": "IMAGE" in modalities,
            "base": base, "references": references, "regions": regions,
            "prompt_tokens": max(1, len(everything.split()) * 4 // 3) + 258 * len(images)}


def _picture(info: dict[str, Any], w: int, h: int, fmt: str) -> bytes:
    """The final image's bytes for what was asked (see `_validate`): a masked edit inside the stated boxes, an
    edit that keeps the picture, or a generation with the references placed in it."""
    refs = [Image.open(io.BytesIO(r)).convert("RGB") for r in info["references"]]
    if info["base"] is None:
        return fake_render(info["prompt"], w, h, info["seed"], fmt, references=refs)
    base = Image.open(io.BytesIO(info["base"])).convert("RGB")
    if base.size != (w, h):
        base = base.resize((w, h), Image.Resampling.LANCZOS)
    if info["regions"]:
        img = masked_edit(base, regions_mask(info["regions"], (w, h)), info["prompt"], info["seed"], refs)
    else:
        img = restyle(base, info["prompt"], info["seed"], refs)
    return encode(img, fmt)


def _render(model: str, info: dict[str, Any], state: _State, fault: Fault | None) -> dict[str, Any]:
    """The full GenerateContentResponse for a successful (or fault-spoilt) generation."""
    spec = state.models[model]
    w, h = pixel_size(model, info["ratio"], info["size"])
    if fault and fault.kind == "wrong_size":
        w, h = max(8, w // 2), max(8, h // 2)
    fmt = "JPEG" if state.mislabel_jpeg else state.image_format
    final = _picture(info, w, h, fmt)
    if state.c2pa_sign:
        final = provider_sign(final, "gemini")
    declared = "image/png" if state.mislabel_jpeg else \
        {"JPEG": "image/jpeg", "WEBP": "image/webp"}.get(fmt, "image/png")
    tokens = spec["tokens"].get(info["size"], 1120)
    parts: list[dict[str, Any]] = []
    thoughts = 0
    if spec["thinks"]:
        parts += [{"text": "**Planning the composition**\nI will place the requested text prominently.",
                   "thought": True},
                  {"inlineData": {"mimeType": "image/png", "data": _interim(final)}, "thought": True}]
        thoughts = 212
    if fault and fault.kind == "truncated":
        final = final[: len(final) // 2]
    text_part: dict[str, Any] = {"text": "Here is the image you asked for."}
    image_part: dict[str, Any] = {"inlineData": {"mimeType": declared, "data": _b64(final)}}
    if spec["thinks"]:
        text_part["thoughtSignature"] = state.sign()
        image_part["thoughtSignature"] = state.sign()
    parts += [text_part, image_part]
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": _usage(info["prompt_tokens"], tokens, 9, thoughts),
            "modelVersion": model, "responseId": secrets.token_hex(8)}


def _usage(prompt: int, image: int, text: int, thoughts: int) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": image + text,
                             "totalTokenCount": prompt + image + text + thoughts,
                             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
    details = ([{"modality": "IMAGE", "tokenCount": image}] if image else []) + \
        ([{"modality": "TEXT", "tokenCount": text}] if text else [])
    if details:
        usage["candidatesTokensDetails"] = details
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _answer(model: str, info: dict[str, Any], state: _State, fault: Fault | None) -> dict[str, Any] | Response:
    """The response body for a generation request (or a faulted Response)."""
    meta = {"modelVersion": model, "responseId": secrets.token_hex(8)}
    prompt_only = _usage(info["prompt_tokens"], 0, 0, 0)
    kind = fault.kind if fault else None
    if fault is not None and kind == "429":
        delay = fault.value if fault.value is not None else 1.0
        return google_error(429, "RESOURCE_EXHAUSTED", f"You exceeded your current quota, please check your plan and "
                            f"billing details. Please retry in {delay:g}s.", [
                                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                                    "quotaMetric": "generativelanguage.googleapis.com/generate_requests_per_model",
                                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                                    "quotaDimensions": {"location": "global", "model": model}, "quotaValue": "10"}]},
                                {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                                    "description": "Learn more about Gemini API quotas",
                                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
                                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay:g}s"}])
    if kind == "quota":
        return google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and "
                            "billing details.", [
                                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                                    "quotaMetric": "generativelanguage.googleapis.com/"
                                                   "generate_requests_per_model_per_day",
                                    "quotaId": "GenerateRequestsPerDayPerProjectPerModel",
                                    "quotaDimensions": {"location": "global", "model": model}, "quotaValue": "250"}]},
                                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "60s"}])
    if kind == "500":
        return google_error(500, "INTERNAL", "An internal error has occurred. Please retry or report in "
                            "https://developers.generativeai.google/guide/troubleshooting")
    if kind == "503":
        return google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    if kind == "html":
        return Response("<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
                        "<p>The server encountered a temporary error.</p></body></html>", status_code=502,
                        media_type="text/html")
    if kind == "reset":
        return DroppedConnection()
    if kind == "safety":
        return {"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0,
                                "finishMessage": "Unable to show the generated image. The image was filtered out "
                                                 "because it violated Google's Generative AI Prohibited Use policy."}],
                "usageMetadata": prompt_only, **meta}
    if kind == "no_image" or not info["want_image"]:
        return {"candidates": [{"content": {"role": "model", "parts": [{
                    "text": "I can describe it instead: a bold poster with large lettering on a warm background."}]},
                "finishReason": "STOP", "index": 0}],
                "usageMetadata": _usage(info["prompt_tokens"], 0, 21, 0), **meta}
    if state.block_reason:
        return {"promptFeedback": {"blockReason": state.block_reason, "safetyRatings": [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]},
                "usageMetadata": prompt_only, **meta}
    if state.finish_reason:
        return {"candidates": [{"finishReason": state.finish_reason, "index": 0}], "usageMetadata": prompt_only,
                **meta}
    return _render(model, info, state, fault)


PRE_STREAM_FAULTS = ("429", "quota", "500", "503", "html", "reset")
"""Faults a document request gets as a normal answer does, before any event."""


def _events(body: dict[str, Any], cut: bool) -> list[bytes]:
    """A response split into 2-3 SSE chunks: parts spread out, finishReason and usage on the last."""
    cands = body.get("candidates") or []
    head = {k: v for k, v in body.items() if k in ("modelVersion", "responseId")}
    if not cands or not (cands[0].get("content") or {}).get("parts"):
        chunks = [body]
    else:
        cand = cands[0]
        parts = cand["content"]["parts"]
        groups = [parts[:1], parts[1:-1], parts[-1:]] if len(parts) > 2 else [parts[:-1], parts[-1:]]
        groups = [g for g in groups if g]
        chunks = []
        for i, g in enumerate(groups):
            c: dict[str, Any] = {"content": {"role": "model", "parts": g}, "index": 0}
            chunk: dict[str, Any] = {"candidates": [c], **head}
            if i == len(groups) - 1:
                c.update({k: v for k, v in cand.items() if k != "content"})
                chunk["usageMetadata"] = body.get("usageMetadata")
            chunks.append(chunk)
    out = [f"data: {json.dumps(c)}\r\n\r\n".encode() for c in chunks]
    if cut:
        out[-1] = out[-1][: len(out[-1]) // 2]
    return out


def create_app(faults: FaultPlan, **options: Any) -> Starlette:
    """The fake Gemini API. Options: api_key, mislabel_jpeg, image_format, block_reason, finish_reason,
    require_signatures, stream_cut, models (extra model specs), and the interleaved documents' interleaved,
    interleaved_pages, interleaved_misspell, interleaved_delay, interleaved_error_after, interleaved_error_code."""
    state = _State(faults, options)
    log = RequestLog()

    async def models_route(request: Request) -> Response:
        version, rest = request.path_params["version"], request.path_params["rest"]
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        query = "&".join(f"{k}={'***' if k == 'key' else v}" for k, v in request.query_params.items())
        log.add(request.method, request.url.path + (f"?{query}" if query else ""), dict(request.headers), body)
        model, _, method = rest.partition(":")
        if version not in ("v1beta", "v1") or method not in ("generateContent", "streamGenerateContent"):
            return google_error(404, "NOT_FOUND", f"Method not found: {request.url.path}")
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if state.api_key is not None:
            if not key:
                return google_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers "
                                    "without established identity). Please use API Key or other form of API "
                                    "consumer identity to call this API.")
            if key != state.api_key:
                return google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                     "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}])
        if model not in state.models:
            why = "has been shut down" if model in RETIRED else "is not found"
            return google_error(404, "NOT_FOUND", f"models/{model} {why} for API version {version}, or is not "
                                "supported for generateContent. Call ListModels to see the list of available "
                                "models and their supported methods.")
        if not isinstance(body, dict):
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        body = _camel(body)
        try:
            info = _validate(body, model, state.models[model], state)
        except _Invalid as e:
            return google_error(400, "INVALID_ARGUMENT", e.message)
        fault = faults.next()
        await apply_delay(faults, fault)
        if fault and fault.kind == "malformed":
            text = json.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": "Here"}]}}]})
            return Response(text[: len(text) // 2], media_type="application/json")
        if wants_document(body, method, state.document) and not state.block_reason and not (
                fault and fault.kind in PRE_STREAM_FAULTS):
            size = pixel_size(model, info["ratio"], info["size"])
            return document_response(model, info, size, state.models[model], state, fault)
        answer = await asyncio.to_thread(_answer, model, info, state, fault)
        if isinstance(answer, Response):
            return answer
        if method == "streamGenerateContent":
            events = _events(answer, state.stream_cut)

            async def stream() -> Any:
                for ev in events:
                    yield ev

            return StreamingResponse(stream(), media_type="text/event-stream")
        return JSONResponse(answer)

    async def list_models(request: Request) -> Response:
        return JSONResponse({"models": [{"name": f"models/{m}", "supportedGenerationMethods": [
            "generateContent", "streamGenerateContent"]} for m in state.models]})

    app = Starlette(routes=[Route("/{version}/models/{rest:path}", models_route, methods=["POST"]),
                            Route("/{version}/models", list_models, methods=["GET"])])
    app.state.requests = log
    app.state.fake = state
    return app


__all__ = ["GEMINI25_1K", "GEMINI3_1K", "MODELS", "create_app", "pixel_size"]
