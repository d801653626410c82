"""A fake ComfyUI server: validates API-format graphs like ComfyUI, "executes" them with fake_render.

Routes (each also under /api/): POST /prompt, POST /upload/image, GET /history[/{id}],
GET /view, GET /queue, POST /queue, POST /interrupt, GET /object_info[/{class}], GET /system_stats
and the /ws?clientId= websocket (status, execution_start, executing, progress, a binary preview,
executed, execution_success, executing{node: null}).

The graph is interpreted over a small node table: the positive CLIPTextEncode text reaching a
KSampler is rendered at the EmptyLatentImage size (or the LoadImage size for img2img); with a
noise mask the render is composited into the loaded image inside the mask only.

Options: checkpoints (installed ckpt names), history_polls (GET /history/{id} answers {} this
many times before the entry, unless the websocket already announced the end), ws_close_early
(close the socket after execution_start, so the client must poll), execution_error (True or a
count: those prompts fail in KSampler with an execution_error), ignore_overwrite (rename
clashing uploads to "x (1).png" even with overwrite=true, as old servers did).

Faults (consumed by POST /prompt): 429, 500, 503, html, slow, reset answer /prompt itself;
no_image and safety (ComfyUI has no safety block) finish the prompt with no images; malformed
breaks its /history JSON; truncated and wrong_size spoil the bytes /view serves; quota (a local
server's unfixable resource limit) fails it with torch.OutOfMemoryError.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from agent.testing.fakes.base import Fault, FaultPlan, RequestLog, apply_delay, fake_render

DEFAULT_CHECKPOINTS = ("sd_xl_base_1.0.safetensors", "v1-5-pruned-emaonly.safetensors")
SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "lms", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_sde",
            "ddim", "uni_pc", "lcm")
SCHEDULERS = ("simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
              "linear_quadratic", "kl_optimal")
LINK_TYPES = {"MODEL", "CLIP", "VAE", "CONDITIONING", "LATENT", "IMAGE", "MASK"}

NODES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "CheckpointLoaderSimple": ({"ckpt_name": "CKPT"}, ("MODEL", "CLIP", "VAE")),
    "EmptyLatentImage": ({"width": ("INT", 16, 16384), "height": ("INT", 16, 16384), "batch_size": ("INT", 1, 64)},
                         ("LATENT",)),
    "CLIPTextEncode": ({"text": "STRING", "clip": "CLIP"}, ("CONDITIONING",)),
    "KSampler": ({"model": "MODEL", "seed": ("INT", 0, 2**64 - 1), "steps": ("INT", 1, 10000),
                  "cfg": ("FLOAT", 0.0, 100.0), "sampler_name": SAMPLERS, "scheduler": SCHEDULERS,
                  "positive": "CONDITIONING", "negative": "CONDITIONING", "latent_image": "LATENT",
                  "denoise": ("FLOAT", 0.0, 1.0)}, ("LATENT",)),
    "VAEDecode": ({"samples": "LATENT", "vae": "VAE"}, ("IMAGE",)),
    "VAEEncode": ({"pixels": "IMAGE", "vae": "VAE"}, ("LATENT",)),
    "VAEEncodeForInpaint": ({"pixels": "IMAGE", "vae": "VAE", "mask": "MASK", "grow_mask_by": ("INT", 0, 64)},
                            ("LATENT",)),
    "SetLatentNoiseMask": ({"samples": "LATENT", "mask": "MASK"}, ("LATENT",)),
    "LoadImage": ({"image": "UPLOAD"}, ("IMAGE", "MASK")),
    "LoadImageMask": ({"image": "UPLOAD", "channel": ("alpha", "red", "green", "blue")}, ("MASK",)),
    "SaveImage": ({"images": "IMAGE", "filename_prefix": "STRING"}, ()),
    "PreviewImage": ({"images": "IMAGE"}, ()),
}
OUTPUT_NODES = ("SaveImage", "PreviewImage")
RESULT_FAULTS = {"no_image", "safety", "malformed", "truncated", "wrong_size", "quota"}


def _err(kind: str, message: str, details: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def _is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and isinstance(value[1], int))


async def reset_connection(request: Request) -> Response:
    """Drop the TCP connection without an answer (the 'reset' fault), as a crashed server or proxy does."""
    transport = getattr(getattr(request.receive, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionResetError("fake reset")  # uvicorn answers 500 and closes: still a failed request
    transport.abort()
    await asyncio.sleep(0.01)
    return Response(status_code=500)


def request_fault_response(fault: Fault | None) -> Response | None:
    """The reply for a fault that answers the request itself (429, 5xx, HTML), or None."""
    if fault is None:
        return None
    if fault.kind == "429":
        wait = fault.value if fault.value is not None else 1
        return JSONResponse({"error": {"type": "rate_limited", "message": "Too many requests, slow down"}},
                            status_code=429, headers={"Retry-After": f"{wait:g}"})
    if fault.kind == "500":
        return Response("500 Internal Server Error\n\nServer got itself in trouble", status_code=500,
                        media_type="text/plain")
    if fault.kind == "503":
        return JSONResponse({"error": {"type": "unavailable", "message": "Service Unavailable"}}, status_code=503)
    if fault.kind == "html":
        return Response("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
                        "</h1></center><hr><center>nginx</center></body></html>", status_code=502,
                        media_type="text/html")
    return None


@dataclass
class Job:
    prompt_id: str
    number: int
    graph: dict[str, Any]
    client_id: str
    fault: str | None = None
    error: dict[str, Any] | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    messages: list[list[Any]] = field(default_factory=list)
    status_str: str = "success"
    done: bool = False
    announced: bool = False
    polls: int = 0


class _State:
    def __init__(self, checkpoints: tuple[str, ...], history_polls: int, ws_close_early: bool,
                 execution_error: bool | int, ignore_overwrite: bool):
        self.checkpoints = checkpoints
        self.history_polls = history_polls
        self.ws_close_early = ws_close_early
        self.execution_errors = (10**9 if execution_error is True else int(execution_error or 0))
        self.ignore_overwrite = ignore_overwrite
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.jobs: dict[str, Job] = {}
        self.sockets: dict[str, list[asyncio.Queue]] = {}
        self.number = 0
        self.counter = 0
        self.run_lock = asyncio.Lock()

    def emit(self, client_id: str, frame: dict[str, Any] | bytes) -> bool:
        """Queue a frame for every socket of a client; True if one is connected."""
        queues = self.sockets.get(client_id, [])
        for q in queues:
            q.put_nowait(frame)
        return bool(queues)

    def uploaded(self, name: str) -> bool:
        name = name.removesuffix(" [input]")
        sub, _, base = name.rpartition("/")
        return ("input", sub, base) in self.files


# --- validation ---------------------------------------------------------------------------------


def _validate(graph: Any, state: _State) -> tuple[dict[str, Any] | None, int]:
    """The 400 body ComfyUI would send for this prompt, or (None, 200)."""
    if not isinstance(graph, dict) or not graph:
        return {"error": _err("no_prompt", "No prompt provided"), "node_errors": {}}, 400
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return {"error": _err("invalid_prompt", "Cannot execute because a node is missing the class_type "
                                  "property.", f"Node ID '#{node_id}'"), "node_errors": {}}, 400
        if node["class_type"] not in NODES:
            return {"error": _err("invalid_prompt", f"Cannot execute because node {node['class_type']} does not "
                                  "exist.", f"Node ID '#{node_id}'"), "node_errors": {}}, 400
    outputs = [nid for nid, n in graph.items() if n["class_type"] in OUTPUT_NODES]
    if not outputs:
        return {"error": _err("prompt_no_outputs", "Prompt has no outputs"), "node_errors": {}}, 400
    node_errors: dict[str, Any] = {}
    for node_id, node in graph.items():
        errors = _node_errors(graph, node, state)
        if errors:
            node_errors[node_id] = {"errors": errors, "class_type": node["class_type"],
                                    "dependent_outputs": [o for o in outputs if node_id in _ancestors(graph, o)]}
    if node_errors:
        return {"error": _err("prompt_outputs_failed_validation", "Prompt outputs failed validation"),
                "node_errors": node_errors}, 400
    return None, 200


def _ancestors(graph: dict[str, Any], node_id: str) -> set[str]:
    seen: set[str] = set()
    stack = [node_id]
    while stack:
        nid = stack.pop()
        if nid in seen or nid not in graph:
            continue
        seen.add(nid)
        stack.extend(str(v[0]) for v in (graph[nid].get("inputs") or {}).values() if _is_link(v))
    return seen


def _node_errors(graph: dict[str, Any], node: dict[str, Any], state: _State) -> list[dict[str, Any]]:
    spec, _ = NODES[node["class_type"]]
    inputs = node.get("inputs") or {}
    errors = []
    for name, kind in spec.items():
        if name not in inputs:
            errors.append(_err("required_input_missing", "Required input is missing", name, input_name=name))
            continue
        value = inputs[name]
        if isinstance(kind, str) and kind in LINK_TYPES:
            if not _is_link(value):
                errors.append(_err("bad_linked_input", "Bad linked input, must be a length-2 list of [string, int]",
                                   f"{name}, {value!r}", input_name=name))
                continue
            source = graph.get(str(value[0]))
            if source is None:
                errors.append(_err("bad_linked_input", "Linked node does not exist",
                                   f"{name}: node {value[0]!r} is not in the prompt", input_name=name))
                continue
            outs = NODES[source["class_type"]][1]
            got = outs[value[1]] if 0 <= value[1] < len(outs) else None
            if got != kind:
                errors.append(_err("return_type_mismatch", "Return type mismatch between linked nodes",
                                   f"{name}, received_type({got}) mismatch input_type({kind})", input_name=name))
            continue
        if _is_link(value):
            continue  # a primitive fed by another node: accepted as ComfyUI does
        errors.extend(_value_errors(node["class_type"], name, kind, value, state))
    return errors


def _value_errors(class_type: str, name: str, kind: Any, value: Any, state: _State) -> list[dict[str, Any]]:
    if kind == "CKPT":
        kind = state.checkpoints
    if isinstance(kind, tuple) and kind and isinstance(kind[0], str) and kind[0] in ("INT", "FLOAT"):
        number_type, lo, hi = kind
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number_type == "INT":
            ok = ok and float(value).is_integer()
        if not ok:
            return [_err("invalid_input_type", f"Failed to convert an input value to a {number_type} value",
                         f"{name}, {value!r}", input_name=name, received_value=value)]
        if value < lo:
            return [_err("value_smaller_than_min", f"Value {value} smaller than min of {lo}", f"{name}",
                         input_name=name, received_value=value)]
        if value > hi:
            return [_err("value_bigger_than_max", f"Value {value} bigger than max of {hi}", f"{name}",
                         input_name=name, received_value=value)]
        if class_type == "EmptyLatentImage" and name in ("width", "height") and int(value) % 8:
            return [_err("custom_validation_failed", "Value is not a multiple of 8",
                         f"{name}: {value} is not a multiple of 8", input_name=name, received_value=value)]
        return []
    if isinstance(kind, tuple):
        if value not in kind:
            return [_err("value_not_in_list", "Value not in list", f"{name}: {value!r} not in {list(kind)}",
                         input_name=name, input_config=[list(kind)], received_value=value)]
        return []
    if kind == "STRING" and not isinstance(value, str):
        return [_err("invalid_input_type", "Failed to convert an input value to a STRING value",
                     f"{name}, {value!r}", input_name=name, received_value=value)]
    if kind == "UPLOAD" and not (isinstance(value, str) and state.uploaded(value)):
        return [_err("custom_validation_failed", "Custom validation failed for node", f"Invalid image file: {value}",
                     input_name=name, received_value=value)]
    return []


# --- execution ----------------------------------------------------------------------------------


def _evaluate(graph: dict[str, Any], files: dict[tuple[str, str, str], bytes], fault: str | None,
              counter: int) -> tuple[dict[str, Any], dict[tuple[str, str, str], bytes], int]:
    """Interpret the graph: ({output node: {"images": [...]}}, new files, next counter). Runs in a thread."""
    cache: dict[tuple[str, int], Any] = {}
    new_files: dict[tuple[str, str, str], bytes] = {}

    def load(name: str) -> Image.Image:
        name = name.removesuffix(" [input]")
        sub, _, base = name.rpartition("/")
        return Image.open(io.BytesIO(files[("input", sub, base)]))

    def value(node_id: str, index: int) -> Any:
        key = (node_id, index)
        if key not in cache:
            cache[key] = run(node_id, index)
        return cache[key]

    def arg(inputs: dict[str, Any], name: str) -> Any:
        v = inputs.get(name)
        return value(str(v[0]), v[1]) if _is_link(v) else v

    def run(node_id: str, index: int) -> Any:
        node = graph[node_id]
        kind, inputs = node["class_type"], node.get("inputs") or {}
        if kind == "CheckpointLoaderSimple":
            return inputs.get("ckpt_name")
        if kind == "EmptyLatentImage":
            return {"w": int(inputs["width"]), "h": int(inputs["height"]), "batch": int(inputs.get("batch_size", 1))}
        if kind == "CLIPTextEncode":
            return str(arg(inputs, "text"))
        if kind == "LoadImage":
            img = load(arg(inputs, "image"))
            if index == 0:
                return img.convert("RGB")
            alpha = img.getchannel("A") if "A" in img.getbands() else Image.new("L", img.size, 255)
            return alpha.point(lambda a: 255 - a)
        if kind == "LoadImageMask":
            img = load(arg(inputs, "image")).convert("RGBA")
            channel = {"alpha": "A", "red": "R", "green": "G", "blue": "B"}[inputs.get("channel", "alpha")]
            band = img.getchannel(channel)
            return band.point(lambda a: 255 - a) if channel == "A" else band
        if kind in ("VAEEncode", "VAEEncodeForInpaint"):
            img = arg(inputs, "pixels")
            latent = {"w": img.width // 8 * 8, "h": img.height // 8 * 8, "batch": 1, "image": img}
            if kind == "VAEEncodeForInpaint":
                latent["mask"] = arg(inputs, "mask")
            return latent
        if kind == "SetLatentNoiseMask":
            return {**arg(inputs, "samples"), "mask": arg(inputs, "mask")}
        if kind == "KSampler":
            return {**arg(inputs, "latent_image"), "text": arg(inputs, "positive"), "seed": int(arg(inputs, "seed"))}
        if kind == "VAEDecode":
            return decode(arg(inputs, "samples"))
        raise ValueError(f"{kind} has no outputs to evaluate")

    def decode(latent: dict[str, Any]) -> list[Image.Image]:
        if "text" not in latent:
            return [latent.get("image") or Image.new("RGB", (latent["w"], latent["h"]), "gray")]
        w, h = latent["w"], latent["h"]
        if fault == "wrong_size":
            w, h = max(8, w // 2), max(8, h // 2)
        images = []
        for i in range(max(1, min(4, latent.get("batch", 1)))):
            img = Image.open(io.BytesIO(fake_render(latent["text"], w, h, (latent["seed"] + i) % 2**32))).convert("RGB")
            if latent.get("image") is not None and latent.get("mask") is not None and fault != "wrong_size":
                base = latent["image"].convert("RGB").resize((w, h))
                img = Image.composite(img, base, latent["mask"].convert("L").resize((w, h)))
            images.append(img)
        return images

    outputs: dict[str, Any] = {}
    for node_id, node in graph.items():
        kind = node["class_type"]
        if kind not in OUTPUT_NODES:
            continue
        entries = []
        images = arg(node.get("inputs") or {}, "images")
        for img in images if isinstance(images, list) else [images]:
            counter += 1
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            data = buf.getvalue()
            if fault == "truncated":
                data = data[: len(data) // 2]
            if kind == "SaveImage":
                prefix = str((node.get("inputs") or {}).get("filename_prefix") or "ComfyUI")
                sub, _, base = prefix.rpartition("/")
                entry = {"filename": f"{base}_{counter:05d}_.png", "subfolder": sub, "type": "output"}
            else:
                entry = {"filename": f"ComfyUI_temp_pxlp_{counter:05d}_.png", "subfolder": "", "type": "temp"}
            new_files[(entry["type"], entry["subfolder"], entry["filename"])] = data
            entries.append(entry)
        outputs[node_id] = {"images": entries}
    return outputs, new_files, counter


def _preview_frame() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 90, 90)).save(buf, format="PNG")
    return struct.pack(">II", 1, 2) + buf.getvalue()


async def _run_job(state: _State, job: Job) -> None:
    """Execute one queued prompt, one at a time, sending ComfyUI's websocket events to its client."""
    await asyncio.sleep(0)
    async with state.run_lock:
        cid, pid = job.client_id, job.prompt_id
        state.emit(cid, {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}})
        start = {"prompt_id": pid, "timestamp": int(time.time() * 1000)}
        job.messages.append(["execution_start", start])
        state.emit(cid, {"type": "execution_start", "data": start})
        state.emit(cid, {"type": "execution_cached", "data": {"nodes": [], **start}})
        for node_id, node in job.graph.items():
            state.emit(cid, {"type": "executing", "data": {"node": node_id, "display_node": node_id, "prompt_id": pid}})
            if node["class_type"] == "KSampler":
                for step in (1, 2):
                    state.emit(cid, {"type": "progress", "data": {"value": step, "max": 2, "prompt_id": pid,
                                                                  "node": node_id}})
                    if step == 1:
                        state.emit(cid, _preview_frame())
                if job.error is not None:
                    break
        if job.error is not None:
            error = {"prompt_id": pid, "node_id": job.error["node_id"], "node_type": job.error["node_type"],
                     "executed": [], "exception_message": job.error["message"],
                     "exception_type": job.error["type"], "traceback": ["  File \"execution.py\", line 1\n"],
                     "current_inputs": {}, "current_outputs": {}, "timestamp": int(time.time() * 1000)}
            job.messages.append(["execution_error", error])
            job.status_str = "error"
            state.emit(cid, {"type": "execution_error", "data": error})
        else:
            try:
                fault = job.fault if job.fault in ("truncated", "wrong_size") else None
                outputs, files, state.counter = await asyncio.to_thread(
                    _evaluate, job.graph, dict(state.files), fault, state.counter)
            except Exception as e:  # a graph the interpreter cannot run is an execution error, as in ComfyUI
                error = {"prompt_id": pid, "node_id": "?", "node_type": "?", "exception_type": type(e).__name__,
                         "exception_message": str(e), "traceback": []}
                job.messages.append(["execution_error", error])
                job.status_str = "error"
                state.emit(cid, {"type": "execution_error", "data": error})
            else:
                state.files.update(files)
                if job.fault not in ("no_image", "safety"):
                    job.outputs = outputs
                    for node_id, output in outputs.items():
                        state.emit(cid, {"type": "executed", "data": {"node": node_id, "display_node": node_id,
                                                                      "output": output, "prompt_id": pid}})
                success = {"prompt_id": pid, "timestamp": int(time.time() * 1000)}
                job.messages.append(["execution_success", success])
                state.emit(cid, {"type": "execution_success", "data": success})
        job.done = True
        job.announced = state.emit(cid, {"type": "executing", "data": {"node": None, "display_node": None,
                                                                       "prompt_id": pid}})
        state.emit(cid, {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}}})


