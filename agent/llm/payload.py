"""What goes over the wire to a chat model: images as PNG/JPEG bytes or data URLs, JSON schemas made strict."""

from __future__ import annotations

import base64
import copy
import io
from typing import Any

from PIL import Image

from agent.llm.base import ImageInput
from agent.runtime.images import sniff_mime


def image_payload(image: ImageInput) -> tuple[str, bytes]:
    """(mime, bytes) to send: encoded bytes pass through after a magic-byte check, PIL images become PNG."""
    if isinstance(image, (bytes, bytearray)):
        data = bytes(image)
        mime = sniff_mime(data)
        if mime is None:
            raise ValueError(f"image bytes are not PNG, JPEG, WebP or GIF (start {data[:8]!r})")
        return mime, data
    if isinstance(image, Image.Image):
        im = image if image.mode in ("RGB", "RGBA", "L", "LA") else image.convert(
            "RGBA" if "transparency" in image.info or "A" in image.mode else "RGB")
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return "image/png", buf.getvalue()
    raise TypeError(f"an image must be bytes or a PIL image, not {type(image).__name__}")


def data_url(image: ImageInput) -> str:
    """`data:image/png;base64,...` for an image."""
    mime, data = image_payload(image)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def downscale(image: Image.Image, max_side: int) -> Image.Image:
    """A copy no larger than max_side on its long side (vision models resize anyway; this saves bytes)."""
    if max(image.size) <= max_side:
        return image
    im = image.copy()
    im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return im


_STRICT_DROP = {"default", "title", "examples", "minLength", "maxLength", "$schema"}
"""Keywords OpenAI strict mode rejects or ignores; pydantic still enforces them on the reply."""


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema usable with OpenAI strict structured output (and by vLLM/Ollama/LM Studio).

    $refs are inlined (pydantic puts nested models in $defs), every object gets
    `additionalProperties: false` and lists every property in `required`; a property that was
    optional becomes nullable instead. Keywords strict mode rejects (`default`, `minLength`, ...) are
    dropped; validating the reply with the pydantic model still enforces them. Idempotent.
    """
    defs = {**schema.get("$defs", {}), **schema.get("definitions", {})}

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(n, seen) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                raise ValueError(f"recursive schema at {name!r} cannot be inlined")
            target = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return resolve(target, seen + (name,))
        out = {k: ({name: resolve(sub, seen) for name, sub in v.items()} if k == "properties" and isinstance(v, dict)
                   else resolve(v, seen))
               for k, v in node.items() if k not in _STRICT_DROP and k not in ("$defs", "definitions")}
        if "properties" in out or (out.get("type") == "object" and not isinstance(out.get("additionalProperties"), dict)):
            props = out.setdefault("properties", {})
            required = set(out.get("required", []))
            for key, sub in props.items():
                if key not in required:
                    props[key] = _nullable(sub)
            out["type"] = "object"
            out["required"] = list(props)
            out["additionalProperties"] = False
        return out

    return resolve(copy.deepcopy(schema), ())


def _nullable(sub: dict[str, Any]) -> dict[str, Any]:
    if "enum" in sub and None not in sub["enum"]:
        sub = {**sub, "enum": [*sub["enum"], None]}
    if "anyOf" in sub:
        if not any(s.get("type") == "null" for s in sub["anyOf"]):
            sub = {**sub, "anyOf": [*sub["anyOf"], {"type": "null"}]}
        return sub
    t = sub.get("type")
    if isinstance(t, str) and t != "null":
        return {**sub, "type": [t, "null"]}
    if isinstance(t, list) and "null" not in t:
        return {**sub, "type": [*t, "null"]}
    return sub


__all__ = ["data_url", "downscale", "image_payload", "strict_schema"]
