"""Reading a generateContent answer: merging an SSE stream (or decoding it event by event as it arrives),
skipping thoughts, the precise failure outcome, token usage, and the pixel identity of an image for resending
its model turn."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from PIL import Image

from agent.backends.errors import MalformedResponse, NoImageReturned, SafetyBlocked, ServerError
from agent.backends.gemini.errors import classify
from agent.models.errors import BackendError
from agent.runtime.http import Retryable

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


def event_data(block: str) -> str | None:
    """The JSON text of one SSE event block (its `data:` lines), a bare JSON block (Google sends a mid-stream
    `{"error": ...}` without the `data:` prefix), or None for a comment or keep-alive block."""
    data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
    if data.strip():
        return data
    return block if block.strip().startswith("{") else None


def merge_stream(text: str) -> dict[str, Any]:
    """Fold an SSE stream of GenerateContentResponse chunks into one response (parts concatenated)."""
    events: list[dict[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = event_data(block)
        if data is None:
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


class SseDecoder:
    """Decode an SSE stream of GenerateContentResponse chunks event by event, as its bytes arrive, so a caller
    can act on the first text before the stream ends (`merge_stream` needs the whole body).

    Lines are split on bytes (b"\\n", a trailing \\r dropped), never on the Unicode separators a model's text
    may hold raw; a multi-megabyte image line is scanned once, however many reads it arrives in. The messages
    match `merge_stream`'s."""

    def __init__(self) -> None:
        self.events = 0
        self._buffer = bytearray()
        self._scanned = 0
        self._lines: list[str] = []

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """The events completed by this chunk of the body (MalformedResponse if one is not JSON)."""
        self._buffer += chunk
        out: list[dict[str, Any]] = []
        start = 0
        while (end := self._buffer.find(b"\n", max(start, self._scanned))) >= 0:
            line = bytes(self._buffer[start:end])
            start = end + 1
            event = self._line(line[:-1] if line.endswith(b"\r") else line)
            if event is not None:
                out.append(event)
        del self._buffer[:start]
        self._scanned = len(self._buffer)
        return out

    def close(self) -> dict[str, Any] | None:
        """The stream ended: its last event if that was not followed by a blank line; MalformedResponse if it
        ended mid-event or held no event at all."""
        if self._buffer:
            self._lines.append(bytes(self._buffer).decode("utf-8", "replace"))
            self._buffer.clear()
        event = self._block(final=True) if self._lines else None
        if event is None and not self.events:
            raise MalformedResponse("gemini: the stream closed without a single event")
        return event

    def _line(self, line: bytes) -> dict[str, Any] | None:
        if line:
            self._lines.append(line.decode("utf-8", "replace"))
            return None
        return self._block(final=False) if self._lines else None

    def _block(self, final: bool) -> dict[str, Any] | None:
        data = event_data("\n".join(self._lines))
        self._lines = []
        if data is None:
            return None
        try:
            event = json.loads(data)
        except ValueError:
            why = "ended mid-event" if final else f"sent an event that is not JSON (event {self.events + 1})"
            raise MalformedResponse(f"gemini: the stream {why} after {self.events} event(s)") from None
        if isinstance(event, list) and len(event) == 1:
            event = event[0]
        if not isinstance(event, dict):
            raise MalformedResponse(f"gemini: stream event {self.events + 1} is a {type(event).__name__}, "
                                    "not a JSON object")
        self.events += 1
        return event


def error_event(payload: dict[str, Any], url: str) -> BackendError:
    """The backend error for an `{"error": {...}}` answer inside a 200 (a stream's mid-stream error event):
    classified as if it had come as that HTTP status, so it maps like any other Google error."""
    err = payload.get("error")
    err = err if isinstance(err, dict) else {"message": str(err)}
    try:
        code = int(err.get("code") or 500)
    except (TypeError, ValueError):
        code = 500
    fake = httpx.Response(code if 400 <= code <= 599 else 500, json={"error": err},
                          request=httpx.Request("POST", url))
    outcome = classify(fake)
    error = outcome.error if isinstance(outcome, Retryable) else outcome
    if not isinstance(error, BackendError):
        return ServerError(f"the stream sent an error: {str(err)[:300]}")
    return error


def blocked_prompt(payload: dict[str, Any], model: str) -> SafetyBlocked | None:
    """The refusal of a blocked prompt (`promptFeedback.blockReason`, no candidates), or None."""
    feedback = payload.get("promptFeedback") or {}
    block = feedback.get("blockReason")
    if not block:
        return None
    why = feedback.get("blockReasonMessage") or "the prompt or a reference image was refused"
    return SafetyBlocked(f"gemini {model} blocked the prompt ({block}): {why}; rephrase the prompt or change "
                         "the reference images", reason=f"prompt_blocked:{block}")


def refused_finish(cand: dict[str, Any], model: str) -> SafetyBlocked | None:
    """The refusal a candidate's safety finishReason means (SAFETY_FINISH), or None."""
    finish = cand.get("finishReason")
    if finish not in SAFETY_FINISH:
        return None
    blocked = [r.get("category") for r in cand.get("safetyRatings") or [] if r.get("blocked")]
    extra = f"; {cand['finishMessage']}" if cand.get("finishMessage") else ""
    cats = f" ({', '.join(map(str, blocked))})" if blocked else ""
    return SafetyBlocked(f"gemini {model} refused to return the image: finishReason {finish}{cats}{extra}",
                         reason=finish)


def read_answer(payload: Any, model: str) -> Answer:
    """Walk candidates[0].content.parts: skip thoughts, keep the last image; raise the precise outcome."""
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, dict):
        raise MalformedResponse(f"gemini: expected a JSON object, got {type(payload).__name__}")
    usage = payload.get("usageMetadata") or {}
    candidates = payload.get("candidates") or []
    if not candidates:
        blocked = blocked_prompt(payload, model)
        if blocked is not None:
            raise blocked
        raise MalformedResponse(f"gemini: the answer has no candidates and no promptFeedback: {str(payload)[:160]}")
    cand = candidates[0]
    finish = cand.get("finishReason")
    refused = refused_finish(cand, model)
    if refused is not None:
        raise refused
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


__all__ = ["SAFETY_FINISH", "Answer", "SseDecoder", "blocked_prompt", "error_event", "event_data", "merge_stream",
           "pixel_key", "read_answer", "refused_finish", "usage_numbers"]
