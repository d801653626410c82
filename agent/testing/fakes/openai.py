"""Loopback fake of the OpenAI Images API: /v1/images/generations (JSON) and /v1/images/edits (multipart).

It validates what the real API validates (known model, a size the model takes, n, enums, the
mask's PNG alpha and size), renders real images from what it receives (`editing`): a generation
renders the prompt; an edit with a mask keeps the first image exactly outside the mask's fully
transparent area and re-renders that area from the prompt, placing the other images there; an
edit without a mask renders the prompt with every input image placed in it. It answers with the
real body and headers (usage, x-request-id, x-ratelimit-*), streams SSE partial/completed events
on stream=true, and plays the FaultPlan. Routes are also served without the /v1 prefix. Option
`c2pa_sign=true` signs every final image with C2PA Content Credentials as a fake OpenAI would (`provenance`).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import re
import secrets
import time
from typing import Any

from PIL import Image, ImageFilter
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agent.runtime.images import sniff_mime
from agent.testing.fakes.base import Fault, FaultPlan, RequestLog, apply_delay, fake_render
from agent.testing.fakes.editing import masked_edit, render_image
from agent.testing.fakes.provenance import provider_sign

MODELS = ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2", "gpt-image-2-2026-04-21",
          "chatgpt-image-latest")
FIXED_SIZES = ("1024x1024", "1536x1024", "1024x1536")
QUALITIES = ("low", "medium", "high", "auto")
BACKGROUNDS = ("transparent", "opaque", "auto")
FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
EDIT_DEFAULT_MODEL = "gpt-image-1.5"
MAX_IMAGES = 16
OUTPUT_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160}
"""Output image tokens of a 1024x1024 image per quality (usage scales them by area)."""
INPUT_IMAGE_TOKENS = {"low": 323, "high": 1290}
"""Input image tokens per edit image by input_fidelity."""


class ApiError(Exception):
    """An OpenAI-style error answer: {"error": {message, type, param, code}}."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.headers = status, headers or {}
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code, **extra}}

    def response(self, request_id: str) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers={"x-request-id": request_id, **self.headers})


def size_ok(model: str, size: str) -> bool:
    """Whether the real API takes `size` for `model` (gpt-image-2: flexible WxH; the others: three sizes)."""
    if size == "auto":
        return True
    if not model.startswith("gpt-image-2"):
        return size in FIXED_SIZES
    m = re.fullmatch(r"(\d+)x(\d+)", size)
    if not m:
        return False
    w, h = int(m.group(1)), int(m.group(2))
    return (w % 16 == 0 and h % 16 == 0 and w > 0 and h > 0 and max(w, h) <= 3840
            and max(w, h) <= 3 * min(w, h) and 655_360 <= w * h <= 3840 * 2160)


def _request_id() -> str:
    return "req_" + secrets.token_hex(16)


