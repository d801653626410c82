"""ComfyUI API-format graphs: the built-in ones, reading a user's workflow, its {{placeholders}} and filling them."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image

from agent.backends.errors import BadRequest

OUTPUT_CLASSES = ("SaveImage", "PreviewImage")
"""Node types that put images into a prompt's outputs."""

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+(?:_\d+)?)\s*\}\}")
PLACEHOLDER_TYPES: dict[str, type] = {
    "prompt": str, "negative": str, "instruction": str, "seed": int, "width": int, "height": int,
    "steps": int, "cfg": float, "denoise": float, "sampler": str, "scheduler": str, "checkpoint": str,
    "base_image": str, "mask": str,
}
REFERENCE = re.compile(r"reference_(\d+)")
EDIT_ONLY = ("base_image", "mask", "instruction")
"""Placeholders only an edit can fill: a generation workflow must not use them."""


class WorkflowError(BadRequest):
    """The workflow file cannot be used (not API format, no output node, missing placeholder value)."""


def builtin_workflow(name: str) -> dict[str, Any]:
    """One of the packaged graphs: txt2img, img2img or inpaint."""
    text = resources.files("agent.backends").joinpath(f"workflows/{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


def load_workflow(path: str | Path) -> dict[str, Any]:
    """Read a user's API-format workflow and check it has nodes and an image output node."""
    p = Path(path).expanduser()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowError(f"workflow file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise WorkflowError(f"cannot read workflow {p}: {e}") from None
    except json.JSONDecodeError as e:
        raise WorkflowError(f"workflow {p} is not valid JSON: {e}") from None
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict):
        data = data["prompt"]
    if isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data:
        raise WorkflowError(f"workflow {p} is in ComfyUI's UI format; export it with 'Save (API Format)' "
                            "(enable the dev mode options in older versions)")
    if not isinstance(data, dict) or not data or not all(
            isinstance(n, dict) and isinstance(n.get("class_type"), str) for n in data.values()):
        raise WorkflowError(f"workflow {p} is not an API-format graph ({{node id: {{class_type, inputs}}}})")
    check_workflow(data, str(p))
    return data


def check_workflow(graph: dict[str, Any], label: str) -> None:
    """A graph must save or preview an image, and its placeholders must be ones we can fill."""
    if not any(n.get("class_type") in OUTPUT_CLASSES for n in graph.values()):
        raise WorkflowError(f"workflow {label} has no SaveImage or PreviewImage node, so it produces no image")
    for name, where in placeholders(graph).items():
        if name not in PLACEHOLDER_TYPES and not REFERENCE.fullmatch(name):
            known = ", ".join(f"{{{{{k}}}}}" for k in [*PLACEHOLDER_TYPES, "reference_1"])
            raise WorkflowError(f"workflow {label}: unknown placeholder {{{{{name}}}}} at {where[0]}; known: {known}")


def check_role(graph: dict[str, Any], label: str, *, edit: bool) -> None:
    """Every placeholder of a workflow must be one its requests can fill: a generation workflow (`workflow`)
    takes no {{base_image}}, {{mask}} or {{instruction}}; an edit workflow (`edit_workflow`) needs {{base_image}}."""
    used = placeholders(graph)
    if edit:
        if "base_image" not in used:
            raise WorkflowError(f"workflow {label} has no {{{{base_image}}}} placeholder, so it cannot edit an image "
                                "(load it with LoadImage; {{mask}} is the uploaded mask, read with LoadImage's MASK "
                                "output or LoadImageMask channel alpha)")
        return
    for name in EDIT_ONLY:
        if name in used:
            raise WorkflowError(f"workflow {label} uses {{{{{name}}}}} at {used[name][0]}, which only an edit can "
                                "fill; generation workflows take {{prompt}}, {{seed}}, {{reference_N}}, ...: pass "
                                "the edit graph as --backend-option edit_workflow=FILE")


def comfy_mask(mask: Image.Image) -> Image.Image:
    """pixloop's mask ("L", 255 = may change) as ComfyUI's mask editor saves one: RGBA, alpha 0 where the image
    may change. /upload/mask puts this alpha on the uploaded base image; LoadImage's MASK output is 1 - alpha."""
    rgba = Image.new("RGBA", mask.size, (0, 0, 0, 255))
    rgba.putalpha(mask.convert("L").point(lambda v: 255 - v))
    return rgba


def placeholders(graph: dict[str, Any]) -> dict[str, list[str]]:
    """Placeholder name -> where it is used ('node 6 (CLIPTextEncode) input text')."""
    found: dict[str, list[str]] = {}

    def walk(value: Any, where: str) -> None:
        if isinstance(value, str):
            for m in PLACEHOLDER.finditer(value):
                found.setdefault(m.group(1), []).append(where)
        elif isinstance(value, list):
            for v in value:
                walk(v, where)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}")

    for node_id, node in graph.items():
        for key, value in (node.get("inputs") or {}).items():
            walk(value, f"node {node_id} ({node.get('class_type')}) input {key}")
    return found


