"""The fake Gemini's interleaved answer: an illustrated document streamed part by part, as a model writes it.

A request is a document request when it goes to `:streamGenerateContent`, lists both TEXT and IMAGE in an
explicit `generationConfig.responseModalities` and asks for no `imageConfig` (a request for one picture states
its shape, as the gemini backend always does; `stream_interleaved` leaves the shape to the model). The server
option `interleaved` (true/false) overrides that rule. The number of pages is the first integer 1-12 in the
prompt, else the `interleaved_pages` option (default 4).

Page k streams as a thought (thinking models, before page 1), then its text in three pieces,
`Page k. Mia {action}; the sign says "{WORD}".` with WORD from `WORDS`, then ONE image rendered from that text
by the fake's renderer (`fake_render`: the quoted word is set legibly, references placed as in normal answers),
carrying a thoughtSignature. The last chunk carries finishReason STOP (or the `finish_reason` option) and
usageMetadata. Parts are sent `interleaved_delay` seconds apart (default 0.05) and each image is rendered when
its turn comes, so a client that reads the stream incrementally gets page 1 long before the end.

Options: `interleaved` (bool; default: the rule above), `interleaved_pages` (int, 1-12), `interleaved_misspell`
(comma-separated 1-based pages whose image shows the word misspelt, its last two letters swapped: OPEN -> OPNE),
`interleaved_delay` (seconds between parts), `interleaved_error_after` (page after whose image a bare
`{"error": ...}` event ends the stream), `interleaved_error_code` (its HTTP code: 400, 403, 429, 500, 503 or 504;
default 503); the fake's `stream_cut` cuts the last event in half. Faults: safety (page 1's text, then
finishReason IMAGE_SAFETY), no_image (the pages' text, no image), truncated (page 1's image cut in half),
wrong_size (half-size images); the error faults answer before the stream as in normal answers.

Each document is recorded (`Document`: pages with the word drawn, the kinds of parts sent and when) in the
fake's state, `app.state.fake.documents`, for tests to compare what a client received with what was sent.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from starlette.responses import StreamingResponse

from agent.testing.fakes.base import Fault, fake_render

WORDS = ("OPEN", "BAKERY", "FRESH", "WELCOME", "BREAD", "SALE", "CAFE", "HELLO", "SMILE", "THANKS", "SWEET",
         "GOODBYE")
"""The word on page k's sign (k-th, cycling); none ends in a doubled letter, so each misspelling differs."""
ACTIONS = ("unlocks the bakery door", "kneads the morning dough", "pulls loaves from the oven", "greets the first "
           "customer", "slices warm bread", "marks down yesterday's buns", "pours coffee at the counter",
           "waves to a neighbour", "hands a child a cookie", "counts the coins", "ices a cake", "locks up at dusk")
MAX_PAGES = 12
ERROR_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def _flag(value: Any) -> bool | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _pages(value: Any) -> frozenset[int]:
    if value is None or value == "":
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple, set)) else [value]
    return frozenset(int(str(v).strip()) for v in items if str(v).strip())


@dataclass(frozen=True)
class DocumentOptions:
    """The `interleaved*` options of the fake (strings accepted, as a command line passes them)."""

    interleaved: bool | None = None
    pages: int = 4
    misspell: frozenset[int] = frozenset()
    delay: float = 0.05
    error_after: int | None = None
    error_code: int = 503

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> DocumentOptions:
        code = int(options.get("interleaved_error_code", 503))
        if code not in ERROR_STATUS:
            raise ValueError(f"interleaved_error_code must be one of {', '.join(map(str, ERROR_STATUS))}")
        after = options.get("interleaved_error_after")
        return cls(interleaved=_flag(options.get("interleaved")),
                   pages=max(1, min(MAX_PAGES, int(options.get("interleaved_pages", 4)))),
                   misspell=_pages(options.get("interleaved_misspell")),
                   delay=max(0.0, float(options.get("interleaved_delay", 0.05))),
                   error_after=int(after) if after not in (None, "") else None, error_code=code)


