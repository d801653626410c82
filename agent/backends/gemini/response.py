"""Reading a generateContent answer: merging an SSE stream, skipping thoughts, the precise failure outcome,
token usage, and the pixel identity of an image for resending its model turn."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from agent.backends.errors import MalformedResponse, NoImageReturned, SafetyBlocked

SAFETY_FINISH = frozenset({"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT",
                           "BLOCKLIST", "SPII", "RECITATION", "IMAGE_RECITATION"})
"""finishReasons that mean a policy refused the output: the same prompt will be refused again."""


@dataclass
class Answer:
    """What one generateContent answer held, after thoughts were dropped."""

    image: bytes
    declared_mime: str
    text: str
    finish: str | None
    turn_parts: list[dict[str, Any]]
    thoughts_skipped: int
    usage: dict[str, Any] = field(default_factory=dict)


def _inline(part: dict[str, Any]) -> dict[str, Any] | None:
    data = part.get("inlineData") or part.get("inline_data")
    return data if isinstance(data, dict) else None


def _signature(part: dict[str, Any]) -> str | None:
    return part.get("thoughtSignature") or part.get("thought_signature")


def merge_stream(text: str) -> dict[str, Any]:
    """Fold an SSE stream of GenerateContentResponse chunks into one response (parts concatenated)."""
    events: list[dict[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
        if not data.strip():
            if block.strip().startswith("{"):
                data = block
            else:
                continue
        try:
            events.append(json.loads(data))
        except ValueError:
            raise MalformedResponse(f"gemini: the stream ended mid-event after {len(events)} event(s)") from None
    if not events:
        raise MalformedResponse("gemini: the stream closed without a single event")
    merged: dict[str, Any] = {}
    parts: list[dict[str, Any]] = []
    candidate: dict[str, Any] = {}
    for ev in events:
        if "error" in ev:
            return ev
        for key in ("promptFeedback", "usageMetadata", "modelVersion", "responseId"):
            if key in ev:
                merged[key] = ev[key]
        for cand in (ev.get("candidates") or [])[:1]:
            parts.extend((cand.get("content") or {}).get("parts") or [])
            candidate.update({k: v for k, v in cand.items() if k != "content"})
    if candidate or parts:
        merged["candidates"] = [{**candidate, "content": {"role": "model", "parts": parts}}]
    return merged


def read_answer(payload: Any, model: str) -> Answer:
    """Walk candidates[0].content.parts: skip thoughts, keep the last image; raise the precise outcome."""
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, dict):
        raise MalformedResponse(f"gemini: expected a JSON object, got {type(payload).__name__}")
    usage = payload.get("usageMetadata") or {}
    candidates = payload.get("candidates") or []
    if not candidates:
        feedback = payload.get("promptFeedback") or {}
        block = feedback.get("blockReason")
        if block:
            why = feedback.get("blockReasonMessage") or "the prompt or a reference image was refused"
            raise SafetyBlocked(f"gemini {model} blocked the prompt ({block}): {why}; rephrase the prompt or change "
                                "the reference images", reason=f"prompt_blocked:{block}")
        raise MalformedResponse(f"gemini: the answer has no candidates and no promptFeedback: {str(payload)[:160]}")
    cand = candidates[0]
    finish = cand.get("finishReason")
    if finish in SAFETY_FINISH:
        blocked = [r.get("category") for r in cand.get("safetyRatings") or [] if r.get("blocked")]
        extra = f"; {cand['finishMessage']}" if cand.get("finishMessage") else ""
        cats = f" ({', '.join(map(str, blocked))})" if blocked else ""
        raise SafetyBlocked(f"gemini {model} refused to return the image: finishReason {finish}{cats}{extra}",
                            reason=finish)
    parts = (cand.get("content") or {}).get("parts") or []
    kept = [p for p in parts if isinstance(p, dict) and not p.get("thought")]
    text = "\n".join(p["text"] for p in kept if isinstance(p.get("text"), str)).strip()
    images = [i for i, p in enumerate(kept) if _inline(p)]
    if not images:
        if finish == "NO_IMAGE":
            said = f": {text[:300]!r}" if text else ""
            raise NoImageReturned(f"gemini {model} finished with NO_IMAGE (no image was generated){said}",
                                  reason="NO_IMAGE")
        if finish in (None, "STOP") and text:
            raise NoImageReturned(f"gemini {model} answered with text only, no image: {text[:400]!r}",
                                  reason="text_only")
        raise NoImageReturned(f"gemini {model} returned no image (finishReason {finish or 'missing'})",
                              reason=str(finish or "no_image"))
    last = images[-1]
    inline = _inline(kept[last]) or {}
    try:
        data = base64.b64decode(inline.get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        raise MalformedResponse(f"gemini {model}: the image data is not valid base64") from None
    turn: list[dict[str, Any]] = []
    for i, p in enumerate(kept):
        if i == last:
            turn.append({"image": True, **({"thoughtSignature": _signature(p)} if _signature(p) else {})})
        elif isinstance(p.get("text"), str):
            turn.append({"text": p["text"], **({"thoughtSignature": _signature(p)} if _signature(p) else {})})
    declared = inline.get("mimeType") or inline.get("mime_type") or ""
    return Answer(data, declared, text, finish, turn, len(parts) - len(kept), usage)


def usage_numbers(usage: dict[str, Any]) -> dict[str, int | None]:
    """Token counts from usageMetadata; image tokens from the IMAGE modality of the output details."""
    image = None
    for d in usage.get("candidatesTokensDetails") or []:
        if str(d.get("modality", "")).upper() == "IMAGE":
            image = (image or 0) + int(d.get("tokenCount") or 0)
    return {"prompt_tokens": usage.get("promptTokenCount"), "output_tokens": usage.get("candidatesTokenCount"),
            "image_tokens": image, "thoughts_tokens": usage.get("thoughtsTokenCount"),
            "total_tokens": usage.get("totalTokenCount")}


def pixel_key(image: Image.Image) -> str:
    """Identity of an image's pixels, so a stored PNG of an image we generated is recognised."""
    h = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


__all__ = ["SAFETY_FINISH", "Answer", "merge_stream", "pixel_key", "read_answer", "usage_numbers"]
