"""Fake OpenAI-compatible chat server (/v1/chat/completions) for the LLM planner, rewriter and VLM judge.

It checks requests the way real servers do (messages, data-URL images that decode, a strict
json_schema whose objects list every property and forbid extras) and answers deterministically
from the request: planner requests (schema `pixloop_plan`) get a plan JSON built from the quoted
strings in the user text, judge requests (`pixloop_judge`) scores from simple image statistics,
writer requests (`pixloop_document`) a story of the requested pages about the topic (`fakes.story`),
rewrite requests a plain-text prompt. Prompts are read through pixloop's own templates
(`prompts.parse`), never by their wording. Answers that claim a schema are checked against it.

Options (create_app(faults, **options)):
  mode: ok | fenced | prose | parts | invalid_once | invalid | schema_invalid_once | length | refusal |
        content_filter | empty | vllm_error | nested_error
        (the *_once modes answer well when the request is a repair retry, i.e. has an assistant turn)
  story_pages / story_pages_once: the story has this many sections whatever was asked (always / first try);
  moderation_flag: "stolen,bomb": POST /v1/moderations flags inputs with these words (`fakes.moderation`)
  drop_text / alter_text / extra_text: the plan drops the first quoted string, misspells it, or adds unrequested
  text;  aspect: the plan's aspect ratio;  judge_scores: (adherence, consistency);  judge_problems: [{what, where}]
  api_key: require `Authorization: Bearer <key>`;  reject_max_tokens: answer like OpenAI reasoning models do to
  `max_tokens`;  model: the model name answered (default: the request's)
Faults (FaultPlan, one per completion request): 429 500 503 slow safety malformed html truncated no_image (empty
content) quota reset (not wrong_size). `stream: true` answers SSE chat.completion.chunk events ending `data: [DONE]`.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agent.testing.fakes.base import Fault, FaultPlan, RequestLog, apply_delay
from agent.testing.fakes.moderation import make_handler as moderation_handler
from agent.testing.fakes.story import STORY_SCHEMA, story_answer
from prompts import parse as parse_prompt

PLAN_SCHEMA = "pixloop_plan"
JUDGE_SCHEMA = "pixloop_judge"
_DATA_URL = re.compile(r"^data:(image/(?:png|jpeg|jpg|webp|gif));base64,(.*)$", re.DOTALL)
_ROLES = ("system", "developer", "user", "assistant", "tool")
_MODES = {"ok", "fenced", "prose", "parts", "invalid_once", "invalid", "schema_invalid_once", "length", "refusal",
          "content_filter", "empty", "vllm_error", "nested_error"}


def _error(status: int, message: str, etype: str = "invalid_request_error", code: str | None = None,
           param: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": etype, "param": param, "code": code}},
                        status_code=status, headers=headers)


# --------------------------------------------------------------------------- request checks


def strict_problems(schema: Any, path: tuple[str, ...] = ()) -> list[str]:
    """Why a schema is not usable with strict mode (OpenAI's wording), or []."""
    problems: list[str] = []
    if isinstance(schema, dict):
        if "properties" in schema or schema.get("type") == "object":
            props = schema.get("properties", {})
            if schema.get("additionalProperties") is not False:
                problems.append(f"In context={path}, 'additionalProperties' is required to be supplied and to be false.")
            missing = [k for k in props if k not in (schema.get("required") or [])]
            if missing:
                problems.append(f"In context={path}, 'required' is required to be supplied and to be an array "
                                f"including every key in properties. Missing '{missing[0]}'.")
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    problems += strict_problems(sub, path + ("properties", name))
            elif isinstance(value, (dict, list)):
                problems += strict_problems(value, path + (key,))
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            problems += strict_problems(sub, path + (str(i),))
    return problems


def conforms(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Minimal JSON-schema check (type, enum, required, additionalProperties, items, bounds, pattern)."""
    errs: list[str] = []
    if "anyOf" in schema:
        if all(conforms(value, s, path) for s in schema["anyOf"]):
            errs.append(f"{path}: matches no anyOf branch")
        return errs
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types or []
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    if types:
        ok = False
        for t in types:
            if t in ("number", "integer"):
                ok |= isinstance(value, (int, float)) and not isinstance(value, bool) and (
                    t == "number" or float(value).is_integer())
            else:
                ok |= isinstance(value, kinds.get(t, object))
        if not ok:
            return [f"{path}: expected {types}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errs += [f"{path}: missing {k!r}" for k in schema.get("required", []) if k not in value]
        if schema.get("additionalProperties") is False:
            errs += [f"{path}: unexpected {k!r}" for k in value if k not in props]
        for k, v in value.items():
            if k in props:
                errs += conforms(v, props[k], f"{path}.{k}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errs.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errs.append(f"{path}: more than {schema['maxItems']} items")
        for i, v in enumerate(value):
            errs += conforms(v, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(f"{path}: below minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errs.append(f"{path}: above maximum {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errs.append(f"{path}: not above {schema['exclusiveMinimum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errs.append(f"{path}: {value!r} does not match {schema['pattern']}")
    return errs


def _decode_image(url: str) -> tuple[str, Image.Image]:
    m = _DATA_URL.match(url)
    if not m:
        if url.startswith(("http://", "https://")):
            raise ValueError("image URLs cannot be fetched here: send a base64 data URL")
        raise ValueError(f"invalid image URL {url[:40]!r}: expected data:image/png;base64,...")
    try:
        data = base64.b64decode(m.group(2), validate=True)
        img = Image.open(io.BytesIO(data))
        img.load()
    except (binascii.Error, ValueError, OSError) as e:
        raise ValueError(f"invalid image data ({type(e).__name__})") from None
    return m.group(1), img


def read_messages(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[str, Image.Image]]]:
    """Validated messages as {role, text}, and the decoded images; ValueError says what is wrong."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty array")
    out, images = [], []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise ValueError(f"messages[{i}].role must be one of {', '.join(_ROLES)}")
        content = m.get("content")
        texts: list[str] = []
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif kind == "image_url":
                    if m["role"] != "user":
                        raise ValueError(f"messages[{i}]: image content is only allowed in user messages")
                    url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
                    if not isinstance(url, str):
                        raise ValueError(f"messages[{i}].content[{j}].image_url.url is required")
                    images.append(_decode_image(url))
                else:
                    raise ValueError(f"messages[{i}].content[{j}]: unknown content part type {kind!r}")
        elif content is not None or m["role"] != "assistant":
            raise ValueError(f"messages[{i}].content must be a string or an array of content parts")
        out.append({"role": m["role"], "text": "\n".join(texts)})
    return out, images


# --------------------------------------------------------------------------- deterministic answers


def _brief(user_text: str) -> str:
    """The brief of a planner request, read through the template pixloop wrote it with (else the whole text)."""
    asked = parse_prompt("planner_user", user_text)
    return asked["prompt"] if asked else user_text


def plan_answer(user_text: str, n_images: int, options: dict[str, Any]) -> dict[str, Any]:
    """A design for the planner schema: the quoted strings as text, canvas and style from the brief's words."""
    from agent.loop.planning import detect_aspect, detect_size, extract_quoted, layout_regions, style_for_prompt
    from agent.models import canvas_size

    brief = _brief(user_text)
    texts = extract_quoted(user_text)[:6]
    aspect = options.get("aspect") or detect_aspect(brief) or "1:1"
    size = detect_size(brief) or "1K"
    width, height = canvas_size(aspect, size)
    style, _ = style_for_prompt(brief, 0)
    if options.get("drop_text") and texts:
        texts = texts[1:]
    if options.get("alter_text") and texts:
        t = texts[0]
        texts[0] = t[:2] + t[3:] if len(t) > 3 else t + t[-1]
    if options.get("extra_text"):
        texts.append("LIMITED OFFER")
    text_boxes, subject_boxes = layout_regions(len(texts), n_images, width / height >= 1.7)
    roles = ["headline", "subheading", "body", "cta"]

    def box(b: Any) -> dict[str, float]:
        return {"x": round(b.x, 4), "y": round(b.y, 4), "w": round(b.w, 4), "h": round(b.h, 4)}

    return {
        "aspect_ratio": aspect, "size": size,
        "text": [{"content": t, "role": roles[min(i, 3)], "region": box(text_boxes[i])} for i, t in enumerate(texts)],
        "subjects": [{"reference": i + 1, "kind": "product", "region": box(subject_boxes[i])} for i in range(n_images)],
        "style": {"background": "gradient" if style.background == "image" else style.background,
                  "palette": style.palette[:3], "font": style.font, "text_color": style.text_color,
                  "text_scale": style.text_scale},
        "negative": ["blurry", "watermark"],
        "rationale": f"{len(texts)} text line(s) stacked in the {'left half' if n_images and width / height >= 1.7 else 'upper area'}"
                     f", {n_images} subject(s), {style.background} background.",
    }


def judge_answer(images: list[tuple[str, Image.Image]], options: dict[str, Any]) -> dict[str, Any]:
    """Scores from image statistics: a blank image scores low, a contrasty one high."""
    if not images:
        return {"adherence": 0, "consistency": 0, "reasons": ["no image was attached"],
                "problems": [{"what": "no image to judge", "where": "request"}]}
    grey = np.asarray(images[0][1].convert("L"), dtype=np.float64)
    std = float(grey.std())
    edges = float(np.abs(np.diff(grey, axis=1)).mean()) if grey.shape[1] > 1 else 0.0
    if std < 3:
        reply = {"adherence": 1, "consistency": 2, "reasons": [f"the image is a flat colour (contrast {std:.1f})"],
                 "problems": [{"what": "the image is blank", "where": "whole image"}]}
    else:
        adherence = round(min(9.5, 5.0 + std / 15.0), 1)
        consistency = round(min(9.5, 6.5 + edges / 4.0), 1)
        reply = {"adherence": adherence, "consistency": consistency,
                 "reasons": [f"clear composition with contrast {std:.0f}", "nothing physically implausible"],
                 "problems": []}
    if options.get("judge_scores"):
        reply["adherence"], reply["consistency"] = options["judge_scores"]
    if options.get("judge_problems") is not None:
        reply["problems"] = list(options["judge_problems"])
    return reply


def rewrite_answer(user_text: str) -> str:
    """A plain-text prompt keeping the quoted strings, each spelled out letter by letter."""
    from agent.loop.planning import extract_quoted

    texts = [t for t in extract_quoted(user_text) if " " in t or t.isupper() or len(t) > 2][:4]
    spelled = " ".join(f'Spell "{t}" as {"-".join(c for c in t if not c.isspace())}.' for t in texts)
    quoted = ", ".join(f'"{t}"' for t in texts)
    return (f"A bold, high-contrast poster with large heavy letters on a calm background. "
            f"The image must contain exactly this text: {quoted}. {spelled}").strip()


def _schema_default(schema: dict[str, Any]) -> Any:
    """The smallest value of a schema (for schemas this fake does not know)."""
    t = schema.get("type")
    t = t[0] if isinstance(t, list) else t
    if "enum" in schema:
        return schema["enum"][0]
    if t == "object":
        return {k: _schema_default(v) for k, v in schema.get("properties", {}).items()}
    if t is None:  # no "type": nothing to default to
        return None
    return {"array": [], "string": "ok", "number": schema.get("minimum", 0), "integer": schema.get("minimum", 0),
            "boolean": False}.get(t)


# --------------------------------------------------------------------------- the app


class _Reset:
    """Start a response, then drop the connection mid-body (a connection reset as the client sees it)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"id": "chatcmpl-', "more_body": True})
        raise ConnectionResetError("fake chat server: connection reset on purpose")


def create_app(faults: FaultPlan | None = None, **options: Any) -> Starlette:
    """The fake chat server; `app.state.requests` records each request, `app.state.images` each decoded image."""
    faults = faults or FaultPlan()
    mode = str(options.get("mode", "ok"))
    if mode not in _MODES:
        raise ValueError(f"unknown chat fake mode {mode!r}; choose one of {', '.join(sorted(_MODES))}")
    log = RequestLog()
    images_seen: list[dict[str, Any]] = []
    counter = {"n": 0}
    lock = threading.Lock()

    async def completions(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            log.add(request.method, request.url.path, dict(request.headers), raw[:200].decode("latin-1"))
            return _error(400, "We could not parse the JSON body of your request.")
        log.add(request.method, request.url.path, dict(request.headers), body)
        if options.get("api_key") and request.headers.get("authorization") != f"Bearer {options['api_key']}":
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        fault = faults.next()
        await apply_delay(faults, fault)
        if fault is not None and fault.kind != "slow":
            faulted = _fault_response(fault)
            if faulted is not None:
                return faulted
        if not isinstance(body, dict) or not body.get("model"):
            return _error(400, "you must provide a model parameter", param="model")
        if options.get("reject_max_tokens") and "max_tokens" in body:
            return _error(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                               "Use 'max_completion_tokens' instead.", code="unsupported_parameter",
                          param="max_tokens")
        try:
            messages, images = read_messages(body)
        except ValueError as e:
            return _error(400, str(e), param="messages")
        with lock:
            images_seen.extend({"mime": m, "width": im.width, "height": im.height} for m, im in images)
            counter["n"] += 1
            n = counter["n"]
        schema_name, schema = None, None
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            js = fmt.get("json_schema") or {}
            schema_name, schema = js.get("name"), js.get("schema")
            if not isinstance(schema_name, str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", schema_name):
                return _error(400, "Invalid 'response_format.json_schema.name': must match ^[a-zA-Z0-9_-]{1,64}$",
                              param="response_format.json_schema.name")
            if not isinstance(schema, dict):
                return _error(400, "Missing required parameter: 'response_format.json_schema.schema'",
                              param="response_format.json_schema.schema")
            if js.get("strict"):
                problems = strict_problems(schema)
                if problems:
                    return _error(400, f"Invalid schema for response_format '{schema_name}': {problems[0]}",
                                  param="response_format", code="invalid_json_schema")
        if mode == "vllm_error":
            return JSONResponse({"object": "error", "message": "The model does not support image input",
                                 "type": "BadRequestError", "param": None, "code": 400}, status_code=400)
        if mode == "nested_error":
            return JSONResponse({"error": {"message": "maximum context length is 4096 tokens",
                                           "type": "BadRequestError", "param": None, "code": 400}}, status_code=400)
        is_repair = any(m["role"] == "assistant" for m in messages)
        user_text = "\n".join(m["text"] for m in messages if m["role"] == "user")
        if schema_name == PLAN_SCHEMA:
            answer: Any = plan_answer(user_text, len(images), options)
        elif schema_name == JUDGE_SCHEMA:
            answer = judge_answer(images, options)
        elif schema_name == STORY_SCHEMA:
            answer = story_answer(messages, options)
        elif schema is not None:
            answer = _schema_default(schema)
        elif parse_prompt("rewrite_prompt", user_text) is not None:  # read through pixloop's template
            answer = rewrite_answer(user_text)
        else:
            answer = "ok: " + (user_text.strip().splitlines() or [""])[-1][:200]
        if schema is not None and mode not in ("schema_invalid_once",):
            errs = conforms(answer, schema)
            if errs:
                return _error(400, "fake chat server: its answer does not match the json_schema sent: "
                                   + "; ".join(errs[:5]), etype="fake_schema_mismatch")
        text = answer if isinstance(answer, str) else json.dumps(answer)
        content: Any = text
        refusal = None
        finish = "stop"
        if mode == "fenced":
            content = f"```json\n{json.dumps(answer, indent=2) if not isinstance(answer, str) else text}\n```"
        elif mode == "prose":
            content = f"Sure! Here is the result you asked for:\n{text}\nLet me know if you need changes."
        elif mode == "parts":
            content = [{"type": "text", "text": text[: len(text) // 2]}, {"type": "text", "text": text[len(text) // 2:]}]
        elif mode == "invalid" or (mode == "invalid_once" and not is_repair):
            content = "Here is the plan: " + text[: max(1, len(text) // 2)]
        elif mode == "schema_invalid_once" and not is_repair:
            content = json.dumps({"design": "a poster", "adherence": "high"})
        elif mode == "length":
            content, finish = text[: max(1, len(text) // 3)], "length"
        elif mode == "refusal":
            content, refusal = None, "I'm sorry, but I can't help with that request."
        elif mode == "content_filter":
            content, finish = None, "content_filter"
        elif mode == "empty":
            content = ""
        if fault is not None and fault.kind == "no_image":
            content = None
        model = str(options.get("model") or body["model"])
        completion_tokens = max(1, len(text) // 4)
        prompt_tokens = max(1, sum(len(m["text"]) for m in messages) // 4) + 85 * len(images)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        ident, created = f"chatcmpl-fake{n:06d}", int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _stream(ident, created, model, content, refusal, finish, usage if include_usage else None),
                media_type="text/event-stream", headers={"cache-control": "no-cache"})
        message = {"role": "assistant", "content": content, "refusal": refusal}
        payload = {"id": ident, "object": "chat.completion", "created": created, "model": model,
                   "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                   "usage": usage, "system_fingerprint": "fp_fake"}
        if fault is not None and fault.kind == "truncated":
            data = json.dumps(payload)
            return Response(data[: len(data) // 2], media_type="application/json")
        return JSONResponse(payload)

    async def models(request: Request) -> Response:
        name = str(options.get("model") or "fake")
        return JSONResponse({"object": "list", "data": [{"id": name, "object": "model", "created": 0,
                                                         "owned_by": "pixloop-fake"}]})

    routes = [Route(p, completions, methods=["POST"]) for p in ("/v1/chat/completions", "/chat/completions")]
    routes += [Route(p, models, methods=["GET"]) for p in ("/v1/models", "/models")]

    async def guard(request: Request) -> Response | None:  # the same auth and faults as completions
        if options.get("api_key") and request.headers.get("authorization") != f"Bearer {options['api_key']}":
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        fault = faults.next()
        await apply_delay(faults, fault)
        return _fault_response(fault) if fault is not None and fault.kind != "slow" else None

    routes += [Route(p, moderation_handler(options, log, guard), methods=["POST"]) for p in ("/v1/moderations", "/moderations")]
    app = Starlette(routes=routes)
    app.state.requests = log
    app.state.images = images_seen
    app.state.options = options
    return app


def _fault_response(fault: Fault) -> Response | None:
    kind = fault.kind
    if kind == "429":
        wait = fault.value if fault.value is not None else 1.0
        return _error(429, f"Rate limit reached for requests. Please try again in {wait:g}s.", etype="requests",
                      code="rate_limit_exceeded", headers={"retry-after": f"{wait:g}",
                                                           "x-ratelimit-remaining-requests": "0",
                                                           "x-ratelimit-reset-requests": f"{wait:g}s"})
    if kind == "500":
        return _error(500, "The server had an error while processing your request. Sorry about that!",
                      etype="server_error")
    if kind == "503":
        return _error(503, "The server is overloaded or not ready yet.", etype="server_error")
    if kind == "quota":
        return _error(429, "You exceeded your current quota, please check your plan and billing details.",
                      etype="insufficient_quota", code="insufficient_quota")
    if kind == "safety":
        return _error(400, "The response was filtered due to the prompt triggering content management policy.",
                      code="content_filter")
    if kind == "malformed":
        return Response('{"id": "chatcmpl-x", "choices": [{"message": ', media_type="application/json")
    if kind == "html":
        return HTMLResponse("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
                            "</h1></center><hr><center>nginx</center></body></html>", status_code=502)
    if kind == "reset":
        return _Reset()  # type: ignore[return-value]
    return None


async def _stream(ident: str, created: int, model: str, content: Any, refusal: str | None, finish: str,
                  usage: dict[str, int] | None) -> AsyncIterator[bytes]:
    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                 "system_fingerprint": "fp_fake", "choices": choices, **extra}
        if usage is not None and "usage" not in extra:
            chunk["usage"] = None
        return f"data: {json.dumps(chunk)}\n\n".encode()

    yield event([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None,
                  "finish_reason": None}])
    text = "".join(p.get("text", "") for p in content) if isinstance(content, list) else (content or "")
    for i in range(0, len(text), 24):
        yield event([{"index": 0, "delta": {"content": text[i:i + 24]}, "logprobs": None, "finish_reason": None}])
    if refusal:
        yield event([{"index": 0, "delta": {"refusal": refusal}, "logprobs": None, "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}])
    if usage is not None:
        yield event([], usage=usage)
    yield b"data: [DONE]\n\n"


__all__ = [
    "JUDGE_SCHEMA", "PLAN_SCHEMA", "STORY_SCHEMA", "conforms", "create_app", "judge_answer", "plan_answer",
    "read_messages", "rewrite_answer", "strict_problems",
]