def wants_document(body: Mapping[str, Any], method: str, options: DocumentOptions) -> bool:
    """Whether a (camelCase) request asks for an interleaved document (see the module docstring)."""
    gen = body.get("generationConfig") or {}
    modalities = {str(m).upper() for m in gen.get("responseModalities") or []}
    if method != "streamGenerateContent" or not {"TEXT", "IMAGE"} <= modalities:
        return False
    if options.interleaved is not None:
        return options.interleaved
    return not (gen.get("imageConfig") or (gen.get("responseFormat") or {}).get("image"))


def page_count(prompt: str, options: DocumentOptions) -> int:
    """The first integer 1-12 in the prompt, else the `interleaved_pages` option."""
    for m in re.finditer(r"\d+", prompt):
        if 1 <= int(m.group()) <= MAX_PAGES:
            return int(m.group())
    return options.pages


def misspelt(word: str) -> str:
    """The word with its last two letters swapped (OPEN -> OPNE), a typo an OCR check must catch."""
    return word[:-2] + word[-1] + word[-2] if len(word) >= 2 else word


@dataclass
class Page:
    """One page as the fake wrote it: its text, the word its text quotes and the word its image shows."""

    number: int
    text: str
    word: str
    drawn: str
    pieces: tuple[str, ...]


@dataclass
class Document:
    """One streamed document: its pages, and each part the server sent (kind, monotonic time) in order."""

    pages: list[Page]
    sent: list[tuple[str, float]] = field(default_factory=list)
    finished: bool = False

    @property
    def kinds(self) -> list[str]:
        return [k for k, _ in self.sent]


def plan_pages(count: int, options: DocumentOptions) -> list[Page]:
    pages = []
    for k in range(1, count + 1):
        word, action = WORDS[(k - 1) % len(WORDS)], ACTIONS[(k - 1) % len(ACTIONS)]
        pieces = (f"Page {k}. ", f"Mia {action}; ", f'the sign says "{word}".\n\n')
        pages.append(Page(k, "".join(pieces).strip(), word, misspelt(word) if k in options.misspell else word, pieces))
    return pages


@dataclass
class DocumentJob:
    """What one document answer needs from the fake's request handling (`gemini.py`)."""

    model: str
    prompt: str
    size: tuple[int, int]
    seed: int
    references: list[bytes]
    thinks: bool
    prompt_tokens: int
    image_tokens: int
    fmt: str
    declared_mime: str
    sign: Callable[[], str]
    fault: str | None = None
    cut: bool = False
    finish_reason: str | None = None


def _chunk(job: DocumentJob, response_id: str, parts: list[dict[str, Any]], last: dict[str, Any] | None = None) \
        -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    chunk: dict[str, Any] = {"candidates": [cand], "modelVersion": job.model, "responseId": response_id}
    if last is not None:
        cand["finishReason"] = last["finishReason"]
        chunk["usageMetadata"] = last["usageMetadata"]
    return chunk


def _usage(job: DocumentJob, images: int, text_tokens: int, thoughts: int) -> dict[str, Any]:
    image = images * job.image_tokens
    usage: dict[str, Any] = {"promptTokenCount": job.prompt_tokens, "candidatesTokenCount": image + text_tokens,
                             "totalTokenCount": job.prompt_tokens + image + text_tokens + thoughts,
                             "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": text_tokens}]}
    if image:
        usage["candidatesTokensDetails"].insert(0, {"modality": "IMAGE", "tokenCount": image})
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


HOUSE_STYLE = "teal colours, soft gradient background"


