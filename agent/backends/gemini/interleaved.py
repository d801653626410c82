"""Gemini's native interleaved output, streamed: text sections and whole images in reading order.

An illustrated document (a story: text for page 1, image 1, text for page 2, ...) comes from one request with
`responseModalities: ["TEXT", "IMAGE"]` to `:streamGenerateContent?alt=sse`. The answer is read event by event
as it arrives (`response.SseDecoder`), so a caller can show or check page 1 while the model still draws page 4.
Consecutive text pieces are merged and handed over when the next image arrives (or the stream ends), so a
section's text is always whole; each image is handed over as soon as its chunk has arrived, and only after it
decodes. Thought parts are skipped.

Everything about the connection is the gemini backend's: model, base URL and options come from the config as
`GeminiBackend.from_config` reads them, the key from GEMINI_API_KEY / GOOGLE_API_KEY (never logged, every
message redacted), errors are classified by `errors.classify`. A 429/5xx/timeout before the stream starts is
retried under the backend's HttpSettings (attempts, Google's RetryInfo, backoff; no retry that would start
after the `deadline` scope ends): the shared HttpClient has no streaming call, so `open_stream` sends through
its httpx client. Once the stream has started nothing is retried, since the caller may already hold part of
the document.
Wire format: shared/docs/backend-protocols.md section 1, "Streaming".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from agent.backends.errors import (
    BackendTimeout,
    BadRequest,
    MalformedResponse,
    NoImageReturned,
    ServerError,
)
from agent.backends.gemini.backend import GeminiBackend, inline_image
from agent.backends.gemini.errors import classify
from agent.backends.gemini.response import SseDecoder, blocked_prompt, error_event, refused_finish
from agent.models import PixloopConfig
from agent.models.errors import BackendError
from agent.runtime.http import MIN_ATTEMPT_SECONDS, Retryable, current_deadline
from agent.runtime.images import ImageInputError, decode_image_bytes, sniff_mime
from agent.runtime.secrets import redact


@dataclass(frozen=True)
class InterleavedText:
    """One whole text section of the document (the model's consecutive text pieces joined)."""

    text: str


@dataclass(frozen=True)
class InterleavedImage:
    """One image of the document, as sent (bytes verified to decode); `index` counts images from 0."""

    data: bytes
    mime_type: str
    index: int


InterleavedItem = InterleavedText | InterleavedImage


def request_body(prompt: str, backend: GeminiBackend, references: Sequence[bytes] = (),
                 system: str | None = None) -> dict[str, Any]:
    """The streamGenerateContent body: the prompt then the references as inlineData, TEXT and IMAGE output,
    imageConfig and thinkingConfig only where the backend's options set them (the model picks the shape)."""
    if len(references) > backend.spec.max_references:
        raise BadRequest(f"gemini {backend.model} accepts at most {backend.spec.max_references} reference images; "
                         f"got {len(references)}")
    parts: list[dict[str, Any]] = [{"text": prompt}]
    parts += [_inline_part(data, i) for i, data in enumerate(references)]
    gen: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    opts = backend.options
    image_config = {k: v for k, v in (("aspectRatio", opts.aspect_ratio), ("imageSize", opts.image_size)) if v}
    if image_config:
        gen["imageConfig"] = image_config
    thinking = {k: v for k, v in (("thinkingLevel", opts.thinking_level), ("includeThoughts", opts.include_thoughts))
                if v is not None}
    if thinking:
        gen["thinkingConfig"] = thinking
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": parts}], "generationConfig": gen}
    instruction = system or opts.system_instruction
    if instruction:
        body["systemInstruction"] = {"parts": [{"text": instruction}]}
    return body


def _inline_part(data: bytes, i: int) -> dict[str, Any]:
    """A reference as inlineData: its own bytes when Gemini takes the type and size, else re-encoded."""
    def decoded() -> Any:
        try:
            return decode_image_bytes(data, label=f"reference image {i + 1}")
        except ImageInputError as e:
            raise BadRequest(f"gemini: reference image {i + 1} cannot be read: {e}") from None

    return inline_image(data, sniff_mime(data), decoded)


async def open_stream(backend: GeminiBackend, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST and return the 200 response with its body unread; a 429/5xx/timeout/connection failure before the
    stream starts is retried under the backend's HttpSettings, anything else raised as `classify` maps it."""
    http, s = backend.http, backend.http.settings
    scope = current_deadline()
    t0 = time.monotonic()
    for attempt in range(1, s.max_attempts + 1):
        http.usage.requests += 1
        if attempt > 1:
            http.usage.retries += 1
        request = http.client.build_request("POST", path, params={"alt": "sse"}, content=content, headers=headers)
        try:
            resp = await http.client.send(request, stream=True)
        except httpx.TimeoutException as e:
            outcome: BackendError | Retryable = Retryable(BackendTimeout(f"POST {path} timed out ({type(e).__name__})"))
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
            outcome = Retryable(ServerError(f"POST {path} connection failed: {type(e).__name__}: {e}"))
        else:
            if resp.is_success:
                return resp
            try:
                await resp.aread()
            finally:
                await resp.aclose()
            outcome = classify(resp) or BadRequest(f"HTTP {resp.status_code}")
        if not isinstance(outcome, Retryable):
            http.usage.failures += 1
            outcome.args = (f"gemini: {redact(str(outcome))}",)
            raise outcome
        wait = min(outcome.retry_after if outcome.retry_after is not None
                   else min(s.backoff_max, s.backoff_initial * 2 ** (attempt - 1)), s.max_retry_after)
        out_of_time = time.monotonic() + wait - t0 > s.total_timeout or (
            scope is not None and scope.remaining() - wait < MIN_ATTEMPT_SECONDS)
        if attempt == s.max_attempts or out_of_time:
            http.usage.failures += 1
            if scope is not None and out_of_time:
                scope.hit = True
            raise type(outcome.error)(f"gemini: {redact(str(outcome.error))} (after {attempt} attempts)")
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class _Reader:
    """Turns stream events into items: merges text pieces, decodes images, raises the outcomes."""

    model: str
    url: str
    pending: list[str] = field(default_factory=list)
    images: int = 0
    thoughts: int = 0
    finish: str | None = None

    def take(self, event: dict[str, Any]) -> list[InterleavedText | tuple[bytes, str]]:
        """The items one event completes (images still to be verified), in order."""
        if "error" in event:
            error = error_event(event, self.url)
            error.args = (f"gemini {self.model}: the stream sent an error after {self.images} image(s): {error}",)
            raise error
        candidates = event.get("candidates") or []
        if not candidates:
            blocked = blocked_prompt(event, self.model)
            if blocked is not None:
                raise blocked
            return []
        cand = candidates[0] if isinstance(candidates[0], dict) else {}
        refused = refused_finish(cand, self.model)
        if refused is not None:
            raise refused
        self.finish = cand.get("finishReason") or self.finish
        out: list[InterleavedText | tuple[bytes, str]] = []
        for part in (cand.get("content") or {}).get("parts") or []:
            if not isinstance(part, dict):
                continue
            if part.get("thought"):
                self.thoughts += 1
                continue
            inline = part.get("inlineData") or part.get("inline_data")
            if isinstance(inline, dict):
                out += self.flush()
                try:
                    data = base64.b64decode(inline.get("data") or "", validate=True)
                except (binascii.Error, ValueError):
                    raise MalformedResponse(f"gemini {self.model}: image {self.images + 1} of the stream is not "
                                            "valid base64") from None
                out.append((data, str(inline.get("mimeType") or inline.get("mime_type") or "")))
                self.images += 1
            elif isinstance(part.get("text"), str):
                self.pending.append(part["text"])
        return out

    def flush(self) -> list[InterleavedText | tuple[bytes, str]]:
        text = "".join(self.pending).strip()
        self.pending = []
        return [InterleavedText(text)] if text else []


def _verified(data: bytes, declared: str, index: int, model: str) -> InterleavedImage:
    """The image if its bytes decode (a truncated image is a malformed answer), typed by its magic bytes."""
    try:
        decode_image_bytes(data, label=f"gemini {model} image {index + 1}")
    except ImageInputError as e:
        raise MalformedResponse(f"gemini {model}: image {index + 1} of the stream cannot be decoded: {e}") from None
    return InterleavedImage(data, sniff_mime(data) or declared or "application/octet-stream", index)


async def _items(backend: GeminiBackend, resp: httpx.Response) -> AsyncIterator[InterleavedItem]:
    """Read the open stream and yield its items as their events complete."""
    reader = _Reader(backend.model, str(resp.request.url))
    decoder = SseDecoder()
    index = 0

    async def emit(raw: list[InterleavedText | tuple[bytes, str]]) -> AsyncIterator[InterleavedItem]:
        nonlocal index
        for item in raw:
            if isinstance(item, InterleavedText):
                yield item
            else:
                yield await asyncio.to_thread(_verified, item[0], item[1], index, backend.model)
                index += 1

    try:
        async for chunk in resp.aiter_bytes():
            for event in decoder.feed(chunk):
                async for item in emit(reader.take(event)):
                    yield item
    except httpx.ReadTimeout:
        raise BackendTimeout(f"gemini {backend.model}: the stream stalled: no bytes for "
                             f"{backend.http.settings.read_timeout:g} s after {decoder.events} event(s)") from None
    except (httpx.RemoteProtocolError, httpx.ReadError) as e:
        raise MalformedResponse(f"gemini {backend.model}: the stream was cut after {decoder.events} event(s) "
                                f"({type(e).__name__}: {e})") from None
    last = decoder.close()
    if last is not None:
        async for item in emit(reader.take(last)):
            yield item
    if reader.finish is None:
        raise MalformedResponse(f"gemini {backend.model}: the stream closed after {decoder.events} event(s) without "
                                "a finishReason (cut short?)")
    async for item in emit(reader.flush()):
        yield item
    if not reader.images:
        reason = "NO_IMAGE" if reader.finish == "NO_IMAGE" else "text_only"
        raise NoImageReturned(f"gemini {backend.model} answered the document request without any image "
                              f"(finishReason {reader.finish})", reason=reason)


async def stream_interleaved(prompt: str, config: PixloopConfig, *, references: Sequence[bytes] = (),
                             system: str | None = None) -> AsyncIterator[InterleavedText | InterleavedImage]:
    """Ask Gemini for interleaved text and images and yield them in reading order as they arrive.

    The model, base URL and options are read from `config` as the gemini backend reads them. Raises the
    backend's errors: AuthError (no key for Google's endpoint, bad key), RateLimited / QuotaExhausted /
    ServerError / BadRequest (an error answer before or during the stream), SafetyBlocked (a blocked prompt or
    a safety finishReason), MalformedResponse (a stream cut mid-event, with no event or no finishReason, an
    image that does not decode), BackendTimeout (no bytes for the read timeout), NoImageReturned (a document
    without a single image, after its text was yielded). Items yielded before an error stay valid."""
    backend = GeminiBackend.from_config(config)
    try:
        headers = {**backend.key_headers(), "content-type": "application/json", "accept": "text/event-stream"}
        body = await asyncio.to_thread(request_body, prompt, backend, references, system)
        content = await asyncio.to_thread(lambda: json.dumps(body).encode())
        path = f"/{backend.api_version}/models/{backend.model}:streamGenerateContent"
        resp = await open_stream(backend, path, content, headers)
        try:
            async for item in _items(backend, resp):
                yield item
        except BackendError as e:
            e.args = (redact(str(e.args[0])) if e.args else "",)
            raise
        finally:
            await resp.aclose()
    finally:
        await backend.aclose()


__all__ = ["InterleavedImage", "InterleavedItem", "InterleavedText", "open_stream", "request_body",
           "stream_interleaved"]
