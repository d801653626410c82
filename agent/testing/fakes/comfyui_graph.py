"""The fake ComfyUI's graph side: its node table, prompt validation with ComfyUI's error bodies, and the
interpreter that "executes" an API-format graph with fake_render (no web-server dependency)."""

from __future__ import annotations

import io
from typing import Any, Protocol, TypeGuard

from PIL import Image

from agent.testing.fakes.base import fake_render
from agent.testing.fakes.editing import img2img, masked_edit

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
    "ReferenceLatent": ({"conditioning": "CONDITIONING", "latent": "LATENT"}, ("CONDITIONING",)),
    "LoadImage": ({"image": "UPLOAD"}, ("IMAGE", "MASK")),
    "LoadImageMask": ({"image": "UPLOAD", "channel": ("alpha", "red", "green", "blue")}, ("MASK",)),
    "SaveImage": ({"images": "IMAGE", "filename_prefix": "STRING"}, ()),
    "PreviewImage": ({"images": "IMAGE"}, ()),
}
OUTPUT_NODES = ("SaveImage", "PreviewImage")


class GraphInputs(Protocol):
    """What validation needs from the server: the installed checkpoints and which uploads exist."""

    checkpoints: tuple[str, ...]

    def uploaded(self, name: str) -> bool: ...