def _render(job: DocumentJob, page: Page) -> bytes:
    """Page's image: its scene with the sign's word in quotes (misspelt where asked), references placed."""
    w, h = job.size
    if job.fault == "wrong_size":
        w, h = max(8, w // 2), max(8, h // 2)
    refs = [Image.open(io.BytesIO(r)).convert("RGB") for r in job.references]
    scene = page.pieces[1].removesuffix("; ").strip()
    # one house style for the whole document, as a real model keeps within one answer
    data = fake_render(f'{scene}, a sign that says "{page.drawn}", {HOUSE_STYLE}', w, h, job.seed + page.number,
                       job.fmt, references=refs or None)
    return data[: len(data) // 2] if job.fault == "truncated" and page.number == 1 else data


def _parts(job: DocumentJob, doc: Document, options: DocumentOptions) -> list[tuple[str, Any]]:
    """The answer as (kind, part-or-page) in order, before rendering: thoughts, then text pieces and images."""
    plan: list[tuple[str, Any]] = []
    if job.thinks:
        plan.append(("thought", {"text": "**Planning the pages**\nA short picture story, one sign per page.",
                                 "thought": True}))
    for page in doc.pages:
        plan += [("text", {"text": piece}) for piece in page.pieces]
        if job.fault == "safety":
            return plan + [("safety", None)]
        if job.fault != "no_image":
            plan.append(("image", page))
        if options.error_after == page.number:
            return plan + [("error", None)]
    return plan


async def document_events(job: DocumentJob, doc: Document, options: DocumentOptions) -> AsyncIterator[bytes]:
    """The SSE events of one document, each sent when its turn comes (images rendered then, in a thread)."""
    plan = _parts(job, doc, options)
    response_id = secrets.token_hex(8)
    images = text_tokens = 0
    for i, (kind, item) in enumerate(plan):
        if i and options.delay:
            await asyncio.sleep(options.delay)
        last = i == len(plan) - 1
        if kind == "error":
            code = options.error_code
            event: dict[str, Any] = {"error": {"code": code, "status": ERROR_STATUS[code],
                                               "message": "The model is overloaded. Please try again later."
                                               if code == 503 else f"Stream failed ({ERROR_STATUS[code]})."}}
        elif kind == "safety":
            event = {"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0, "finishMessage": "Unable to show "
                                     "the generated image: it violated the Prohibited Use policy."}],
                     "usageMetadata": _usage(job, 0, text_tokens, 0), "modelVersion": job.model}
        else:
            if kind == "image":
                data = await asyncio.to_thread(_render, job, item)
                part = {"inlineData": {"mimeType": job.declared_mime, "data": base64.b64encode(data).decode()},
                        "thoughtSignature": job.sign()}
                images += 1
            else:
                part = item
                text_tokens += len(str(item["text"]).split()) if kind == "text" else 0
            finish = {"finishReason": job.finish_reason or "STOP",
                      "usageMetadata": _usage(job, images, text_tokens, 212 if job.thinks else 0)} if last else None
            event = _chunk(job, response_id, [part], finish)
        raw = f"data: {json.dumps(event)}\r\n\r\n".encode()
        if last and job.cut:
            raw = raw[: len(raw) // 2]
        doc.sent.append((kind, time.monotonic()))
        yield raw
    doc.finished = True


def document_response(model: str, info: dict[str, Any], size: tuple[int, int], spec: Mapping[str, Any], state: Any,
                      fault: Fault | None) -> StreamingResponse:
    """The streamed document for a validated request (`info` from the fake's `_validate`), recorded in
    `state.documents`; `state` is the fake Gemini's own (its image format, signing, stream_cut, finish_reason)."""
    fmt = "JPEG" if state.mislabel_jpeg else state.image_format
    job = DocumentJob(model=model, prompt=info["prompt"], size=size, seed=info["seed"],
                      references=([info["base"]] if info["base"] else []) + info["references"],
                      thinks=spec["thinks"], prompt_tokens=info["prompt_tokens"],
                      image_tokens=spec["tokens"].get(info["size"], 1120), fmt=fmt,
                      declared_mime="image/png" if state.mislabel_jpeg else
                      {"JPEG": "image/jpeg", "WEBP": "image/webp"}.get(fmt, "image/png"), sign=state.sign,
                      fault=fault.kind if fault else None, cut=state.stream_cut, finish_reason=state.finish_reason)
    options: DocumentOptions = state.document
    doc = Document(plan_pages(page_count(info["prompt"], options), options))
    with state.lock:
        state.documents.append(doc)
    return StreamingResponse(document_events(job, doc, options), media_type="text/event-stream")


__all__ = ["ACTIONS", "ERROR_STATUS", "WORDS", "Document", "DocumentJob", "DocumentOptions", "Page",
           "document_events", "document_response", "misspelt", "page_count", "plan_pages", "wants_document"]
