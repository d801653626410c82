"""Chat clients: request shapes per flavour, defensive JSON with one repair, precise errors, SDK fidelity."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from typing import Any

import pytest
from PIL import Image
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agent.llm import (
    ChatMessage,
    GeminiChatClient,
    LLMBlocked,
    LLMOutputError,
    LLMRefusal,
    LLMTruncated,
    OpenAIChatClient,
    complete_sync,
    data_url,
    detect_flavour,
    make_chat_client,
    run_sync,
    strict_schema,
)
from agent.llm.json_output import complete_json, extract_json
from agent.models.errors import AuthError, BadRequest, MalformedResponse, QuotaExhausted, RateLimited
from agent.runtime.http import HttpSettings
from agent.testing.fakes import FakeServer, FaultPlan
from agent.testing.fakes.chat import create_app, strict_problems
from critics.vlm import JudgeReply

FAST = HttpSettings(connect_timeout=2, read_timeout=2, max_attempts=3, backoff_initial=0.01, backoff_max=0.05,
                    total_timeout=20)
RED = Image.new("RGB", (24, 16), (200, 30, 30))
RED.paste((250, 250, 250), (0, 0, 12, 8))


class Verdictish(BaseModel):
    score: float = Field(ge=0, le=10)
    issues: list[str]


def serve(**options: Any) -> tuple[FakeServer, Any]:
    app = create_app(FaultPlan.parse(options.pop("faults", [])), **options)
    return FakeServer(app).start(), app


def client(url: str, flavour: str = "vllm", **kw: Any) -> OpenAIChatClient:
    return OpenAIChatClient(url + "/v1", "fake-vlm", flavour=flavour, settings=kw.pop("settings", FAST), **kw)


def ask_json(c: OpenAIChatClient, model: type[BaseModel] = JudgeReply, name: str = "pixloop_judge"):
    async def go():
        try:
            return await complete_json(c, [ChatMessage("user", "Judge this", [RED])], model, schema_name=name)
        finally:
            await c.aclose()

    return run_sync(go)


# --------------------------------------------------------------------------- request shapes


def test_openai_client_sends_images_as_data_urls_and_a_strict_json_schema() -> None:
    srv, app = serve()
    try:
        reply, result = ask_json(client(srv.url))
    finally:
        srv.stop()
    body = app.state.requests.items[0].body
    user = body["messages"][0]
    assert user["content"][0] == {"type": "text", "text": "Judge this"}
    url = user["content"][1]["image_url"]["url"]
    assert user["content"][1]["type"] == "image_url" and url.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (24, 16)
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "pixloop_judge"
    assert fmt["json_schema"]["strict"] is True and strict_problems(fmt["json_schema"]["schema"]) == []
    assert app.state.images == [{"mime": "image/png", "width": 24, "height": 16}]
    assert reply.adherence > 5 and result.usage["total_tokens"] > 0 and result.parsed["adherence"] == reply.adherence


@pytest.mark.parametrize("flavour, field", [
    ("openai", "max_completion_tokens"), ("vllm", "max_tokens"), ("ollama", "max_tokens"),
    ("lmstudio", "max_tokens"), ("gemini-compat", "max_tokens"),
])
def test_token_limit_field_depends_on_the_flavour(flavour: str, field: str) -> None:
    c = OpenAIChatClient("http://127.0.0.1:9/v1", "m", flavour=flavour)
    body = c.request_body([ChatMessage("system", "be brief"), ChatMessage("user", "hi")], max_tokens=77)
    other = ({"max_tokens", "max_completion_tokens"} - {field}).pop()
    assert body[field] == 77 and other not in body
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def test_a_reasoning_model_rejecting_max_tokens_is_a_bad_request_but_openai_flavour_passes(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123456")
    srv, app = serve(reject_max_tokens=True)
    try:
        with pytest.raises(BadRequest, match="max_completion_tokens"):
            complete_sync(client(srv.url, "vllm"), [ChatMessage("user", "hi")])
        result = complete_sync(client(srv.url, "openai"), [ChatMessage("user", "hi")])
    finally:
        srv.stop()
    assert result.text == "ok: hi" and len(app.state.requests.items) == 2


@pytest.mark.parametrize("url, flavour", [
    ("https://api.openai.com/v1", "openai"), ("http://localhost:11434/v1", "ollama"),
    ("http://127.0.0.1:1234/v1", "lmstudio"), ("http://gpu-box:8000/v1", "vllm"),
    ("https://generativelanguage.googleapis.com/v1beta/openai/", "gemini-compat"),
    ("https://generativelanguage.googleapis.com/v1beta", "gemini"),
])
def test_flavour_is_detected_from_the_base_url(url: str, flavour: str) -> None:
    assert detect_flavour(url) == flavour
    expected = GeminiChatClient if flavour == "gemini" else OpenAIChatClient
    assert isinstance(make_chat_client(url, "m"), expected)


def test_strict_schema_inlines_refs_requires_every_property_and_makes_optional_ones_nullable() -> None:
    class Inner(BaseModel):
        title: str
        note: str | None = None

    class Outer(BaseModel):
        items: list[Inner]
        count: int = 3

    schema = strict_schema(Outer.model_json_schema())
    assert "$defs" not in json.dumps(schema) and strict_problems(schema) == []
    assert schema["required"] == ["items", "count"] and schema["properties"]["count"]["type"] == ["integer", "null"]
    inner = schema["properties"]["items"]["items"]
    assert inner["required"] == ["title", "note"] and inner["additionalProperties"] is False
    assert "title" in inner["properties"], "a property named 'title' is data, not a keyword to drop"
    assert strict_schema(schema) == schema


def test_images_are_sniffed_and_only_user_turns_may_carry_them() -> None:
    buf = io.BytesIO()
    RED.save(buf, "JPEG")
    assert data_url(buf.getvalue()).startswith("data:image/jpeg;base64,")
    assert data_url(Image.new("P", (4, 4))).startswith("data:image/png;base64,")
    with pytest.raises(ValueError, match="not PNG, JPEG"):
        data_url(b"GIF-not-really")
    with pytest.raises(ValueError, match="only be sent on user"):
        OpenAIChatClient("http://x:1/v1", "m").request_body([ChatMessage("system", "s", [RED])])


# --------------------------------------------------------------------------- defensive JSON


@pytest.mark.parametrize("text", [
    '{"a": 1}', '```json\n{"a": 1}\n```', 'Sure! Here it is:\n```\n{"a": 1}\n```\nAnything else?',
    'The answer is {"a": 1} as requested.', '<think>the user wants {"b": 2}?</think>{"a": 1}',
    '```json\n{"a": 1}',
])
def test_extract_json_strips_fences_reasoning_and_prose(text: str) -> None:
    assert extract_json(text) == {"a": 1}


def test_extract_json_names_what_came_instead() -> None:
    with pytest.raises(ValueError, match="no JSON object in the reply: 'I cannot do that'"):
        extract_json("I cannot do that")


@pytest.mark.parametrize("mode", ["fenced", "prose", "parts"])
def test_fenced_prose_and_content_part_replies_parse_without_a_retry(mode: str) -> None:
    srv, app = serve(mode=mode)
    try:
        reply, _ = ask_json(client(srv.url))
    finally:
        srv.stop()
    assert isinstance(reply, JudgeReply) and len(app.state.requests.items) == 1


def test_invalid_json_gets_exactly_one_repair_retry_with_the_error() -> None:
    srv, app = serve(mode="invalid_once")
    try:
        reply, _ = ask_json(client(srv.url))
    finally:
        srv.stop()
    first, second = (r.body["messages"] for r in app.state.requests.items)
    assert reply.consistency > 0 and len(first) == 1 and len(second) == 3
    assert second[1]["role"] == "assistant" and second[1]["content"].startswith("Here is the plan")
    assert "Reply with JSON only" in second[2]["content"]


def test_a_reply_that_fails_validation_is_repaired_with_the_field_errors() -> None:
    srv, app = serve(mode="schema_invalid_once")
    try:
        reply, _ = ask_json(client(srv.url))
    finally:
        srv.stop()
    repair = app.state.requests.items[1].body["messages"][-1]["content"]
    assert "adherence: Input should be a valid number" in repair and "consistency: Field required" in repair
    assert reply.adherence > 0


def test_json_that_stays_invalid_raises_llm_output_error_after_two_requests() -> None:
    srv, app = serve(mode="invalid")
    try:
        with pytest.raises(LLMOutputError, match=r"pixloop_judge reply is not valid JSON for the schema after one "
                                                 r"repair retry") as e:
            ask_json(client(srv.url))
    finally:
        srv.stop()
    assert len(app.state.requests.items) == 2 and e.value.errors


# --------------------------------------------------------------------------- precise errors


def test_refusal_is_an_llm_refusal_with_the_models_words() -> None:
    srv, _ = serve(mode="refusal")
    try:
        with pytest.raises(LLMRefusal, match="refused: I'm sorry") as e:
            ask_json(client(srv.url))
    finally:
        srv.stop()
    assert e.value.refusal.startswith("I'm sorry")


def test_finish_reason_length_is_llm_truncated_not_a_repair() -> None:
    srv, app = serve(mode="length")
    try:
        with pytest.raises(LLMTruncated, match="finish_reason 'length', max_tokens 1024"):
            ask_json(client(srv.url))
    finally:
        srv.stop()
    assert len(app.state.requests.items) == 1


@pytest.mark.parametrize("mode, message", [
    ("vllm_error", "HTTP 400: 400 BadRequestError The model does not support image input"),
    ("nested_error", "maximum context length is 4096 tokens"),
])
def test_vllm_flat_and_nested_error_bodies_are_bad_requests_with_the_message(mode: str, message: str) -> None:
    srv, app = serve(mode=mode)
    try:
        with pytest.raises(BadRequest, match=message):
            complete_sync(client(srv.url), [ChatMessage("user", "hi")])
    finally:
        srv.stop()
    assert len(app.state.requests.items) == 1, "a 400 is never retried"


@pytest.mark.parametrize("fault", ["429=0.05", "500", "503", "html", "reset", "slow=0.8"])
def test_transient_faults_are_retried_then_succeed(fault: str) -> None:
    srv, app = serve(faults=[fault])
    try:
        settings = FAST.model_copy(update={"read_timeout": 0.4})
        result = complete_sync(client(srv.url, settings=settings), [ChatMessage("user", "hello there")])
    finally:
        srv.stop()
    assert result.text == "ok: hello there" and len(app.state.requests.items) == 2


def test_persistent_429_is_rate_limited_after_max_attempts() -> None:
    srv, app = serve(faults=["429=0.01*5"])
    try:
        with pytest.raises(RateLimited, match=r"rate_limit_exceeded .*\(after 3 attempts\)"):
            complete_sync(client(srv.url), [ChatMessage("user", "hi")])
    finally:
        srv.stop()
    assert len(app.state.requests.items) == 3


@pytest.mark.parametrize("fault, error, match", [
    ("quota", QuotaExhausted, "insufficient_quota"), ("safety", LLMBlocked, "content management policy"),
    ("malformed", MalformedResponse, "expected JSON"), ("truncated", MalformedResponse, "expected JSON"),
    ("no_image", LLMOutputError, "empty answer"),
])
def test_permanent_faults_raise_precise_errors_without_retrying(fault: str, error: type, match: str) -> None:
    srv, app = serve(faults=[fault])
    try:
        with pytest.raises(error, match=match):
            complete_sync(client(srv.url), [ChatMessage("user", "hi")])
    finally:
        srv.stop()
    assert len(app.state.requests.items) == 1


def test_content_filter_finish_reason_is_blocked() -> None:
    srv, _ = serve(mode="content_filter")
    try:
        with pytest.raises(LLMBlocked, match="content filter"):
            complete_sync(client(srv.url), [ChatMessage("user", "hi")])
    finally:
        srv.stop()


def test_keys_are_required_for_openai_optional_for_local_servers_and_never_leak(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    srv, app = serve(api_key="sk-local-secret-999")
    try:
        with pytest.raises(AuthError, match="set OPENAI_API_KEY"):
            complete_sync(client(srv.url, "openai"), [ChatMessage("user", "hi")])
        with pytest.raises(AuthError, match="invalid_api_key") as e:
            complete_sync(client(srv.url, "vllm"), [ChatMessage("user", "hi")])
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-secret-999")
        assert complete_sync(client(srv.url, "vllm"), [ChatMessage("user", "hi")]).text == "ok: hi"
    finally:
        srv.stop()
    assert "authorization" not in app.state.requests.items[0].headers
    assert app.state.requests.items[-1].headers["authorization"] == "***"
    assert "sk-local" not in str(e.value)


def test_the_openai_client_can_be_used_concurrently_from_threads() -> None:
    import concurrent.futures

    srv, app = serve()
    c = client(srv.url)
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            texts = list(pool.map(lambda i: complete_sync(c, [ChatMessage("user", f"n{i}")]).text, range(8)))
    finally:
        srv.stop()
    assert texts == [f"ok: n{i}" for i in range(8)] and c.usage.requests == 8 and c._https == {}


# --------------------------------------------------------------------------- official SDK fidelity


def _sdk(url: str):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(api_key="x", base_url=url + "/v1", max_retries=0, _strict_response_validation=True)


def _image_messages() -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "Judge this render"},
                                         {"type": "image_url", "image_url": {"url": data_url(RED), "detail": "high"}}]}]


def test_official_openai_sdk_accepts_the_fakes_json_schema_answer() -> None:
    srv, app = serve()
    try:
        sdk = _sdk(srv.url)
        fmt = {"type": "json_schema", "json_schema": {"name": "pixloop_judge", "strict": True,
                                                      "schema": strict_schema(JudgeReply.model_json_schema())}}
        resp = sdk.chat.completions.create(model="fake", messages=_image_messages(), response_format=fmt,
                                           max_completion_tokens=300)
        parsed = sdk.chat.completions.parse(model="fake", messages=_image_messages(), response_format=Verdictish)
    finally:
        srv.stop()
    reply = JudgeReply.model_validate_json(resp.choices[0].message.content)
    assert resp.choices[0].finish_reason == "stop" and resp.usage.total_tokens > 0 and reply.adherence > 5
    assert isinstance(parsed.choices[0].message.parsed, Verdictish), "the SDK's own strict schema is accepted"
    assert app.state.requests.items[1].body["response_format"]["json_schema"]["name"] == "Verdictish"


def test_official_openai_sdk_streams_the_answer_ending_with_done() -> None:
    srv, _ = serve()
    try:
        stream = _sdk(srv.url).chat.completions.create(
            model="fake", messages=_image_messages(), stream=True, stream_options={"include_usage": True},
            response_format={"type": "json_schema", "json_schema": {
                "name": "pixloop_judge", "strict": True, "schema": strict_schema(JudgeReply.model_json_schema())}})
        chunks = list(stream)
    finally:
        srv.stop()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert JudgeReply.model_validate_json(text).adherence > 5 and len(chunks) > 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_official_openai_sdk_sees_the_refusal_and_the_raw_sse_ends_with_done() -> None:
    import httpx

    srv, _ = serve(mode="refusal")
    try:
        resp = _sdk(srv.url).chat.completions.create(model="fake", messages=_image_messages())
        raw = httpx.post(srv.url + "/v1/chat/completions", json={"model": "fake", "stream": True,
                                                                  "messages": [{"role": "user", "content": "x"}]})
    finally:
        srv.stop()
    assert resp.choices[0].message.content is None and resp.choices[0].message.refusal.startswith("I'm sorry")
    assert raw.headers["content-type"].startswith("text/event-stream") and raw.text.endswith("data: [DONE]\n\n")


# --------------------------------------------------------------------------- native Gemini


class GeminiScript:
    """A tiny generateContent server: records bodies and plays scripted (status, body) replies."""

    def __init__(self, *replies: tuple[int, Any]):
        self.replies = list(replies)
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

        async def generate(request: Request) -> JSONResponse:
            self.bodies.append(await request.json())
            self.headers.append(dict(request.headers))
            status, body = self.replies.pop(0) if self.replies else (200, _gemini_text('{"score": 7, "issues": []}'))
            return JSONResponse(body, status_code=status)

        self.app = Starlette(routes=[Route("/v1beta/models/{rest:path}", generate, methods=["POST"])])


def _gemini_text(text: str, finish: str = "STOP") -> dict[str, Any]:
    return {"candidates": [{"index": 0, "finishReason": finish, "content": {"role": "model", "parts": [
        {"text": "Let me look at the image first.", "thought": True}, {"text": text}]}}],
        "usageMetadata": {"promptTokenCount": 300, "candidatesTokenCount": 20, "thoughtsTokenCount": 12,
                          "totalTokenCount": 332}, "modelVersion": "gemini-3.1-flash"}


def _gemini_call(script: GeminiScript, monkeypatch, schema: bool = True):
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-test-key-123")
    with FakeServer(script.app) as srv:
        c = GeminiChatClient(srv.url, "gemini-3.1-flash", settings=FAST)
        messages = [ChatMessage("system", "You are a critic."), ChatMessage("user", "Score it", [RED])]
        if schema:
            async def go():
                try:
                    return await complete_json(c, messages, Verdictish, schema_name="critique")
                finally:
                    await c.aclose()
            return run_sync(go)
        return complete_sync(c, messages)


def test_gemini_client_sends_inline_data_system_instruction_and_json_schema(monkeypatch) -> None:
    script = GeminiScript()
    reply, result = _gemini_call(script, monkeypatch)
    body = script.bodies[0]
    assert body["systemInstruction"] == {"parts": [{"text": "You are a critic."}]}
    parts = body["contents"][0]["parts"]
    assert body["contents"][0]["role"] == "user" and parts[0] == {"text": "Score it"}
    assert parts[1]["inlineData"]["mimeType"] == "image/png"
    assert Image.open(io.BytesIO(base64.b64decode(parts[1]["inlineData"]["data"]))).size == (24, 16)
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json" and config["maxOutputTokens"] == 1024
    assert config["responseJsonSchema"]["required"] == ["score", "issues"]
    assert script.headers[0]["x-goog-api-key"] == "AIza-test-key-123"
    assert reply == Verdictish(score=7, issues=[]) and result.text == '{"score": 7, "issues": []}'
    assert result.usage == {"prompt_tokens": 300, "completion_tokens": 20, "total_tokens": 332, "reasoning_tokens": 12}
    assert result.raw_model == "gemini-3.1-flash" and result.finish_reason == "stop"


def test_gemini_prompt_block_and_safety_finish_are_llm_blocked(monkeypatch) -> None:
    script = GeminiScript((200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}),
                          (200, {"candidates": [{"finishReason": "SAFETY", "safetyRatings": []}]}))
    with pytest.raises(LLMBlocked, match=r"prompt was blocked \(PROHIBITED_CONTENT\)"):
        _gemini_call(script, monkeypatch, schema=False)
    with pytest.raises(LLMBlocked, match=r"answer was blocked \(SAFETY\)") as e:
        _gemini_call(script, monkeypatch, schema=False)
    assert e.value.reason == "SAFETY"


def test_gemini_max_tokens_is_truncated_and_retry_info_is_honoured(monkeypatch) -> None:
    script = GeminiScript((200, _gemini_text('{"score": 7', "MAX_TOKENS")))
    with pytest.raises(LLMTruncated, match="MAX_TOKENS"):
        _gemini_call(script, monkeypatch, schema=False)
    busy = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "slow down", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.05s"}]}}
    script = GeminiScript((429, busy))
    assert _gemini_call(script, monkeypatch, schema=False).text == '{"score": 7, "issues": []}'
    assert len(script.bodies) == 2
    per_day = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel"}]}]}}
    script = GeminiScript((429, per_day))
    with pytest.raises(QuotaExhausted, match="daily quota"):
        _gemini_call(script, monkeypatch, schema=False)
    assert len(script.bodies) == 1


def test_gemini_without_a_key_fails_before_sending(monkeypatch) -> None:
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(AuthError, match="GEMINI_API_KEY"):
        asyncio.run(GeminiChatClient(None, "gemini-3.1-flash").complete([ChatMessage("user", "hi")]))


def test_the_fake_rejects_what_real_servers_reject() -> None:
    import httpx

    from agent.testing.fakes import create_fake_app

    with pytest.raises(ValueError, match="unknown chat fake mode"):
        create_app(FaultPlan(), mode="nonsense")
    loose = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"]}
    bad = [
        ({"messages": [{"role": "user", "content": "x"}]}, "you must provide a model"),
        ({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}, "send a base64 data URL"),
        ({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}, "invalid image data"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {
            "type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": loose}}},
         "'additionalProperties' is required to be supplied and to be false"),
    ]
    with FakeServer(create_fake_app("chat")) as srv:
        for body, message in bad:
            resp = httpx.post(srv.url + "/v1/chat/completions", json=body)
            assert resp.status_code == 400 and message in resp.json()["error"]["message"], resp.text
        models = httpx.get(srv.url + "/v1/models").json()
    assert models["data"][0]["id"] == "fake"
