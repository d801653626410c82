"""Defensive JSON from chat models: strip fences and prose, validate with pydantic, repair once.

Servers that honour `json_schema` still send ```json fences (Ollama, some vLLM chat templates),
`<think>` blocks (reasoning models) or a sentence before the object. `extract_json` takes the
first JSON value it can decode; `complete_json` validates it against a pydantic model and, on
failure, asks exactly once more with the errors and "reply with JSON only", then raises
`LLMOutputError` naming the validation errors.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypedDict, TypeVar

from pydantic import BaseModel, ValidationError

from agent.llm.base import ChatClient, ChatMessage, ChatResult
from agent.models.errors import LLMOutputError, PixloopError

M = TypeVar("M", bound=BaseModel)

_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON)?[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
MAX_START_TRIES = 32
REPAIR = ("Your previous reply could not be used: {errors}\n"
          "Reply with JSON only: one object matching the schema, no prose, no code fences.")


class JsonNotFound(PixloopError, ValueError):
    """No decodable JSON value in the text."""


def strip_reasoning(text: str) -> str:
    """Drop <think>...</think> blocks that reasoning models put before the answer."""
    text = _THINK.sub("", text)
    if "</think>" in text:  # an opening tag eaten by the chat template
        text = text.rsplit("</think>", 1)[1]
    return text


def extract_json(text: str) -> Any:
    """The first JSON object/array in a reply: whole text, fenced blocks, or after leading prose."""
    s = strip_reasoning(text or "").strip().lstrip("\ufeff")
    if not s:
        raise JsonNotFound("the reply is empty")
    candidates = [m.group(1).strip() for m in _FENCE.finditer(s)] + [s]
    decoder = json.JSONDecoder()
    for cand in candidates:
        try:
            return json.loads(cand)
        except ValueError:
            pass
        for i, m in enumerate(re.finditer(r"[{\[]", cand)):
            if i >= MAX_START_TRIES:
                break
            try:
                value, _ = decoder.raw_decode(cand, m.start())
            except ValueError:
                continue
            if isinstance(value, (dict, list)):
                return value
    snippet = re.sub(r"\s+", " ", s)[:160]
    raise JsonNotFound(f"no JSON object in the reply: {snippet!r}")


def describe_errors(error: Exception) -> list[str]:
    """Readable problems: 'text.0.region.w: Input should be greater than 0' per pydantic error."""
    if isinstance(error, ValidationError):
        out = []
        for e in error.errors():
            loc = ".".join(str(x) for x in e["loc"]) or "(root)"
            out.append(f"{loc}: {e['msg']}")
        return out
    return [str(error)]


def parse_reply(text: str, model: type[M]) -> M:
    """Extract and validate; raises JsonNotFound or ValidationError (both ValueErrors)."""
    return model.model_validate(extract_json(text))


class _CompleteOptions(TypedDict):
    """The keyword arguments of `ChatClient.complete` that complete_json passes on both tries."""

    json_schema: dict[str, Any] | None
    schema_name: str
    temperature: float | None
    max_tokens: int


async def complete_json(client: ChatClient, messages: list[ChatMessage], model: type[M], *, schema_name: str,
                        json_schema: dict[str, Any] | None = None, temperature: float | None = 0.2,
                        max_tokens: int = 1024) -> tuple[M, ChatResult]:
    """Ask for `model` as structured output; one repair retry on unusable JSON, then LLMOutputError."""
    schema = json_schema or model.model_json_schema()
    kwargs: _CompleteOptions = {"json_schema": schema, "schema_name": schema_name, "temperature": temperature,
                                "max_tokens": max_tokens}
    result = await client.complete(messages, **kwargs)
    try:
        return parse_reply(result.text, model), result
    except ValueError as e:
        first = describe_errors(e)
    repair = [*messages, ChatMessage("assistant", result.text[:8000] or "(empty)"),
              ChatMessage("user", REPAIR.format(errors="; ".join(first[:12])))]
    result = await client.complete(repair, **kwargs)
    try:
        return parse_reply(result.text, model), result
    except ValueError as e:
        errors = describe_errors(e)
    shown = "; ".join(errors[:6]) + (f" (+{len(errors) - 6} more)" if len(errors) > 6 else "")
    raise LLMOutputError(f"{client.model}: the {schema_name} reply is not valid JSON for the schema "
                         f"after one repair retry: {shown}", errors=errors, text=result.text)


__all__ = [
    "JsonNotFound", "REPAIR", "complete_json", "describe_errors", "extract_json", "parse_reply", "strip_reasoning",
]
