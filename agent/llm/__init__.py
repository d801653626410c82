"""Chat clients for the LLM planner, the prompt rewriter and the VLM judge.

One small protocol, `ChatClient.complete(messages, json_schema=...) -> ChatResult`, with two
implementations: `OpenAIChatClient` (OpenAI, vLLM, Ollama, LM Studio, Gemini's OpenAI-compatible
endpoint) and `GeminiChatClient` (native generateContent). Both take images (bytes or PIL) and
go through `agent.backends.http.HttpClient` for timeouts, retries and redaction. Errors are
precise `BackendError` subclasses: `LLMRefusal`, `LLMTruncated`, `LLMBlocked`, `LLMOutputError`.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import copy
import io
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

from PIL import Image

from agent.backends.base import BackendError
from agent.backends.http import ErrorClassifier, HttpClient, HttpSettings, SafetyBlocked, Usage

if TYPE_CHECKING:
    from agent.llm.gemini_chat import GeminiChatClient
    from agent.llm.openai_chat import OpenAIChatClient
    from agent.state import Plan, Verdict

T = TypeVar("T")
Role = Literal["system", "user", "assistant"]
ImageInput = bytes | bytearray | Image.Image


class LLMError(BackendError):
    """A chat model failed to give a usable answer; the message says how."""


class LLMRefusal(LLMError):
    """The model refused (OpenAI `message.refusal`); `refusal` holds its words."""

    def __init__(self, message: str, refusal: str = ""):
        super().__init__(message)
        self.refusal = refusal


class LLMTruncated(LLMError):
    """The answer hit the token limit (finish_reason 'length' / MAX_TOKENS); `text` is the partial answer."""

    def __init__(self, message: str, text: str = ""):
        super().__init__(message)
        self.text = text


class LLMBlocked(LLMError, SafetyBlocked):
    """The provider's safety system blocked the prompt or the answer (content_filter, blockReason)."""


class LLMOutputError(LLMError):
    """The reply is empty, not JSON, or does not validate (after the one repair retry)."""

    def __init__(self, message: str, errors: list[str] | None = None, text: str = ""):
        super().__init__(message)
        self.errors = errors or []
        self.text = text


@dataclass
class ChatMessage:
    """One chat turn; images (PNG/JPEG/WebP bytes or PIL images) go only on user turns."""

    role: Role
    text: str
    images: list[ImageInput] = field(default_factory=list)


@dataclass
class ChatResult:
    """A model's answer: the text, the parsed JSON (when a schema was asked for and it parsed), usage."""

    text: str
    parsed: Any = None
    usage: dict[str, int] = field(default_factory=dict)
    finish_reason: str = "stop"
    raw_model: str = ""


@runtime_checkable
class ChatClient(Protocol):
    model: str

    async def complete(self, messages: list[ChatMessage], *, json_schema: dict[str, Any] | None = None,
                       schema_name: str = "response", temperature: float | None = 0.2,
                       max_tokens: int = 1024) -> ChatResult:
        """One completion; with `json_schema` the server is asked for structured output."""
        ...

    async def aclose(self) -> None:
        """Close the connections this event loop opened."""
        ...


class HttpChat:
    """Shared plumbing of the HTTP chat clients: one HttpClient per event loop, one usage tally.

    Sync callers run each call in a fresh event loop (`complete_sync`); `aclose()` closes and
    forgets only the current loop's connections, so concurrent threads never close each other's.
    """

    def __init__(self, name: str, base_url: str, *, headers: dict[str, str], settings: HttpSettings | None,
                 classifier: ErrorClassifier):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.settings = settings or HttpSettings(read_timeout=120.0)
        self.usage = Usage()
        self._headers = headers
        self._classifier = classifier
        self._https: dict[asyncio.AbstractEventLoop, HttpClient] = {}
        self._lock = threading.Lock()

    def http(self) -> HttpClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            for stale in [lp for lp in self._https if lp.is_closed()]:
                del self._https[stale]
            client = self._https.get(loop)
            if client is None:
                client = HttpClient(self.name, self.base_url, headers=self._headers, settings=self.settings,
                                    classifier=self._classifier)
                client.usage = self.usage
                self._https[loop] = client
            return client

    async def aclose(self) -> None:
        with self._lock:
            client = self._https.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


# --------------------------------------------------------------------------- images


from agent.images import sniff_mime  # noqa: E402  (one implementation, re-exported)


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


# --------------------------------------------------------------------------- schemas

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


# --------------------------------------------------------------------------- construction

Flavour = Literal["openai", "vllm", "ollama", "lmstudio", "gemini-compat", "gemini"]
FLAVOURS: tuple[str, ...] = Flavour.__args__  # type: ignore[attr-defined]