def reference_slots(graph: dict[str, Any]) -> int:
    """How many reference images a workflow takes: the highest N of its {{reference_N}} placeholders."""
    return max((int(m.group(1)) for name in placeholders(graph) if (m := REFERENCE.fullmatch(name))), default=0)


def substitute(graph: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of the graph with every placeholder filled; a whole-value placeholder takes the value's type."""
    missing: dict[str, str] = {}

    def fill(value: Any, where: str) -> Any:
        if isinstance(value, str):
            whole = PLACEHOLDER.fullmatch(value.strip())
            if whole:
                name = whole.group(1)
                if values.get(name) is None:
                    missing.setdefault(name, where)
                    return value
                return _typed(name, values[name])
            return PLACEHOLDER.sub(lambda m: _text(m.group(1), values, missing, where), value)
        if isinstance(value, list):
            return [fill(v, where) for v in value]
        if isinstance(value, dict):
            return {k: fill(v, f"{where}.{k}") for k, v in value.items()}
        return value

    out = copy.deepcopy(graph)
    for node_id, node in out.items():
        inputs = node.get("inputs") or {}
        for key in list(inputs):
            inputs[key] = fill(inputs[key], f"node {node_id} ({node.get('class_type')}) input {key}")
    if missing:
        parts = [f"{{{{{name}}}}} (used at {where}): {_why_missing(name)}" for name, where in missing.items()]
        raise WorkflowError("workflow placeholders without a value: " + "; ".join(parts))
    return out


def _typed(name: str, value: Any) -> Any:
    kind = PLACEHOLDER_TYPES.get(name, str)
    return int(value) if kind is int else float(value) if kind is float else str(value)


def _text(name: str, values: dict[str, Any], missing: dict[str, str], where: str) -> str:
    if values.get(name) is None:
        missing.setdefault(name, where)
        return ""
    return str(values[name])


def _why_missing(name: str) -> str:
    ref = REFERENCE.fullmatch(name)
    if ref:
        return f"the request has fewer than {ref.group(1)} reference image(s)"
    return {"base_image": "the request is not an edit (no base image)", "mask": "the request has no mask",
            "instruction": "the request has no edit instruction"}.get(name, "no value for it")


def pick_output(graph: dict[str, Any], outputs: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The first image of the first SaveImage node, else of the last output node that has images."""
    def first_image(node_id: str) -> dict[str, Any] | None:
        out = outputs.get(node_id)
        images = out.get("images") if isinstance(out, dict) else None
        for img in images or []:
            if isinstance(img, dict) and img.get("filename"):
                return img
        return None

    for node_id, node in graph.items():
        if isinstance(node, dict) and node.get("class_type") == "SaveImage":
            img = first_image(str(node_id))
            if img is not None:
                return str(node_id), img
    for node_id in reversed(list(outputs)):
        img = first_image(str(node_id))
        if img is not None:
            return str(node_id), img
    return None


__all__ = ["EDIT_ONLY", "OUTPUT_CLASSES", "PLACEHOLDER", "PLACEHOLDER_TYPES", "REFERENCE", "WorkflowError",
           "builtin_workflow", "check_role", "check_workflow", "comfy_mask", "load_workflow", "pick_output",
           "placeholders", "reference_slots", "substitute"]