def _history_entry(job: Job) -> dict[str, Any]:
    outputs = [nid for nid, n in job.graph.items() if n["class_type"] in OUTPUT_NODES]
    return {"prompt": [job.number, job.prompt_id, job.graph, {"client_id": job.client_id}, outputs],
            "outputs": job.outputs,
            "status": {"status_str": job.status_str, "completed": job.status_str == "success",
                       "messages": job.messages},
            "meta": {nid: {"node_id": nid, "display_node": nid} for nid in job.outputs}}


# --- the app ------------------------------------------------------------------------------------


def create_app(faults: FaultPlan, *, checkpoints: list[str] | tuple[str, ...] = DEFAULT_CHECKPOINTS,
               history_polls: int = 2, ws_close_early: bool = False, execution_error: bool | int = False,
               ignore_overwrite: bool = False) -> Starlette:
    """The fake ComfyUI app; `app.state.requests` records what clients sent, `app.state.comfy` its files and jobs."""
    state = _State(tuple(checkpoints), int(history_polls), bool(ws_close_early), execution_error,
                   bool(ignore_overwrite))
    log = RequestLog()

    async def prompt(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        log.add(request.method, request.url.path, dict(request.headers), body)
        fault = faults.next()
        await apply_delay(faults, fault)
        if fault is not None and fault.kind == "reset":
            return await reset_connection(request)
        reply = request_fault_response(fault)
        if reply is not None:
            return reply
        if not isinstance(body, dict) or "prompt" not in body:
            return JSONResponse({"error": _err("no_prompt", "No prompt provided"), "node_errors": {}}, 400)
        graph = body["prompt"]
        error, status = _validate(graph, state)
        if error is not None:
            return JSONResponse(error, status)
        state.number += 1
        job = Job(prompt_id=str(body.get("prompt_id") or uuid.uuid4()), number=state.number, graph=graph,
                  client_id=str(body.get("client_id") or ""))
        if fault is not None and fault.kind in RESULT_FAULTS:
            job.fault = fault.kind
        sampler = next((nid for nid, n in graph.items() if n["class_type"] == "KSampler"), next(iter(graph)))
        if job.fault == "quota":
            job.error = {"node_id": sampler, "node_type": graph[sampler]["class_type"],
                         "type": "torch.OutOfMemoryError",
                         "message": "Allocation on device 0 would exceed allowed memory. (out of memory)"}
        elif state.execution_errors > 0:
            state.execution_errors -= 1
            job.error = {"node_id": sampler, "node_type": graph[sampler]["class_type"], "type": "RuntimeError",
                         "message": "mat1 and mat2 shapes cannot be multiplied (77x2048 and 768x320)"}
        state.jobs[job.prompt_id] = job
        asyncio.get_running_loop().create_task(_run_job(state, job))
        return JSONResponse({"prompt_id": job.prompt_id, "number": job.number, "node_errors": {}})

    async def upload(request: Request) -> Response:
        form = await request.form()
        image = form.get("image")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if image is None or isinstance(image, str):
            log.add(request.method, request.url.path, dict(request.headers), fields)
            return Response("no image in the upload", status_code=400)
        data = await image.read()
        log.add(request.method, request.url.path, dict(request.headers),
                {**fields, "filename": image.filename, "bytes": len(data)})
        kind = fields.get("type") or "input"
        sub = (fields.get("subfolder") or "").strip("/")
        overwrite = fields.get("overwrite", "").lower() in ("true", "1") and not state.ignore_overwrite
        name = (image.filename or "image.png").replace("\\", "/").rsplit("/", 1)[-1]
        stem, dot, ext = name.rpartition(".")
        stem, ext = (stem, f".{ext}") if dot else (name, "")
        i = 0
        while (kind, sub, name) in state.files and not overwrite:
            i += 1
            name = f"{stem} ({i}){ext}"
        state.files[(kind, sub, name)] = data
        return JSONResponse({"name": name, "subfolder": sub, "type": kind})

    async def history(request: Request) -> Response:
        log.add(request.method, request.url.path, dict(request.headers), None)
        pid = request.path_params.get("prompt_id")
        if pid is None:
            return JSONResponse({j.prompt_id: _history_entry(j) for j in state.jobs.values() if j.done})
        job = state.jobs.get(pid)
        if job is None:
            return JSONResponse({})
        job.polls += 1
        if not job.done or not (job.announced or job.polls > state.history_polls):
            return JSONResponse({})
        if job.fault == "malformed":
            return Response('{"%s": {"prompt": [1, "%s", {"3": ' % (pid, pid), media_type="application/json")
        return JSONResponse({pid: _history_entry(job)})

    async def view(request: Request) -> Response:
        q = request.query_params
        log.add(request.method, request.url.path, dict(request.headers), dict(q))
        filename, sub, kind = q.get("filename", ""), q.get("subfolder", "").strip("/"), q.get("type", "output")
        if not filename or ".." in filename or ".." in sub or filename.startswith("/"):
            return Response("bad filename", status_code=400)
        data = state.files.get((kind, sub, filename))
        if data is None:
            return Response("404: Not Found", status_code=404)
        media = "image/png" if filename.lower().endswith(".png") else "image/jpeg"
        return Response(data, media_type=media)

    async def queue(request: Request) -> Response:
        log.add(request.method, request.url.path, dict(request.headers), None)
        if request.method == "POST":
            body = await request.json()
            for pid in body.get("delete", []) if isinstance(body, dict) else []:
                state.jobs.pop(pid, None)
            return JSONResponse({})
        running = [[j.number, j.prompt_id, j.graph, {}, []] for j in state.jobs.values() if not j.done]
        return JSONResponse({"queue_running": running[:1], "queue_pending": running[1:]})

    async def interrupt(request: Request) -> Response:
        log.add(request.method, request.url.path, dict(request.headers), None)
        return Response(status_code=200)

    async def object_info(request: Request) -> Response:
        cls = request.path_params.get("node_class")
        info = {}
        for name, (spec, outs) in NODES.items():
            if cls is not None and name != cls:
                continue
            required = {}
            for k, v in spec.items():
                v = state.checkpoints if v == "CKPT" else v
                required[k] = [list(v)] if isinstance(v, tuple) and isinstance(v[0], str) and v[0] not in (
                    "INT", "FLOAT") else [v[0], {"min": v[1], "max": v[2]}] if isinstance(v, tuple) else [v]
            info[name] = {"input": {"required": required}, "output": list(outs), "name": name,
                          "output_node": name in OUTPUT_NODES}
        return JSONResponse(info)

    async def system_stats(request: Request) -> Response:
        return JSONResponse({"system": {"os": "posix", "comfyui_version": "0.3.fake", "python_version": "3"},
                             "devices": [{"name": "fake", "type": "cpu", "vram_total": 0, "vram_free": 0}]})

    async def ws(websocket: WebSocket) -> None:
        client_id = websocket.query_params.get("clientId") or uuid.uuid4().hex
        log.add("WS", websocket.url.path, dict(websocket.headers), {"clientId": client_id})
        await websocket.accept()
        q: asyncio.Queue = asyncio.Queue()
        state.sockets.setdefault(client_id, []).append(q)
        receiver = asyncio.ensure_future(websocket.receive())
        getter: asyncio.Future | None = None
        try:
            await websocket.send_text(json.dumps({"type": "status", "data": {
                "status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}}))
            while True:
                getter = asyncio.ensure_future(q.get())
                done, _ = await asyncio.wait({receiver, getter}, return_when=asyncio.FIRST_COMPLETED)
                if receiver in done:
                    if receiver.result().get("type") == "websocket.disconnect":
                        return
                    receiver = asyncio.ensure_future(websocket.receive())
                if getter in done:
                    frame = getter.result()
                    getter = None
                    if isinstance(frame, bytes):
                        await websocket.send_bytes(frame)
                    else:
                        await websocket.send_text(json.dumps(frame))
                        if state.ws_close_early and frame.get("type") == "execution_start":
                            await websocket.close(code=1001)
                            return
        except Exception:  # the client went away mid-send
            return
        finally:
            queues = state.sockets.get(client_id, [])
            if q in queues:
                queues.remove(q)
            for task in (receiver, getter):
                if task is not None and not task.done():
                    task.cancel()

    routes: list[BaseRoute] = []
    for prefix in ("", "/api"):
        routes += [
            Route(f"{prefix}/prompt", prompt, methods=["POST"]),
            Route(f"{prefix}/upload/image", upload, methods=["POST"]),
            Route(f"{prefix}/history", history, methods=["GET"]),
            Route(f"{prefix}/history/{{prompt_id}}", history, methods=["GET"]),
            Route(f"{prefix}/view", view, methods=["GET"]),
            Route(f"{prefix}/queue", queue, methods=["GET", "POST"]),
            Route(f"{prefix}/interrupt", interrupt, methods=["POST"]),
            Route(f"{prefix}/object_info", object_info, methods=["GET"]),
            Route(f"{prefix}/object_info/{{node_class}}", object_info, methods=["GET"]),
            Route(f"{prefix}/system_stats", system_stats, methods=["GET"]),
            WebSocketRoute(f"{prefix}/ws", ws),
        ]
    app = Starlette(routes=routes)
    app.state.requests = log
    app.state.comfy = state
    return app
