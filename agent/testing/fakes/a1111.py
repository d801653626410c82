"""A fake AUTOMATIC1111 / Forge WebUI API: /sdapi/v1/txt2img and img2img with images and a JSON-string info.

Renders the prompt with fake_render at width x height (truncated to multiples of 8, as the
WebUI does). img2img uses the init image it receives: without a mask the render is mixed in by
denoising_strength; with a mask (read as the WebUI reads one: white = repaint, an RGBA mask's
alpha, black with inpainting_mask_invert=1; softened by mask_blur) only the masked pixels change,
re-rendered at the masked area when inpaint_full_res is set. Errors take the WebUI's shapes:
404 "Sampler not found" / "Init image not found", 500 {"error", "detail", "body", "errors"}
(also "Invalid encoded image"), FastAPI's 422 {"detail": [...]} and, with option
auth="user:pass", 401 for missing or wrong Basic credentials.

Faults (consumed by txt2img/img2img): 429, 500, 503, html, slow, reset answer the request;
quota is the local unfixable limit, a 500 OutOfMemoryError; no_image and safety (no WebUI
analogue) return an empty images list; malformed is a cut-off JSON body; truncated and
wrong_size spoil the image.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import random
import time
from typing import Any

from PIL import Image, ImageFilter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent.testing.fakes.base import FaultPlan, RequestLog, apply_delay, encode, fake_render
from agent.testing.fakes.editing import img2img, masked_edit
from agent.testing.fakes.replies import request_fault_response, reset_connection

SAMPLERS = ("Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DDIM", "UniPC", "LCM")
MODELS = ({"title": "sd_xl_base_1.0.safetensors [31e35c80fc]", "model_name": "sd_xl_base_1.0",
           "hash": "31e35c80fc", "filename": "/models/Stable-diffusion/sd_xl_base_1.0.safetensors"},)
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "prompt": (str,), "negative_prompt": (str,), "seed": (int,), "steps": (int,), "cfg_scale": (int, float),
    "width": (int,), "height": (int,), "batch_size": (int,), "n_iter": (int,), "sampler_name": (str,),
    "denoising_strength": (int, float), "init_images": (list,), "mask": (str,), "inpainting_fill": (int,),
    "inpaint_full_res": (bool, int), "mask_blur": (int,), "inpainting_mask_invert": (int,),
    "inpaint_full_res_padding": (int,),
    "override_settings": (dict,), "resize_mode": (int,),
}


def _error(status: int, error: str, detail: str = "", errors: str = "") -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, "body": "", "errors": errors or detail},
                        status_code=status)


def _validate(body: Any) -> list[dict[str, Any]]:
    """FastAPI-style 422 items for fields of the wrong type."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]
    items = []
    for name, types in FIELD_TYPES.items():
        value = body.get(name)
        if value is None:
            continue
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            kind = types[0].__name__
            items.append({"loc": ["body", name], "msg": f"value is not a valid {kind}", "type": f"type_error.{kind}"})
    for name in ("width", "height", "steps"):
        if isinstance(body.get(name), int) and body[name] < 1:
            items.append({"loc": ["body", name], "msg": "ensure this value is greater than 0",
                          "type": "value_error.number.not_gt"})
    return items


def _open(data: str) -> Image.Image:
    if data.startswith("data:"):
        data = data.partition(",")[2]
    img = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
    img.load()
    return img


def _decode(data: str) -> Image.Image:
    return _open(data).convert("RGB")


def binary_mask(img: Image.Image) -> Image.Image:
    """The WebUI's reading of a mask (create_binary_mask): an RGBA mask with transparency is its alpha
    thresholded at 128 (opaque = repaint); anything else is its greyscale (white = repaint)."""
    if img.mode == "RGBA" and min(img.getchannel("A").getdata()) < 255:
        return img.getchannel("A").point(lambda v: 255 if v > 128 else 0)
    return img.convert("L")


def _img2img(body: dict[str, Any], init: Image.Image, mask: Image.Image | None, prompt: str, width: int,
             height: int, seed: int) -> Image.Image:
    """img2img as the WebUI does it: the init image resized to width x height; without a mask the render is
    mixed in by denoising_strength; with one (white = repaint, or black with inpainting_mask_invert=1, blurred
    by mask_blur) only the masked pixels change, rendered at the masked area when inpaint_full_res is set."""
    base = init.resize((width, height), Image.Resampling.LANCZOS) if init.size != (width, height) else init
    if mask is None:
        return img2img(base, prompt, seed, float(body.get("denoising_strength", 0.75)))
    mask = mask.resize((width, height), Image.Resampling.NEAREST) if mask.size != (width, height) else mask
    if body.get("inpainting_mask_invert"):
        mask = mask.point(lambda v: 255 - v)
    blur = int(body.get("mask_blur", 4) or 0)
    if blur > 0:
        mask = mask.filter(ImageFilter.GaussianBlur(blur))
    return masked_edit(base, mask, prompt, seed, fit="region" if body.get("inpaint_full_res") else "full")