def comfy_error(kind: str, message: str, details: str = "", **extra: Any) -> dict[str, Any]:
    """An error object as ComfyUI sends it (type, message, details, extra_info)."""
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def is_link(value: Any) -> TypeGuard[list[Any]]:
    """Whether an input value is a link [node id, output index] to another node."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and isinstance(value[1], int))


# --- validation ---------------------------------------------------------------------------------


def validate_prompt(graph: Any, state: GraphInputs) -> tuple[dict[str, Any] | None, int]:
    """The 400 body ComfyUI would send for this prompt, or (None, 200)."""
    if not isinstance(graph, dict) or not graph:
        return {"error": comfy_error("no_prompt", "No prompt provided"), "node_errors": {}}, 400
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return {"error": comfy_error("invalid_prompt", "Cannot execute because a node is missing the class_type "
                                         "property.", f"Node ID '#{node_id}'"), "node_errors": {}}, 400
        if node["class_type"] not in NODES:
            return {"error": comfy_error("invalid_prompt", f"Cannot execute because node {node['class_type']} does not "
                                         "exist.", f"Node ID '#{node_id}'"), "node_errors": {}}, 400
    outputs = [nid for nid, n in graph.items() if n["class_type"] in OUTPUT_NODES]
    if not outputs:
        return {"error": comfy_error("prompt_no_outputs", "Prompt has no outputs"), "node_errors": {}}, 400
    node_errors: dict[str, Any] = {}
    for node_id, node in graph.items():
        errors = _node_errors(graph, node, state)
        if errors:
            node_errors[node_id] = {"errors": errors, "class_type": node["class_type"],
                                    "dependent_outputs": [o for o in outputs if node_id in _ancestors(graph, o)]}
    if node_errors:
        return {"error": comfy_error("prompt_outputs_failed_validation", "Prompt outputs failed validation"),
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
        stack.extend(str(v[0]) for v in (graph[nid].get("inputs") or {}).values() if is_link(v))
    return seen


def _node_errors(graph: dict[str, Any], node: dict[str, Any], state: GraphInputs) -> list[dict[str, Any]]:
    spec, _ = NODES[node["class_type"]]
    inputs = node.get("inputs") or {}
    errors = []
    for name, kind in spec.items():
        if name not in inputs:
            errors.append(comfy_error("required_input_missing", "Required input is missing", name, input_name=name))
            continue
        value = inputs[name]
        if isinstance(kind, str) and kind in LINK_TYPES:
            if not is_link(value):
                errors.append(comfy_error("bad_linked_input",
                                          "Bad linked input, must be a length-2 list of [string, int]",
                                          f"{name}, {value!r}", input_name=name))
                continue
            source = graph.get(str(value[0]))
            if source is None:
                errors.append(comfy_error("bad_linked_input", "Linked node does not exist",
                                          f"{name}: node {value[0]!r} is not in the prompt", input_name=name))
                continue
            outs = NODES[source["class_type"]][1]
            got = outs[value[1]] if 0 <= value[1] < len(outs) else None
            if got != kind:
                errors.append(comfy_error("return_type_mismatch", "Return type mismatch between linked nodes",
                                          f"{name}, received_type({got}) mismatch input_type({kind})", input_name=name))
            continue
        if is_link(value):
            continue  # a primitive fed by another node: accepted as ComfyUI does
        errors.extend(_value_errors(node["class_type"], name, kind, value, state))
    return errors


def _value_errors(class_type: str, name: str, kind: Any, value: Any, state: GraphInputs) -> list[dict[str, Any]]:
    if kind == "CKPT":
        kind = state.checkpoints
    if isinstance(kind, tuple) and kind and isinstance(kind[0], str) and kind[0] in ("INT", "FLOAT"):
        number_type, lo, hi = kind
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number_type == "INT":
            ok = ok and float(value).is_integer()
        if not ok:
            return [comfy_error("invalid_input_type", f"Failed to convert an input value to a {number_type} value",
                                f"{name}, {value!r}", input_name=name, received_value=value)]
        if value < lo:
            return [comfy_error("value_smaller_than_min", f"Value {value} smaller than min of {lo}", f"{name}",
                                input_name=name, received_value=value)]
        if value > hi:
            return [comfy_error("value_bigger_than_max", f"Value {value} bigger than max of {hi}", f"{name}",
                                input_name=name, received_value=value)]
        if class_type == "EmptyLatentImage" and name in ("width", "height") and int(value) % 8:
            return [comfy_error("custom_validation_failed", "Value is not a multiple of 8",
                                f"{name}: {value} is not a multiple of 8", input_name=name, received_value=value)]
        return []
    if isinstance(kind, tuple):
        if value not in kind:
            return [comfy_error("value_not_in_list", "Value not in list", f"{name}: {value!r} not in {list(kind)}",
                                input_name=name, input_config=[list(kind)], received_value=value)]
        return []
    if kind == "STRING" and not isinstance(value, str):
        return [comfy_error("invalid_input_type", "Failed to convert an input value to a STRING value",
                            f"{name}, {value!r}", input_name=name, received_value=value)]
    if kind == "UPLOAD" and not (isinstance(value, str) and state.uploaded(value)):
        return [comfy_error("custom_validation_failed", "Custom validation failed for node",
                            f"Invalid image file: {value}", input_name=name, received_value=value)]
    return []


# --- execution ----------------------------------------------------------------------------------


def evaluate_graph(graph: dict[str, Any], files: dict[tuple[str, str, str], bytes], fault: str | None,
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
        return value(str(v[0]), v[1]) if is_link(v) else v

    def run(node_id: str, index: int) -> Any:
        node = graph[node_id]
        kind, inputs = node["class_type"], node.get("inputs") or {}
        if kind == "CheckpointLoaderSimple":
            return inputs.get("ckpt_name")
        if kind == "EmptyLatentImage":
            return {"w": int(inputs["width"]), "h": int(inputs["height"]), "batch": int(inputs.get("batch_size", 1))}
        if kind == "CLIPTextEncode":
            return {"text": str(arg(inputs, "text")), "references": []}
        if kind == "ReferenceLatent":  # the image behind a reference latent conditions the render (edit models)
            cond, latent = arg(inputs, "conditioning"), arg(inputs, "latent")
            ref = latent.get("image")
            return {**cond, "references": cond["references"] + ([ref] if ref is not None else [])}
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
            positive = arg(inputs, "positive")
            return {**arg(inputs, "latent_image"), "text": positive["text"], "references": positive["references"],
                    "seed": int(arg(inputs, "seed")), "denoise": float(arg(inputs, "denoise"))}
        if kind == "VAEDecode":
            return decode(arg(inputs, "samples"))
        raise ValueError(f"{kind} has no outputs to evaluate")

    def decode(latent: dict[str, Any]) -> list[Image.Image]:
        """A sampled latent's images: a noise mask re-renders only the masked pixels of the encoded image, an
        encoded image without one is mixed with the render by denoise, an empty latent is a fresh render."""
        if "text" not in latent:
            return [latent.get("image") or Image.new("RGB", (latent["w"], latent["h"]), "gray")]
        w, h = latent["w"], latent["h"]
        if fault == "wrong_size":
            w, h = max(8, w // 2), max(8, h // 2)
        refs = latent.get("references") or None
        images = []
        for i in range(max(1, min(4, latent.get("batch", 1)))):
            seed = (latent["seed"] + i) % 2**32
            base = latent.get("image")
            if base is None:
                images.append(Image.open(io.BytesIO(fake_render(latent["text"], w, h, seed, references=refs)))
                              .convert("RGB"))
                continue
            base = base.convert("RGB").resize((w, h))
            if latent.get("mask") is not None:
                mask = latent["mask"].convert("L").resize((w, h), Image.Resampling.NEAREST)
                images.append(masked_edit(base, mask, latent["text"], seed, refs, fit="full"))
            else:
                images.append(img2img(base, latent["text"], seed, latent.get("denoise", 1.0), refs))
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
