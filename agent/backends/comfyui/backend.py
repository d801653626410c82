"""The ComfyUI backend class and its options: plan the graph for a request, upload its images, queue it,
wait for it (websocket, else polling /history) and fetch the image it saved."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from PIL import Image
from pydantic import Field

from agent.backends.base import Capabilities, GenerationRequest, GenerationResult, parse_options
from agent.backends.comfyui.protocol import (
    Progress,
    close_quietly,
    comfyui_classifier,
    execution_error_message,
    explain_prompt_error,
)
from agent.backends.comfyui.workflow import (
    builtin_workflow,
    check_role,
    comfy_mask,
    load_workflow,
    pick_output,
    placeholders,
    reference_slots,
    substitute,
)
from agent.backends.errors import VARIANTS, BackendTimeout, BadRequest, MalformedResponse, NoImageReturned
from agent.backends.sd import StableDiffusionOptions, decode_output, max_side_sizes, open_ref, png_bytes, sd_inputs
from agent.models import ASPECT_RATIOS, ImageRef
from agent.models.errors import BackendError, BackendOptionError
from agent.runtime.http import HttpClient, current_deadline

log = logging.getLogger("pixloop.comfyui")

DEFAULT_BASE_URL = "http://127.0.0.1:8188"
DEFAULT_CHECKPOINT = "sd_xl_base_1.0.safetensors"
WS_IDLE_CHECK = 5.0
"""Seconds of websocket silence after which /history is asked directly (a missed event must not hang us)."""


class ComfyUIOptions(StableDiffusionOptions):
    """The comfyui backend's `--backend-option`s: the shared sampling options (checkpoint, steps, cfg, denoise,
    reference_denoise, max_side, timeout for the whole wait) and HTTP settings, plus these."""

    workflow: str | None = Field(None, description="an API-format workflow file with {{placeholders}} for "
                                                   "generation (no {{base_image}}/{{mask}}; default: built-in "
                                                   "txt2img, img2img from reference 1)")
    edit_workflow: str | None = Field(None, description="an API-format workflow file for edits, with {{base_image}} "
                                                        "and optionally {{mask}} (default: built-in img2img/inpaint "
                                                        "when workflow is not set)")
    sampler: str = Field("euler", description="KSampler sampler_name")
    scheduler: str = Field("normal", description="KSampler scheduler")
    reference_mode: Literal["img2img", "ignore"] = Field(
        "img2img", description="without a base image, start the built-in graphs from reference 1, or ignore it")
    poll_interval: float = Field(1.0, gt=0, description="seconds between /history polls")
    websocket: bool = Field(True, description="follow progress on /ws; false polls /history only")
    read_timeout: float = Field(60.0, gt=0, description="seconds to wait for one HTTP answer")
    max_concurrency: int = Field(2, ge=1, description="requests in flight at once")


class ComfyUIBackend:
    """Runs a workflow on a ComfyUI server (local diffusion; any size in multiples of 8; costs nothing)."""

    name = "comfyui"

    def __init__(self, base_url: str | None = None, options: ComfyUIOptions | Mapping[str, Any] | None = None,
                 model: str | None = None, transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.options = o = (options if isinstance(options, ComfyUIOptions)
                            else parse_options(ComfyUIOptions, options, self.name))
        self.checkpoint = o.checkpoint or model or DEFAULT_CHECKPOINT
        self.steps, self.cfg, self.sampler, self.scheduler = o.steps, o.cfg, o.sampler, o.scheduler
        self.denoise, self.reference_denoise, self.reference_mode = o.denoise, o.reference_denoise, o.reference_mode
        self.max_side, self.timeout = o.max_side, o.timeout
        self.poll_interval, self.use_ws = o.poll_interval, o.websocket
        self.workflow, self.workflow_path = self._user_workflow("workflow", o.workflow)
        self.edit_workflow, self.edit_workflow_path = self._user_workflow("edit_workflow", o.edit_workflow)
        self.http = HttpClient(self.name, self.base_url, settings=o.http_settings(), classifier=comfyui_classifier,
                               transport=transport, family=VARIANTS)
        self.capabilities = self._capabilities()

    @classmethod
    def from_config(cls, config: Any) -> ComfyUIBackend:
        """Build from a PixloopConfig: base_url, model (the checkpoint) and options."""
        return cls(getattr(config, "base_url", None), getattr(config, "options", None),
                   getattr(config, "model", None))

    @staticmethod
    def _user_workflow(option: str, path: str | None) -> tuple[dict[str, Any] | None, str | None]:
        """Load and check the workflow file of an option; any problem is a BackendOptionError (bad input, exit 2)
        raised here, before a request is sent."""
        if not path:
            return None, None
        try:
            graph = load_workflow(path)
            check_role(graph, path, edit=option == "edit_workflow")
        except BackendError as e:
            raise BackendOptionError(f"comfyui backend: {option}: {e}") from None
        return graph, path

    def _edits(self) -> tuple[bool, bool, int]:
        """Whether edits can run, whether they apply a mask, and how many references they take."""
        if self.edit_workflow is not None:
            used = placeholders(self.edit_workflow)
            return True, "mask" in used, reference_slots(self.edit_workflow)
        if self.workflow is None:
            return True, True, 0  # the built-in img2img and inpaint graphs
        return False, False, 0  # a user's generation workflow, and no edit workflow for its checkpoint

    def _capabilities(self) -> Capabilities:
        edit, mask, edit_refs = self._edits()
        if self.workflow is not None:
            refs = reference_slots(self.workflow)
        else:
            refs = 1 if self.reference_mode == "img2img" else 0
        return Capabilities(edit=edit, mask=mask, max_references=max(refs, edit_refs),
                            aspect_ratios=list(ASPECT_RATIOS), sizes=max_side_sizes(self.max_side),
                            native_long_side=min(1024, self.max_side), deterministic=False, cost_per_image=0.0)

    # -- request building --

    async def _upload(self, data: bytes, filename: str, route: str = "/upload/image",
                      original: tuple[str, str] | None = None) -> tuple[str, str]:
        """POST /upload/image (or /upload/mask, with the `original` (name, subfolder) upload whose pixels the
        mask's alpha is put on); returns the (name, subfolder) the server gave the file: use it, not ours."""
        fields = {"type": "input", "overwrite": "true"}
        if original is not None:
            fields["original_ref"] = json.dumps({"filename": original[0], "subfolder": original[1], "type": "input"})
        resp = await self.http.request("POST", route, files={"image": (filename, data, "image/png")}, data=fields)
        body = self.http.json(resp)
        if not isinstance(body, dict) or not body.get("name"):
            raise MalformedResponse(f"comfyui: {route} answered without a name: {str(body)[:200]}")
        return str(body["name"]), str(body.get("subfolder") or "").strip("/")

    @staticmethod
    def _graph_name(name: str, subfolder: str) -> str:
        """How LoadImage names an uploaded input file."""
        return f"{subfolder}/{name}" if subfolder else name

    def _prepare_images(self, request: GenerationRequest, store: Any, size: tuple[int, int], refs: int,
                        init_from_reference: bool, mask: bool) -> dict[str, tuple[bytes, str]]:
        """PNG bytes and upload names per placeholder; base image and mask are resized to the render size.

        The mask goes up the way ComfyUI's mask editor sends it, through /upload/mask: an RGBA PNG whose alpha
        is 0 where the image may change (pixloop's white); LoadImage then gives MASK = 1 - alpha = pixloop's mask,
        as does LoadImageMask with channel "alpha". `mask` False leaves it out (the graph takes none); an edit
        without a mask whose graph takes one gets a mask that lets everything change."""
        from agent.backends.compose import cover_fit

        w, h = size
        out: dict[str, tuple[bytes, str]] = {}
        if request.base_image is not None:
            img = open_ref(store, request.base_image, "base image").convert("RGB")
            if img.size != size:
                img = img.resize(size, Image.Resampling.LANCZOS)
            out["base_image"] = (png_bytes(img), f"pixloop-{request.base_image.sha256[:16]}-{w}x{h}.png")
            if mask:
                if request.mask is not None:
                    m = open_ref(store, request.mask, "mask").convert("L")
                    if m.size != size:
                        m = m.resize(size, Image.Resampling.NEAREST)
                    key = request.mask.sha256[:16]
                else:
                    m, key = Image.new("L", size, 255), "all"
                # the server stores the base image's pixels under this name: both hashes keep it unique
                out["mask"] = (png_bytes(comfy_mask(m)),
                               f"pixloop-mask-{request.base_image.sha256[:16]}-{key}-{w}x{h}.png")
        elif init_from_reference and request.references:
            ref = request.references[0]
            img = cover_fit(open_ref(store, ref, "reference image").convert("RGB"), w, h)
            out["base_image"] = (png_bytes(img), f"pixloop-ref-{ref.sha256[:16]}-{w}x{h}.png")
        for i, ref in enumerate(request.references[:refs], start=1):
            suffix = Path(ref.path).suffix.lower() or ".png"
            out[f"reference_{i}"] = (open_store_bytes(store, ref), f"pixloop-ref-{ref.sha256[:16]}{suffix}")
        return out

    def _plan_graph(self, request: GenerationRequest) -> tuple[dict[str, Any], str, dict[str, Any], list[str]]:
        """The graph template, its label, the placeholder values that need no upload, and notes."""
        plan = request.plan
        w, h, notes, prompt = sd_inputs(request, self.max_side)
        values: dict[str, Any] = {
            "prompt": prompt, "negative": ", ".join(plan.negative),
            "instruction": request.instruction or (request.prompt if request.base_image is not None else None),
            "seed": request.seed, "width": w, "height": h, "steps": self.steps, "cfg": self.cfg,
            "sampler": self.sampler, "scheduler": self.scheduler, "checkpoint": self.checkpoint,
            "denoise": self.denoise,
        }
        if request.base_image is not None:
            return self._edit_graph(request, values, notes)
        if request.mask is not None:
            raise BadRequest("comfyui: a mask needs a base image to edit")
        if self.workflow is not None:
            slots = reference_slots(self.workflow)
            if len(request.references) > slots:
                notes.append(f"{len(request.references) - slots} reference image(s) ignored: "
                             f"the workflow takes {slots}")
            return self.workflow, str(self.workflow_path), values, notes
        if request.references and self.reference_mode == "img2img":
            name = "img2img"
            values["denoise"] = self.reference_denoise
            notes.append(f"reference image 1 used as the img2img start (denoise {self.reference_denoise}); "
                         "Stable Diffusion has no multi-image fusion")
            if len(request.references) > 1:
                notes.append(f"{len(request.references) - 1} further reference image(s) ignored")
        else:
            name = "txt2img"
            if request.references:
                notes.append(f"{len(request.references)} reference image(s) ignored (reference_mode=ignore)")
        return builtin_workflow(name), f"builtin:{name}", values, notes

    def _edit_graph(self, request: GenerationRequest, values: dict[str, Any],
                    notes: list[str]) -> tuple[dict[str, Any], str, dict[str, Any], list[str]]:
        """The graph for an edit: the edit_workflow, else (no user workflow at all) the built-in img2img or
        inpaint graph; a user's generation workflow alone cannot edit."""
        if self.edit_workflow is not None:
            used = placeholders(self.edit_workflow)
            if request.mask is not None and "mask" not in used:
                notes.append(f"mask not applied: edit_workflow {self.edit_workflow_path} has no {{{{mask}}}} "
                             "placeholder, so the whole image may change (the preservation critic checks it)")
            elif request.mask is None and "mask" in used:
                notes.append("no mask given: the edit_workflow's {{mask}} lets the whole image change")
            slots = reference_slots(self.edit_workflow)
            if len(request.references) > slots:
                notes.append(f"{len(request.references) - slots} reference image(s) ignored: "
                             f"the edit_workflow takes {slots}")
            return self.edit_workflow, str(self.edit_workflow_path), values, notes
        if self.workflow is not None:
            raise BadRequest(f"comfyui: this request edits an image, but workflow {self.workflow_path} is for "
                             "generation; set --backend-option edit_workflow=FILE (an API-format graph with "
                             "{{base_image}} and {{mask}})")
        name = "inpaint" if request.mask is not None else "img2img"
        if request.references:
            notes.append(f"{len(request.references)} reference image(s) ignored: the built-in edit graph "
                         "takes only the base image")
        return builtin_workflow(name), f"builtin:{name}", values, notes

    # -- running --

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """Upload inputs, queue the graph, wait for it (websocket, else polling) and fetch the image."""
        before = self.http.usage.snapshot()
        t0 = time.perf_counter()
        template, label, values, notes = self._plan_graph(request)
        size = (values["width"], values["height"])
        used = placeholders(template)
        refs = reference_slots(template) if not label.startswith("builtin:") else 0
        from_reference = label == "builtin:img2img" and request.base_image is None
        images = await asyncio.to_thread(self._prepare_images, request, store, size, refs, from_reference,
                                         "mask" in used)
        uploaded: dict[str, tuple[str, str]] = {}
        for key, (data, filename) in images.items():
            if key == "mask":
                uploaded[key] = await self._upload(data, filename, "/upload/mask", original=uploaded["base_image"])
            else:
                uploaded[key] = await self._upload(data, filename)
            values[key] = self._graph_name(*uploaded[key])
        graph = substitute(template, values)

        client_id = uuid.uuid4().hex
        ws = await self._open_ws(client_id) if self.use_ws else None
        progress = Progress()
        try:
            prompt_id = await self._submit(graph, client_id)
            entry, via = await self._wait(ws, prompt_id, progress)
        finally:
            if ws is not None:
                await close_quietly(ws)
        outputs = entry.get("outputs") or progress.outputs
        if not isinstance(outputs, dict):
            raise MalformedResponse(f"comfyui: history outputs for {prompt_id} are not an object")
        picked = pick_output(graph, outputs)
        if picked is None:
            raise NoImageReturned(f"comfyui: prompt {prompt_id} finished without an image (no SaveImage/"
                                  f"PreviewImage output had images; outputs from nodes {sorted(outputs) or 'none'})")
        node_id, info = picked
        image = await self._view(info)
        if image.size != size:
            notes.append(f"the server returned {image.width}x{image.height}, not the requested {size[0]}x{size[1]}")
        after = self.http.usage.snapshot()
        meta: dict[str, Any] = {
            "backend": self.name, "prompt_id": prompt_id, "workflow": label, "seed": request.seed,
            "size": list(size), "checkpoint": values["checkpoint"] if "checkpoint" in used else None,
            "steps": self.steps, "cfg": self.cfg, "sampler": self.sampler, "scheduler": self.scheduler,
            "output": {"node": node_id, "filename": info.get("filename"), "type": info.get("type", "output")},
            "completion": via, "previews": progress.previews, "seconds": round(time.perf_counter() - t0, 3),
            "usage": {k: after[k] - before[k] for k in ("requests", "retries", "failures")},
        }
        if request.base_image is not None:
            meta["masked"] = "mask" in used and request.mask is not None
        if label != "builtin:txt2img" and "denoise" in used:
            meta["denoise"] = values["denoise"]
        if notes:
            meta["notes"] = notes
        return GenerationResult(image=image, cost=0.0, meta=meta)

    async def _submit(self, graph: dict[str, Any], client_id: str) -> str:
        resp = await self.http.request("POST", "/prompt", json={"prompt": graph, "client_id": client_id})
        body = self.http.json(resp)
        if not isinstance(body, dict) or not body.get("prompt_id"):
            raise MalformedResponse(f"comfyui: /prompt answered without a prompt_id: {str(body)[:200]}")
        if body.get("node_errors"):
            raise BadRequest(explain_prompt_error({"error": "prompt accepted with node errors",
                                                   "node_errors": body["node_errors"]}))
        return str(body["prompt_id"])

    def _ws_url(self, client_id: str) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", f"clientId={client_id}", ""))

    async def _open_ws(self, client_id: str) -> Any | None:
        """Connect the progress websocket before queueing, so no event is missed; None if it cannot."""
        from websockets.asyncio.client import connect

        scope = current_deadline()
        open_timeout = self.http.settings.connect_timeout
        if scope is not None:
            open_timeout = max(0.001, min(open_timeout, scope.remaining()))
        try:
            return await connect(self._ws_url(client_id), open_timeout=open_timeout, max_size=None, close_timeout=1)
        except Exception as e:  # any handshake/network failure means: poll instead
            log.info("comfyui websocket unavailable (%s: %s); polling /history instead", type(e).__name__, e)
            return None

    def _timed_out(self, prompt_id: str, deadline: float) -> BackendTimeout:
        """The wait until `deadline` (loop time) ran out: the `timeout` option's, or the caller's deadline (the run's
        time budget) when that was the earlier one."""
        scope = current_deadline()
        if scope is not None and asyncio.get_running_loop().time() + scope.remaining() <= deadline + 1e-3:
            scope.hit = True
            return BackendTimeout(f"comfyui: prompt {prompt_id} did not finish before the deadline ({scope.label})")
        return BackendTimeout(f"comfyui: prompt {prompt_id} did not finish within {self.timeout:g} s "
                              "(raise --backend-option timeout=SECONDS)")

    async def _wait(self, ws: Any | None, prompt_id: str, progress: Progress) -> tuple[dict[str, Any], str]:
        """The prompt's history entry once it finished, and how we learnt it ('websocket' or 'polling').

        Waits at most the `timeout` option, and never past the caller's deadline (`agent.runtime.http.deadline`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        scope = current_deadline()
        if scope is not None:
            deadline = min(deadline, loop.time() + scope.remaining())
        if ws is not None:
            entry = await self._listen(ws, prompt_id, progress, deadline)
            if entry is not None:
                return entry, "websocket"
        while True:
            entry = await self._history(prompt_id)
            if entry is not None:
                return entry, "websocket" if progress.finished else "polling"
            if loop.time() + self.poll_interval > deadline:
                raise self._timed_out(prompt_id, deadline)
            await asyncio.sleep(self.poll_interval)

    async def _listen(self, ws: Any, prompt_id: str, progress: Progress, deadline: float) -> dict[str, Any] | None:
        """Follow websocket events to the end of our prompt; None if the socket drops first (then we poll)."""
        from websockets.exceptions import ConnectionClosed

        loop = asyncio.get_running_loop()
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._timed_out(prompt_id, deadline)
            try:
                message = await asyncio.wait_for(ws.recv(), timeout=min(remaining, WS_IDLE_CHECK))
            except TimeoutError:
                entry = await self._history(prompt_id)
                if entry is not None:
                    return entry
                continue
            except (ConnectionClosed, OSError) as e:
                log.info("comfyui websocket closed before prompt %s finished (%s); polling /history", prompt_id, e)
                return None
            if isinstance(message, bytes):
                progress.previews += 1
                continue
            if self._on_event(message, prompt_id, progress):
                progress.finished = True
                entry = await self._history(prompt_id)
                if entry is None and progress.outputs:
                    return {"outputs": progress.outputs}
                return entry

    def _on_event(self, message: str, prompt_id: str, progress: Progress) -> bool:
        """Handle one text frame; True when our prompt has finished. Raises on execution errors."""
        try:
            event = json.loads(message)
        except ValueError:
            return False
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            return False
        kind, data = event.get("type"), event["data"]
        if data.get("prompt_id") not in (None, prompt_id):
            return False
        if kind == "execution_error":
            raise BackendError(execution_error_message(data))
        if kind == "execution_interrupted":
            raise BackendError(f"comfyui: prompt {prompt_id} was interrupted on the server "
                               f"(node {data.get('node_id', '?')})")
        if kind == "executed" and isinstance(data.get("output"), dict):
            progress.outputs[str(data.get("node"))] = data["output"]
        elif kind == "progress":
            progress.steps = (int(data.get("value", 0)), int(data.get("max", 0)))
            log.debug("comfyui %s node %s: step %s/%s", prompt_id, data.get("node"), *progress.steps)
        elif kind == "execution_success":
            return True
        elif kind == "executing" and data.get("node") is None:
            return True
        return False

    async def _history(self, prompt_id: str) -> dict[str, Any] | None:
        """The finished prompt's history entry, None while queued or running; raises on execution errors."""
        resp = await self.http.request("GET", f"/history/{prompt_id}")
        body = self.http.json(resp)
        if not isinstance(body, dict):
            raise MalformedResponse(f"comfyui: /history/{prompt_id} is not an object: {str(body)[:120]}")
        entry = body.get(prompt_id)
        if entry is None:
            return None
        if not isinstance(entry, dict):
            raise MalformedResponse(f"comfyui: history entry for {prompt_id} is not an object")
        status = entry.get("status")
        if not isinstance(status, dict):
            status = {}
        if status.get("status_str") == "error":
            messages = [m for m in status.get("messages") or [] if isinstance(m, list) and len(m) == 2]
            for kind, data in messages:
                if kind == "execution_error" and isinstance(data, dict):
                    raise BackendError(execution_error_message(data))
            if any(kind == "execution_interrupted" for kind, _ in messages):
                raise BackendError(f"comfyui: prompt {prompt_id} was interrupted on the server")
            raise BackendError(f"comfyui: prompt {prompt_id} failed ({[k for k, _ in messages]})")
        return entry

    async def _view(self, info: dict[str, Any]) -> Image.Image:
        params = {"filename": str(info.get("filename")), "subfolder": str(info.get("subfolder") or ""),
                  "type": str(info.get("type") or "output")}
        resp = await self.http.request("GET", "/view", params=params)
        return await asyncio.to_thread(decode_output, resp.content, f"comfyui output {params['filename']}")


def open_store_bytes(store: Any, ref: ImageRef) -> bytes:
    """A stored image's file bytes, as they are (uploads keep their format)."""
    if store is None:
        raise BackendError("reference images given but no artifact store to read them")
    try:
        return store.read_bytes(ref)
    except OSError as e:
        raise BackendError(f"cannot read reference image {ref.path}: {e}") from e


__all__ = ["DEFAULT_BASE_URL", "DEFAULT_CHECKPOINT", "ComfyUIBackend", "ComfyUIOptions", "open_store_bytes"]