def create_app(faults: FaultPlan, *, auth: str | None = None, sd_model_name: str = "sd_xl_base_1.0") -> Starlette:
    """The fake WebUI app; `app.state.requests` records every request (Authorization masked)."""
    log = RequestLog()
    expected = "Basic " + base64.b64encode(auth.encode()).decode() if auth else None

    def denied(request: Request) -> Response | None:
        if expected is None:
            return None
        header = request.headers.get("authorization")
        if header == expected:
            return None
        detail = "Not authenticated" if not header else "Incorrect username or password"
        return JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Basic"})

    async def generate(request: Request) -> Response:
        mode = request.url.path.rsplit("/", 1)[-1]
        try:
            body = await request.json()
        except ValueError:
            body = None
        log.add(request.method, request.url.path, dict(request.headers), body)
        refused = denied(request)
        if refused is not None:
            return refused
        problems = _validate(body)
        if problems:
            return JSONResponse({"detail": problems}, status_code=422)
        fault = faults.next()
        await apply_delay(faults, fault)
        if fault is not None and fault.kind == "reset":
            return await reset_connection(request)
        reply = request_fault_response(fault)
        if reply is not None:
            return reply
        kind = fault.kind if fault is not None else None
        if kind == "quota":
            return _error(500, "OutOfMemoryError", "", "CUDA out of memory. Tried to allocate 2.50 GiB (GPU 0; "
                          "8.00 GiB total capacity; 6.90 GiB already allocated)")
        sampler = body.get("sampler_name") or "Euler a"
        if sampler not in SAMPLERS:
            return _error(404, "HTTPException", "Sampler not found", "404: Sampler not found")
        init = None
        mask = None
        if mode == "img2img":
            if not body.get("init_images"):
                return _error(404, "HTTPException", "Init image not found", "404: Init image not found")
            try:
                init = _decode(body["init_images"][0])
                mask = binary_mask(_open(body["mask"])) if body.get("mask") else None
            except (binascii.Error, ValueError, OSError):
                return _error(500, "HTTPException", "Invalid encoded image", "500: Invalid encoded image")
        seed = body.get("seed", -1)
        seed = random.randrange(2**32) if seed is None or seed < 0 else seed
        width = max(64, int(body.get("width") or 512) // 8 * 8)
        height = max(64, int(body.get("height") or 512) // 8 * 8)
        if kind == "wrong_size":
            width, height = width // 2, height // 2
        prompt = body.get("prompt") or ""
        images: list[str] = []
        if kind not in ("no_image", "safety"):
            if init is None:
                png = fake_render(prompt, width, height, seed % 2**32)
            else:
                png = encode(await asyncio.to_thread(_img2img, body, init, mask, prompt, width, height, seed % 2**32))
            if kind == "truncated":
                png = png[: len(png) // 2]
            images.append(base64.b64encode(png).decode())
        info = {
            "prompt": prompt, "all_prompts": [prompt], "negative_prompt": body.get("negative_prompt", ""),
            "all_negative_prompts": [body.get("negative_prompt", "")], "seed": seed, "all_seeds": [seed],
            "subseed": seed + 1, "all_subseeds": [seed + 1], "subseed_strength": 0, "width": width, "height": height,
            "sampler_name": sampler, "cfg_scale": body.get("cfg_scale", 7.0), "steps": body.get("steps", 50),
            "batch_size": 1, "restore_faces": False, "sd_model_name": sd_model_name, "sd_model_hash": "31e35c80fc",
            "seed_resize_from_w": -1, "seed_resize_from_h": -1,
            "denoising_strength": body.get("denoising_strength") if mode == "img2img" else None,
            "extra_generation_params": {}, "index_of_first_image": 0,
            "infotexts": [f"{prompt}\nSteps: {body.get('steps', 50)}, Sampler: {sampler}, Seed: {seed}"],
            "styles": [], "job_timestamp": time.strftime("%Y%m%d%H%M%S"), "clip_skip": 1,
            "is_using_inpainting_conditioning": False,
            "version": "v1.10.1-fake",
        }
        parameters = {k: v for k, v in body.items() if k not in ("init_images", "mask")}
        parameters["init_images"] = None
        if kind == "malformed":
            return Response('{"images": ["iVBORw0KGgo', media_type="application/json")
        return JSONResponse({"images": images, "parameters": parameters, "info": json.dumps(info)})

    async def samplers(request: Request) -> Response:
        log.add(request.method, request.url.path, dict(request.headers), None)
        return denied(request) or JSONResponse([{"name": s, "aliases": [], "options": {}} for s in SAMPLERS])

    async def models(request: Request) -> Response:
        log.add(request.method, request.url.path, dict(request.headers), None)
        return denied(request) or JSONResponse([{**m, "sha256": None, "config": None} for m in MODELS])

    async def progress(request: Request) -> Response:
        log.add(request.method, request.url.path, dict(request.headers), None)
        return denied(request) or JSONResponse({"progress": 0.0, "eta_relative": 0.0, "state": {
            "skipped": False, "interrupted": False, "job": "", "job_count": 0, "job_timestamp": "0",
            "job_no": 0, "sampling_step": 0, "sampling_steps": 0}, "current_image": None, "textinfo": None})

    async def interrupt(request: Request) -> Response:
        log.add(request.method, request.url.path, dict(request.headers), None)
        return denied(request) or JSONResponse({})

    app = Starlette(routes=[
        Route("/sdapi/v1/txt2img", generate, methods=["POST"]),
        Route("/sdapi/v1/img2img", generate, methods=["POST"]),
        Route("/sdapi/v1/samplers", samplers, methods=["GET"]),
        Route("/sdapi/v1/sd-models", models, methods=["GET"]),
        Route("/sdapi/v1/progress", progress, methods=["GET"]),
        Route("/sdapi/v1/interrupt", interrupt, methods=["POST"]),
    ])
    app.state.requests = log
    return app