def detect_flavour(base_url: str) -> str:
    """The server kind from a base URL; any unknown server is treated like vLLM (generic OpenAI-compatible)."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host.endswith("generativelanguage.googleapis.com"):
        return "gemini-compat" if "/openai" in parts.path else "gemini"
    if host.endswith("openai.com"):
        return "openai"
    if parts.port == 11434 or "ollama" in host:
        return "ollama"
    if parts.port == 1234 or "lmstudio" in host:
        return "lmstudio"
    return "vllm"


def llm_settings(options: dict[str, Any] | None) -> HttpSettings:
    """HttpSettings from `llm_`-prefixed options (llm_read_timeout, llm_max_attempts, llm_backoff_initial, ...)."""
    options = options or {}
    fields = {name: options[f"llm_{name}"] for name in HttpSettings.model_fields if f"llm_{name}" in options}
    return HttpSettings(**{"read_timeout": 120.0, **fields})


def make_chat_client(base_url: str, model: str, *, flavour: str | None = None, api_key: str | None = None,
                     settings: HttpSettings | None = None) -> ChatClient:
    """The right client for an endpoint: native Gemini for generativelanguage URLs, OpenAI-compatible otherwise."""
    flavour = flavour or detect_flavour(base_url)
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown chat flavour {flavour!r}; choose one of {', '.join(FLAVOURS)}")
    if flavour == "gemini":
        from agent.llm.gemini_chat import GeminiChatClient

        return GeminiChatClient(base_url, model, api_key=api_key, settings=settings)
    from agent.llm.openai_chat import OpenAIChatClient

    return OpenAIChatClient(base_url, model, api_key=api_key, flavour=flavour, settings=settings)


def client_from_config(config: Any) -> ChatClient:
    """A chat client from a PixloopConfig's llm_base_url / llm_model (and llm_* options)."""
    if not getattr(config, "llm_base_url", None) or not getattr(config, "llm_model", None):
        raise LLMError("no chat model configured: set llm_base_url and llm_model "
                       "(e.g. http://localhost:11434/v1 and a vision model id)")
    options = getattr(config, "options", None) or {}
    return make_chat_client(config.llm_base_url, config.llm_model, flavour=options.get("llm_flavour"),
                            settings=llm_settings(options))


# --------------------------------------------------------------------------- sync bridge


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from sync code (graph nodes run in worker threads); safe when a loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()  # type: ignore[arg-type]


def complete_sync(client: ChatClient, messages: list[ChatMessage], **kwargs: Any) -> ChatResult:
    """`client.complete` from sync code; the connections opened for it are closed afterwards."""

    async def go() -> ChatResult:
        try:
            return await client.complete(messages, **kwargs)
        finally:
            await client.aclose()

    return run_sync(go)


# --------------------------------------------------------------------------- prompt rewriting


def spell_out(word: str) -> str:
    """'HELLO' -> 'H-E-L-L-O' (how image models are best told a spelling)."""
    return "-".join(ch for ch in word if not ch.isspace())


def _ocr_spelling(verdicts: list[Verdict]) -> list[str]:
    lines: list[str] = []
    for v in verdicts:
        if v.critic != "ocr":
            continue
        for el in v.evidence.get("elements", []) or []:
            for pair in el.get("wrong_words", []) or []:
                if len(pair) != 2:
                    continue
                read, expected = pair
                line = (f'- OCR read "{read}" where the image must say "{expected}": spell it {spell_out(expected)}'
                        if read else f'- the word "{expected}" is missing: spell it {spell_out(expected)}')
                if line not in lines:
                    lines.append(line)
    return lines


def _clean_rewrite(text: str) -> str:
    from agent.llm.json_output import strip_reasoning

    s = strip_reasoning(text).strip()
    fence = re.fullmatch(r"```[a-zA-Z]*\s*\n?(.*?)\n?```", s, flags=re.DOTALL)
    if fence:
        s = fence.group(1).strip()
    s = re.sub(r"^(?:new |improved |rewritten )?prompt\s*:\s*", "", s, flags=re.IGNORECASE).strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'" and s.count(s[0]) == 2:
        s = s[1:-1].strip()
    return s


async def rewrite_prompt(client: ChatClient, prompt: str, verdicts: list[Verdict], plan: Plan, *,
                         temperature: float | None = 0.3, max_tokens: int = 1024) -> str:
    """A better generation prompt written by the model from the failing verdicts' feedback.

    Exact required text is given in quotes and misspelt words (the OCR verdict's
    `elements[].wrong_words` pairs [read, expected]) letter by letter. The reply is plain text;
    any required string the model dropped is appended verbatim, so the rewrite never loses text.
    """
    from prompts import render

    failing = sorted((v for v in verdicts if not v.passed), key=lambda v: v.score)
    problems = [f"- {v.critic} scored {v.score:.2f} (needs {v.threshold:.2f}): {v.feedback or 'no details'}"
                for v in failing] or ["- none reported; make the image crisper and closer to the brief"]
    spelling = _ocr_spelling(failing)
    required = [e.content for e in plan.text]
    user = render("rewrite_prompt", prompt=prompt, problems="\n".join(problems),
                  spelling=("Spelling to enforce:\n" + "\n".join(spelling)) if spelling else "",
                  required_text=", ".join(f'"{t}"' for t in required) or "(no text in this image)")
    result = await client.complete([ChatMessage("user", user)], temperature=temperature, max_tokens=max_tokens)
    rewritten = _clean_rewrite(result.text)
    if not rewritten:
        raise LLMOutputError("the prompt rewrite came back empty", text=result.text)
    missing = [t for t in required if t not in rewritten]
    if missing:
        rewritten += "\nThe image must contain exactly this text: " + "; ".join(f'"{t}"' for t in missing) + "."
    return rewritten


def __getattr__(name: str) -> Any:
    if name == "OpenAIChatClient":
        from agent.llm.openai_chat import OpenAIChatClient

        return OpenAIChatClient
    if name == "GeminiChatClient":
        from agent.llm.gemini_chat import GeminiChatClient

        return GeminiChatClient
    raise AttributeError(name)


__all__ = [
    "ChatClient", "ChatMessage", "ChatResult", "FLAVOURS", "GeminiChatClient", "HttpChat", "LLMBlocked", "LLMError",
    "LLMOutputError", "LLMRefusal", "LLMTruncated", "OpenAIChatClient", "client_from_config", "complete_sync",
    "data_url", "detect_flavour", "downscale", "image_payload", "llm_settings", "make_chat_client", "rewrite_prompt",
    "run_sync", "sniff_mime", "spell_out", "strict_schema",
]