def _rate_headers(remaining: int = 49, reset: str = "1.2s") -> dict[str, str]:
    return {"x-ratelimit-limit-requests": "50", "x-ratelimit-remaining-requests": str(remaining),
            "x-ratelimit-reset-requests": reset, "x-ratelimit-limit-tokens": "100000",
            "x-ratelimit-remaining-tokens": "95000", "x-ratelimit-reset-tokens": "3s"}


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class _Params:
    """The validated parameters of one generation or edit request."""

    def __init__(self, raw: dict[str, Any], endpoint: str):
        self.endpoint = endpoint
        default_model = EDIT_DEFAULT_MODEL if endpoint == "edits" else "dall-e-2"
        self.model = str(raw.get("model") or default_model)
        if self.model.startswith("dall-e"):
            raise ApiError(400, f"This fake serves GPT image models only; the request used {self.model!r}"
                           + ("" if raw.get("model") else " (the default when no model is sent)"),
                           code="invalid_value", param="model")
        if self.model not in MODELS:
            raise ApiError(404, f"The model `{self.model}` does not exist or you do not have access to it.",
                           code="model_not_found", param="model")
        prompt = raw.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ApiError(400, "Missing required parameter: 'prompt'.", code="missing_required_parameter",
                           param="prompt")
        self.prompt = prompt
        if len(self.prompt) > 32_000:
            raise ApiError(400, "Invalid 'prompt': string too long. Expected a string with maximum length 32000.",
                           code="string_above_max_length", param="prompt")
        self.n = self._int(raw, "n", 1, 1, 10)
        self.size = str(raw.get("size") or "auto")
        if not size_ok(self.model, self.size):
            supported = ("WxH with both sides multiples of 16, ratio at most 3:1, 655360 to 8294400 pixels, "
                         "long side at most 3840, and auto") if self.model.startswith("gpt-image-2") \
                else "1024x1024, 1024x1536, 1536x1024, and auto"
            raise ApiError(400, f"Invalid size '{self.size}'. Supported sizes are {supported}.",
                           code="invalid_value", param="size")
        self.quality = self._enum(raw, "quality", QUALITIES, "auto")
        self.background = self._enum(raw, "background", BACKGROUNDS, "auto")
        self.output_format = self._enum(raw, "output_format", tuple(FORMATS), "png")
        if self.background == "transparent" and self.output_format == "jpeg":
            raise ApiError(400, "Transparent background requires output_format png or webp.", code="invalid_value",
                           param="background")
        self.output_compression = None
        if raw.get("output_compression") is not None:
            if self.output_format == "png":
                raise ApiError(400, "output_compression is only supported for jpeg and webp.", code="invalid_value",
                               param="output_compression")
            self.output_compression = self._int(raw, "output_compression", 100, 0, 100)
        if endpoint == "generations":
            self._enum(raw, "moderation", ("auto", "low"), "auto")
        elif raw.get("moderation") is not None:
            raise ApiError(400, "Unknown parameter: 'moderation'.", code="unknown_parameter", param="moderation")
        self.input_fidelity = None
        if endpoint == "edits" and raw.get("input_fidelity") is not None:
            if self.model.startswith("gpt-image-1-mini"):
                raise ApiError(400, f"input_fidelity is not supported for {self.model}.", code="unsupported_parameter",
                               param="input_fidelity")
            self.input_fidelity = self._enum(raw, "input_fidelity", ("high", "low"), "low")
        self.stream = str(raw.get("stream", "false")).lower() == "true"
        self.partial_images = self._int(raw, "partial_images", 0, 0, 3)

    @staticmethod
    def _int(raw: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
        value = raw.get(key, default)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ApiError(400, f"Invalid type for '{key}': expected an integer, but got {value!r}.",
                           code="invalid_type", param=key) from None
        if not lo <= number <= hi:
            raise ApiError(400, f"Invalid '{key}': {number} is outside {lo}..{hi}.", code="integer_out_of_range",
                           param=key)
        return number

    @staticmethod
    def _enum(raw: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
        value = str(raw.get(key) or default)
        if value not in allowed:
            quoted = ", ".join(f"'{a}'" for a in allowed)
            raise ApiError(400, f"Invalid value: '{value}'. Supported values are: {quoted}.", code="invalid_value",
                           param=key)
        return value


def _decode_upload(data: bytes, field: str, png_only: bool = False) -> Image.Image:
    """An uploaded image, or the 400 the real API gives for an unsupported or broken file."""
    kinds = ("image/png",) if png_only else ("image/png", "image/jpeg", "image/webp")
    mime = _sniff(data)
    if mime not in kinds:
        allowed = "'image/png'" if png_only else "'image/jpeg', 'image/png', 'image/webp'"
        raise ApiError(400, f"Invalid file '{field}': unsupported mimetype ('{mime or 'unknown'}'). "
                       f"Supported file formats are {allowed}.", code="unsupported_file_mimetype", param=field)
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img
    except Exception:  # noqa: BLE001 - any decoder failure is the client's broken file
        raise ApiError(400, f"Invalid image file '{field}': the file could not be decoded.", code="invalid_image",
                       param=field) from None


def _sniff(data: bytes) -> str | None:
    return sniff_mime(data)


def _output_size(params: _Params, first: Image.Image | None) -> tuple[int, int]:
    """The pixel size to render: the requested size, or for auto the input image's (or a square)."""
    if params.size != "auto":
        w, h = params.size.split("x")
        return int(w), int(h)
    if first is not None:
        if size_ok(params.model, f"{first.width}x{first.height}") and params.model.startswith("gpt-image-2"):
            return first.width, first.height
        ratio = first.width / first.height
        return (1536, 1024) if ratio > 1.22 else (1024, 1536) if ratio < 0.82 else (1024, 1024)
    return 1024, 1024


def _usage(params: _Params, width: int, height: int, images: int) -> dict[str, Any]:
    quality = params.quality if params.quality != "auto" else "medium"
    text_in = max(1, len(params.prompt) // 4)
    image_in = images * INPUT_IMAGE_TOKENS[params.input_fidelity or "low"]
    image_out = round(OUTPUT_TOKENS_1024[quality] * width * height / (1024 * 1024)) * params.n
    return {"input_tokens": text_in + image_in,
            "input_tokens_details": {"text_tokens": text_in, "image_tokens": image_in},
            "output_tokens": image_out, "output_tokens_details": {"text_tokens": 0, "image_tokens": image_out},
            "total_tokens": text_in + image_in + image_out}


def _encode(img: Image.Image, fmt: str, compression: int | None) -> bytes:
    buf = io.BytesIO()
    pil = FORMATS[fmt]
    out = img.convert("RGB") if pil == "JPEG" or img.mode not in ("RGB", "RGBA") else img
    kwargs: dict[str, Any] = {}
    if pil in ("JPEG", "WEBP"):
        kwargs["quality"] = compression if compression is not None else 92
    out.save(buf, format=pil, **kwargs)
    return buf.getvalue()


@functools.lru_cache(maxsize=16)
def _plain_encoded(prompt: str, width: int, height: int, seed: int, fmt: str, compression: int | None) -> bytes:
    """A plain generation's encoded image, cached: identical requests (load tests) cost no re-render."""
    img = Image.open(io.BytesIO(fake_render(prompt, width, height, seed=seed))).convert("RGB")
    return _encode(img, fmt, compression)


def editable_area(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """OpenAI's mask convention as an "L" mask (255 = may change): fully transparent (alpha 0) pixels are the
    area to edit; every other pixel is kept."""
    alpha = mask.convert("RGBA").getchannel("A")
    if alpha.size != size:
        alpha = alpha.resize(size, Image.Resampling.NEAREST)
    return alpha.point(lambda v: 255 if v == 0 else 0)


def _render(params: _Params, width: int, height: int, seed: int, images: list[Image.Image],
            mask: Image.Image | None) -> Image.Image:
    """What the model makes of the request. With a mask: the first image kept exactly outside the mask's
    transparent area, that area re-rendered from the prompt (the other images placed there). Without one:
    a new image of the prompt with every input image placed in it (gpt-image regenerates unmasked edits)."""
    if mask is not None and images:
        base = images[0].convert("RGB")
        if base.size != (width, height):
            base = base.resize((width, height), Image.Resampling.LANCZOS)
        return masked_edit(base, editable_area(mask, (width, height)), params.prompt, seed, images[1:])
    return render_image(params.prompt, width, height, seed, images)


def create_app(faults: FaultPlan, *, api_key: str | None = None, faults_after: int = 0,
               **options: Any) -> Starlette:
    """The fake's ASGI app. api_key: require exactly this Bearer key; faults_after: serve this many
    generation requests normally before the fault plan starts (to fault a later iteration)."""
    log = RequestLog()
    counter = {"generations": 0}
    lock = asyncio.Lock()

    def check_auth(request: Request) -> None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise ApiError(401, "You didn't provide an API key. You need to provide your API key in an "
                           "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                           code=None)
        if api_key is not None and auth[7:].strip() != api_key:
            raise ApiError(401, f"Incorrect API key provided: {auth[7:12]}***. You can find your API key at "
                           "https://platform.openai.com/account/api-keys.", code="invalid_api_key")

    async def next_fault() -> Fault | None:
        async with lock:
            counter["generations"] += 1
            if counter["generations"] <= faults_after:
                return None
        return faults.next()

    async def generations(request: Request) -> Response:
        rid = _request_id()
        raw_body = await request.body()
        try:
            body = json.loads(raw_body or b"{}")
        except ValueError:
            body = None
        log.add(request.method, request.url.path, dict(request.headers), body)
        try:
            check_auth(request)
            if not isinstance(body, dict):
                raise ApiError(400, "We could not parse the JSON body of your request.", code=None)
            params = _Params(body, "generations")
            return await answer(request, params, rid, [], None)
        except ApiError as e:
            return e.response(rid)

    async def edits(request: Request) -> Response:
        rid = _request_id()
        try:
            form = await request.form(max_files=64)
        except Exception as e:  # noqa: BLE001 - a body that is not multipart
            log.add(request.method, request.url.path, dict(request.headers), None)
            return ApiError(400, f"Invalid multipart body: {e}").response(rid)
        fields: dict[str, Any] = {}
        files: list[dict[str, Any]] = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                files.append({"field": key, "filename": value.filename, "content_type": value.content_type,
                              "data": data})
            else:
                fields[key] = value
        await form.close()
        log.add(request.method, request.url.path, dict(request.headers), {**fields, "files": files})
        try:
            check_auth(request)
            images = [f for f in files if f["field"] in ("image", "image[]")]
            if not images:
                raise ApiError(400, "Missing required parameter: 'image'.", code="missing_required_parameter",
                               param="image")
            if len(images) > MAX_IMAGES:
                raise ApiError(400, f"Invalid 'image': too many images ({len(images)}); at most {MAX_IMAGES}.",
                               code="array_above_max_length", param="image")
            params = _Params(fields, "edits")
            decoded = [_decode_upload(f["data"], f["field"]) for f in images]
            for f, img in zip(images, decoded):
                f.update(width=img.width, height=img.height, mode=img.mode)
            mask = None
            masks = [f for f in files if f["field"] == "mask"]
            if masks:
                mask = _decode_upload(masks[0]["data"], "mask", png_only=True)
                masks[0].update(width=mask.width, height=mask.height, mode=mask.mode)
                has_alpha = mask.mode in ("RGBA", "LA") or (mask.mode == "P" and "transparency" in mask.info)
                if not has_alpha:
                    raise ApiError(400, f"Invalid mask image: the mask must have an alpha channel (got mode "
                                   f"{mask.mode}); transparent (alpha 0) pixels mark the area to edit.",
                                   param="mask", code="invalid_mask")
                if mask.size != decoded[0].size:
                    raise ApiError(400, f"Invalid mask image: the mask is {mask.width}x{mask.height} but the image "
                                   f"is {decoded[0].width}x{decoded[0].height}; they must be the same size.",
                                   param="mask", code="invalid_mask")
            return await answer(request, params, rid, decoded, mask)
        except ApiError as e:
            return e.response(rid)

    async def answer(request: Request, params: _Params, rid: str, images: list[Image.Image],
                     mask: Image.Image | None) -> Response:
        fault = await next_fault()
        await apply_delay(faults, fault)
        kind = fault.kind if fault else None
        if fault is not None and kind != "slow":
            faulted = fault_response(fault, params, rid, request)
            if faulted is not None:
                return faulted
        first = images[0] if images else None
        width, height = _output_size(params, first)
        render_w, render_h = (width // 2, height // 2) if kind == "wrong_size" else (width, height)
        rendered: list[Image.Image] = []
        if first is None and not params.stream:
            blobs = await asyncio.gather(*(
                asyncio.to_thread(_plain_encoded, params.prompt, render_w, render_h, i, params.output_format,
                                  params.output_compression) for i in range(params.n)))
        else:
            rendered = await asyncio.gather(*(
                asyncio.to_thread(_render, params, render_w, render_h, i, images, mask) for i in range(params.n)))
            blobs = await asyncio.gather(*(
                asyncio.to_thread(_encode, img, params.output_format, params.output_compression) for img in rendered))
        if options.get("c2pa_sign"):
            blobs = list(await asyncio.gather(*(asyncio.to_thread(provider_sign, b, "openai") for b in blobs)))
        if kind == "truncated":
            blobs = [b[: len(b) // 2] for b in blobs]
        usage = _usage(params, width, height, len(images))
        meta = {"background": "transparent" if params.background == "transparent" else "opaque",
                "output_format": params.output_format,
                "quality": params.quality if params.quality != "auto" else "medium", "size": f"{width}x{height}"}
        headers = {"x-request-id": rid, "openai-processing-ms": str(int(faults.latency * 1000) + 1),
                   "openai-version": "2020-10-01", **_rate_headers()}
        if params.stream:
            return StreamingResponse(sse_events(params, rendered, blobs[0], meta, usage), headers=headers,
                                     media_type="text/event-stream")
        data = [] if kind == "no_image" else [{"b64_json": base64.b64encode(b).decode()} for b in blobs]
        return JSONResponse({"created": int(time.time()), "data": data, **meta, "usage": usage}, headers=headers)

    async def sse_events(params: _Params, rendered: list[Image.Image], final: bytes, meta: dict[str, Any],
                         usage: dict[str, Any]):
        prefix = "image_generation" if params.endpoint == "generations" else "image_edit"
        common = {**meta, "background": meta["background"], "created_at": int(time.time())}
        for i in range(params.partial_images):
            radius = 12 * (params.partial_images - i)
            partial = _encode(rendered[0].filter(ImageFilter.GaussianBlur(radius)), params.output_format, None)
            event = {"type": f"{prefix}.partial_image", "b64_json": base64.b64encode(partial).decode(),
                     "partial_image_index": i, **common}
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
            await asyncio.sleep(0)
        done = {"type": f"{prefix}.completed", "b64_json": base64.b64encode(final).decode(), **common, "usage": usage}
        yield f"event: {done['type']}\ndata: {json.dumps(done)}\n\n"

    def fault_response(fault: Fault, params: _Params, rid: str, request: Request) -> Response | None:
        kind, value = fault.kind, fault.value
        if kind == "429":
            wait = value if value is not None else 1.0
            return ApiError(429, f"Rate limit reached for {params.model} in organization org-fake on images per min "
                            f"(IPM): Limit 5, Used 5, Requested 1. Please try again in {_seconds(wait)}s. Visit "
                            "https://platform.openai.com/account/rate-limits to learn more.", type_="requests",
                            code="rate_limit_exceeded",
                            headers={**_rate_headers(0, f"{_seconds(wait)}s"), "retry-after": _seconds(wait),
                                     "retry-after-ms": str(int(wait * 1000))}).response(rid)
        if kind == "quota":
            return ApiError(429, "You exceeded your current quota, please check your plan and billing details. For "
                            "more information on this error, read the docs: "
                            "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                            type_="insufficient_quota", code="insufficient_quota").response(rid)
        if kind == "safety":
            return ApiError(400, "Your request was rejected by the safety system. If you believe this is an error, "
                            f"contact us at help.openai.com and include the request ID {rid}. "
                            "safety_violations=[sexual].", type_="image_generation_user_error",
                            code="moderation_blocked",
                            moderation_details={"moderation_stage": "input", "categories": ["sexual"]}).response(rid)
        if kind == "500":
            return ApiError(500, "The server had an error while processing your request. Sorry about that!",
                            type_="server_error").response(rid)
        if kind == "503":
            return ApiError(503, "The server is overloaded or not ready yet.", type_="server_error").response(rid)
        if kind == "html":
            html = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
                    "</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n")
            return Response(html, status_code=502, media_type="text/html")
        if kind == "malformed":
            return Response('{"created": 1760000000, "data": [{"b64_json": "iVBORw0KGgo', status_code=200,
                            media_type="application/json", headers={"x-request-id": rid})
        if kind == "reset":
            return ResetResponse()
        return None

    routes = []
    for prefix in ("/v1", ""):
        routes += [Route(f"{prefix}/images/generations", generations, methods=["POST"]),
                   Route(f"{prefix}/images/edits", edits, methods=["POST"])]
    app = _FakeApp(routes=routes)
    app.state.requests = log
    app.state.faults = faults
    app.state.options = options
    return app


_TRANSPORT = "pixloop.transport"


class _FakeApp(Starlette):
    """Starlette that remembers the server's socket transport in the scope, so a 'reset' fault can abort it."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if scope["type"] == "http" and transport is not None:
            scope[_TRANSPORT] = transport
        await super().__call__(scope, receive, send)


class ResetResponse(Response):
    """Drops the connection without an answer: aborts the socket when the server exposes it, else
    starts a response and stops mid-body so the client sees the connection cut."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        transport = scope.get(_TRANSPORT)
        if transport is not None:
            transport.abort()
            await asyncio.sleep(0)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"created": 1', "more_body": True})
