"""A fake ComfyUI server: validates API-format graphs like ComfyUI, "executes" them with fake_render.

Routes (each also under /api/): POST /prompt, POST /upload/image, POST /upload/mask, GET /history[/{id}],
GET /view, GET /queue, POST /queue, POST /interrupt, GET /object_info[/{class}], GET /system_stats
and the /ws?clientId= websocket (status, execution_start, executing, progress, a binary preview,
executed, execution_success, executing{node: null}).

The graph is validated and interpreted over a small node table (`comfyui_graph`): the positive
CLIPTextEncode text reaching a KSampler is rendered at the EmptyLatentImage size (or the LoadImage
size for img2img, mixed into the loaded image by denoise); with a noise mask only the masked pixels
change (LoadImage's MASK is 1 - alpha, as in ComfyUI, so a mask sent through /upload/mask with the
wrong polarity changes the wrong pixels); images behind a ReferenceLatent are placed in the render.
/upload/mask puts the uploaded image's alpha on the `original_ref` file, as ComfyUI does.

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

from agent.testing.fakes.base import FaultPlan, RequestLog, apply_delay
from agent.testing.fakes.comfyui_graph import (
    DEFAULT_CHECKPOINTS,
    NODES,
    OUTPUT_NODES,
    comfy_error,
    evaluate_graph,
    validate_prompt,
)
from agent.testing.fakes.replies import request_fault_response, reset_connection

RESULT_FAULTS = {"no_image", "safety", "malformed", "truncated", "wrong_size", "quota"}


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
                    evaluate_graph, job.graph, dict(state.files), fault, state.counter)
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
            return JSONResponse({"error": comfy_error("no_prompt", "No prompt provided"), "node_errors": {}}, 400)
        graph = body["prompt"]
        error, status = validate_prompt(graph, state)
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

    def free_name(kind: str, sub: str, filename: str | None, overwrite: bool) -> str:
        """The name an upload is stored under: its own, or "x (1).png" on a clash without overwrite."""
        name = (filename or "image.png").replace("\\", "/").rsplit("/", 1)[-1]
        stem, dot, ext = name.rpartition(".")
        stem, ext = (stem, f".{ext}") if dot else (name, "")
        i = 0
        while (kind, sub, name) in state.files and (not overwrite or state.ignore_overwrite):
            i += 1
            name = f"{stem} ({i}){ext}"
        return name

    async def read_upload(request: Request) -> tuple[dict[str, str], Any, bytes | None]:
        form = await request.form()
        image = form.get("image")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if image is None or isinstance(image, str):
            log.add(request.method, request.url.path, dict(request.headers), fields)
            return fields, None, None
        data = await image.read()
        log.add(request.method, request.url.path, dict(request.headers),
                {**fields, "filename": image.filename, "bytes": len(data)})
        return fields, image, data

    async def upload(request: Request) -> Response:
        fields, image, data = await read_upload(request)
        if image is None or data is None:
            return Response("no image in the upload", status_code=400)
        kind = fields.get("type") or "input"
        sub = (fields.get("subfolder") or "").strip("/")
        name = free_name(kind, sub, image.filename, fields.get("overwrite", "").lower() in ("true", "1"))
        state.files[(kind, sub, name)] = data
        return JSONResponse({"name": name, "subfolder": sub, "type": kind})

    async def upload_mask(request: Request) -> Response:
        """As ComfyUI's /upload/mask: the uploaded image's alpha put on the `original_ref` file's pixels, stored
        under the uploaded name (an original that does not exist stores nothing, as the real server does)."""
        fields, image, data = await read_upload(request)
        if image is None or data is None:
            return Response("no image in the upload", status_code=400)
        try:
            original = json.loads(fields["original_ref"])
            filename = str(original["filename"])
        except (KeyError, TypeError, ValueError):
            return Response("500 Internal Server Error\n\nServer got itself in trouble", status_code=500,
                            media_type="text/plain")
        osub = str(original.get("subfolder") or "").strip("/")
        if not filename or filename.startswith("/") or ".." in filename:
            return Response(status_code=400)
        if ".." in osub:
            return Response(status_code=403)
        kind = fields.get("type") or "input"
        sub = (fields.get("subfolder") or "").strip("/")
        name = free_name(kind, sub, image.filename, fields.get("overwrite", "").lower() in ("true", "1"))
        source = state.files.get((str(original.get("type") or "output"), osub, filename))
        if source is not None:
            try:
                pixels = Image.open(io.BytesIO(source)).convert("RGBA")
                pixels.putalpha(Image.open(io.BytesIO(data)).convert("RGBA").getchannel("A"))
            except (OSError, ValueError):  # an unreadable file, or a mask of another size: PIL raises, 500
                return Response("500 Internal Server Error\n\nServer got itself in trouble", status_code=500,
                                media_type="text/plain")
            buf = io.BytesIO()
            pixels.save(buf, format="PNG")
            state.files[(kind, sub, name)] = buf.getvalue()
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
            return Response(f'{{"{pid}": {{"prompt": [1, "{pid}", {{"3": ', media_type="application/json")
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
            Route(f"{prefix}/upload/mask", upload_mask, methods=["POST"]),
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
