"""The gemini backend against its loopback fake: wire format, parsing, every outcome, the official SDK, the loop."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from agent.backends.base import GenerationRequest, parse_options
from agent.backends.gemini import (
    MODELS,
    PRICE_SOURCE,
    GeminiBackend,
    GeminiOptions,
    classify,
    merge_stream,
    read_answer,
)
from agent.interfaces.cli import main
from agent.models import Plan
from agent.models.errors import (
    AuthError,
    BadRequest,
    MalformedResponse,
    NoImageReturned,
    QuotaExhausted,
    RateLimited,
    SafetyBlocked,
)
from agent.runtime.http import Retryable
from agent.runtime.store import ArtifactStore
from agent.testing.fakes import FakeServer, FaultPlan
from agent.testing.fakes.gemini import create_app

POSTER = 'A bold poster that says "GRAND OPENING"'
FAST = {"backoff_initial": 0.01, "backoff_max": 0.05, "read_timeout": 10, "max_attempts": 3}
GEN = "/v1beta/models/gemini-3.1-flash-image:generateContent"


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


def serve(*faults: str, **options: Any) -> FakeServer:
    app = create_app(FaultPlan.parse(list(faults)), **options)
    return FakeServer(app)


def backend(server: FakeServer, model: str | None = None, **options: Any) -> GeminiBackend:
    return GeminiBackend(model=model, base_url=server.url, options={**FAST, **options})


def plan(ratio: str = "16:9", size: str = "1K") -> Plan:
    return Plan(prompt=POSTER, width=1024, height=576 if ratio == "16:9" else 1024, aspect_ratio=ratio, size=size)


def run(b: GeminiBackend, store: ArtifactStore, **request: Any):
    req = request.pop("req", None) or GenerationRequest(
        plan=request.pop("plan", None) or plan(), seed=request.pop("seed", 7), prompt=request.pop("prompt", POSTER),
        **request)

    async def go():
        try:
            return await b.generate(req, store)
        finally:
            await b.aclose()

    return asyncio.run(go())


def bodies(server: FakeServer) -> list[Any]:
    return [r.body for r in server.app.state.requests.items]


def stored(store: ArtifactStore, colour: str, size: tuple[int, int] = (64, 48), fmt: str = "PNG"):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return store.put_bytes(buf.getvalue(), *size)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore.for_dir(tmp_path / "store")


# --- request building -------------------------------------------------------------------------


def test_request_sends_key_header_model_path_and_image_config_from_the_plan(monkeypatch, store) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-test-key-123")
    with serve(api_key="AIza-test-key-123") as srv:
        result = run(backend(srv), store, plan=plan("16:9", "2K"))
    (req,) = srv.app.state.requests.items
    assert req.path == GEN and "key=" not in req.path
    assert req.headers["x-goog-api-key"] == "***", "the key travels in the header (masked in the log)"
    gen = req.body["generationConfig"]
    assert gen["responseModalities"] == ["TEXT", "IMAGE"]
    assert gen["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    assert req.body["contents"] == [{"role": "user", "parts": [{"text": POSTER}]}]
    assert result.image.size == (2752, 1536), "the documented Gemini 3 size for 16:9 at 2K"
    assert result.meta["model"] == "gemini-3.1-flash-image" and result.meta["image_config"]["imageSize"] == "2K"


def test_model_comes_from_config_and_capabilities_are_declared_per_model(store) -> None:
    class Config:
        model = "gemini-2.5-flash-image"
        base_url = "http://127.0.0.1:9/v1beta"
        options = {"max_attempts": "2", "stream": "false"}

    b = GeminiBackend.from_config(Config())
    assert b.model == "gemini-2.5-flash-image" and b.api_version == "v1beta" and b.base_url == "http://127.0.0.1:9"
    assert b.http.settings.max_attempts == 2
    caps = {m: GeminiBackend(model=m).capabilities for m in MODELS}
    assert caps["gemini-3-pro-image"].max_references == 14 and caps["gemini-3.1-flash-image"].max_references == 14
    assert caps["gemini-2.5-flash-image"].max_references == 3 and caps["gemini-2.5-flash-image"].sizes == ["1K"]
    assert "1:4" in caps["gemini-3.1-flash-image"].aspect_ratios
    assert "1:4" not in caps["gemini-3-pro-image"].aspect_ratios
    assert caps["gemini-3.1-flash-image"].sizes == ["512", "1K", "2K", "4K"]
    assert caps["gemini-3.1-flash-image"].cost_per_image == pytest.approx(0.067, abs=0.001)
    assert caps["gemini-2.5-flash-image"].cost_per_image == pytest.approx(0.039, abs=0.001)
    assert "$120/M" in PRICE_SOURCE and all(c.edit and not c.mask for c in caps.values())
    with pytest.raises(ValueError, match="known options: .*image_size"):
        parse_options(GeminiOptions, {"imagesize": "2K"}, "gemini")


def test_gemini_25_gets_no_image_size_and_31_flash_takes_its_extra_ratios(store) -> None:
    with serve() as srv:
        old = run(backend(srv, "gemini-2.5-flash-image"), store, plan=plan("16:9", "2K"))
        tall = run(backend(srv, aspect_ratio="1:4", image_size="512"), store)
    first, second = bodies(srv)
    assert first["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
    assert old.image.size == (1344, 768), "the 2.5 table, 1K only"
    assert second["generationConfig"]["imageConfig"] == {"aspectRatio": "1:4", "imageSize": "512"}
    assert tall.image.size == (256, 1024)
    with pytest.raises(BadRequest, match="does not support aspect ratio 1:4"):
        run(backend(srv, "gemini-3-pro-image", aspect_ratio="1:4"), store)


def test_references_go_as_inline_data_up_to_the_model_limit_with_a_clear_error_above(store) -> None:
    refs = [stored(store, c) for c in ("red", "green", "blue")]
    refs[2] = stored(store, "blue", fmt="JPEG")
    with serve() as srv:
        run(backend(srv, "gemini-2.5-flash-image"), store, references=refs)
        with pytest.raises(BadRequest, match=r"at most 3 reference images; got 4.*gemini-3.1-flash-image"):
            run(backend(srv, "gemini-2.5-flash-image"), store, references=refs + [stored(store, "white")])
    (body,) = bodies(srv)
    parts = body["contents"][0]["parts"]
    assert parts[0] == {"text": POSTER}
    assert [p["inlineData"]["mimeType"] for p in parts[1:]] == ["image/png", "image/png", "image/jpeg"]
    assert base64.b64decode(parts[3]["inlineData"]["data"]) == store.path(refs[2]).read_bytes()


def test_edit_sends_the_base_image_with_the_instruction_in_one_user_turn(store) -> None:
    base = stored(store, "navy", (320, 180))
    with serve() as srv:
        result = run(backend(srv), store, base_image=base, instruction='Change the headline to "SALE"')
    (body,) = bodies(srv)
    assert len(body["contents"]) == 1
    image, text = body["contents"][0]["parts"]
    assert base64.b64decode(image["inlineData"]["data"]) == store.path(base).read_bytes()
    assert text == {"text": 'Change the headline to "SALE"'}
    assert result.meta["mode"] == "single_turn"


def test_editing_our_own_image_resends_the_model_turn_with_its_thought_signatures(store) -> None:
    async def generate_then_edit(b: GeminiBackend):
        try:
            first = await b.generate(GenerationRequest(plan=plan(), seed=1, prompt=POSTER), store)
            ref = store.put_image(first.image)
            return first, ref, await b.generate(GenerationRequest(
                plan=plan(), seed=1, prompt=POSTER, base_image=ref,
                instruction='Make the headline say "GRAND REOPENING"'), store)
        finally:
            await b.aclose()

    with serve(require_signatures=True) as srv:
        first, ref, edited = asyncio.run(generate_then_edit(backend(srv)))
    answer_turn = first.meta["gemini_turn"]
    sigs = [p["thoughtSignature"] for p in answer_turn["parts"]]
    assert len(sigs) == 2 and all(sigs)
    user, model, instruction = bodies(srv)[1]["contents"]
    assert user == {"role": "user", "parts": [{"text": POSTER}]}
    assert model["role"] == "model"
    assert [p.get("thoughtSignature") for p in model["parts"]] == sigs
    assert model["parts"][0]["text"] == "Here is the image you asked for."
    assert base64.b64decode(model["parts"][1]["inlineData"]["data"]) == store.path(ref).read_bytes()
    assert instruction == {"role": "user", "parts": [{"text": 'Make the headline say "GRAND REOPENING"'}]}
    assert edited.meta["mode"] == "multi_turn" and edited.meta["edit"]["signatures_sent"] == 2
    assert all(not p.get("thought") for p in model["parts"]), "thought parts are not resent"


class HistoryRequest(GenerationRequest):
    """GenerationRequest with the proposed `history` field (earlier turns of a multi-turn edit)."""

    history: list[dict[str, Any]] = []


def test_multi_turn_history_is_resent_turn_by_turn(store) -> None:
    async def three_turns(b: GeminiBackend):
        try:
            one = await b.generate(GenerationRequest(plan=plan(), seed=1, prompt=POSTER), store)
            ref1 = store.put_image(one.image)
            two = await b.generate(GenerationRequest(plan=plan(), seed=1, prompt=POSTER, base_image=ref1,
                                                     instruction="Warmer colours"), store)
            ref2 = store.put_image(two.image)
            history = [{**one.meta["gemini_turn"], "image": ref1}, {**two.meta["gemini_turn"], "image": ref2}]
            await b.generate(HistoryRequest(plan=plan(), seed=1, prompt=POSTER, base_image=ref2,
                                            instruction="Add a border", history=history), store)
            return two
        finally:
            await b.aclose()

    with serve(require_signatures=True) as srv:
        two = asyncio.run(three_turns(backend(srv)))
    contents = bodies(srv)[2]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    assert contents[2]["parts"][0] == {"text": "Warmer colours"}
    assert contents[3]["parts"][-1]["thoughtSignature"] == two.meta["gemini_turn"]["parts"][-1]["thoughtSignature"]
    assert contents[4] == {"role": "user", "parts": [{"text": "Add a border"}]}


def test_the_fake_rejects_a_model_turn_without_its_signature(store) -> None:
    with serve(require_signatures=True) as srv:
        first = run(backend(srv), store)
        ref = store.put_image(first.image)
        forged = [{"user": POSTER, "parts": [{"text": "hi"}, {"image": True, "thoughtSignature": "forged"}],
                   "image": ref}]
        with pytest.raises(BadRequest, match="INVALID_ARGUMENT.*thought_signature"):
            run(backend(srv), store, req=HistoryRequest(plan=plan(), seed=1, prompt=POSTER, instruction="x",
                                                        history=forged))


# --- response parsing --------------------------------------------------------------------------


def _png(colour: str, size: tuple[int, int] = (40, 20), fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def test_gemini_backend_skips_thought_images_and_takes_the_last_image() -> None:
    payload = {"candidates": [{"finishReason": "STOP", "content": {"parts": [
        {"text": "thinking", "thought": True},
        {"inlineData": {"mimeType": "image/png", "data": _png("gray")}, "thought": True},
        {"text": "Two tries:", "thoughtSignature": "s1"},
        {"inlineData": {"mimeType": "image/png", "data": _png("red")}},
        {"inline_data": {"mime_type": "image/png", "data": _png("blue", (30, 30))}, "thought_signature": "s2"},
        {"inlineData": {"mimeType": "image/png", "data": _png("yellow")}, "thought": True}]}}]}
    answer = read_answer(payload, "m")
    assert Image.open(io.BytesIO(answer.image)).getpixel((0, 0)) == (0, 0, 255)
    assert answer.turn_parts == [{"text": "Two tries:", "thoughtSignature": "s1"},
                                 {"image": True, "thoughtSignature": "s2"}]
    assert answer.thoughts_skipped == 3 and answer.text == "Two tries:"


def test_fake_answer_has_thoughts_an_interim_image_text_and_a_signed_final_image(store) -> None:
    with serve() as srv:
        resp = httpx.post(srv.url + GEN, json={"contents": [{"parts": [{"text": POSTER}]}],
                                               "generation_config": {"image_config": {"aspect_ratio": "3:4"}}})
        result = run(backend(srv), store)
    parts = resp.json()["candidates"][0]["content"]["parts"]
    assert [bool(p.get("thought")) for p in parts] == [True, True, False, False]
    interim = Image.open(io.BytesIO(base64.b64decode(parts[1]["inlineData"]["data"])))
    assert max(interim.size) <= 128
    final = Image.open(io.BytesIO(base64.b64decode(parts[3]["inlineData"]["data"])))
    assert final.size == (896, 1200) and parts[3]["thoughtSignature"]
    assert result.image.size == (1376, 768) and result.meta["thought_parts_skipped"] == 2


def test_jpeg_declared_as_png_is_sniffed_and_decoded(store) -> None:
    with serve(mislabel_jpeg=True) as srv:
        result = run(backend(srv), store)
    assert result.meta["mime"] == "image/jpeg" and result.meta["declared_mime"] == "image/png"
    assert result.image.size == (1376, 768) and result.image.mode == "RGB"


def test_usage_becomes_cost_and_meta_usage(store) -> None:
    with serve() as srv:
        result = run(backend(srv, "gemini-3-pro-image"), store, plan=plan("1:1", "2K"))
        lite = run(backend(srv, "gemini-3.1-flash-lite-image"), store, plan=plan("1:1", "4K"))
    usage = result.meta["usage"]
    assert usage["image_tokens"] == 1120 and usage["thoughts_tokens"] > 0 and usage["prompt_tokens"] > 0
    assert result.cost == pytest.approx(1120 * 120 / 1e6) == pytest.approx(0.134, abs=0.001)
    assert lite.image.size == (1024, 1024) and lite.meta["notes"] == ["4K requested; gemini-3.1-flash-lite-image "
                                                                      "makes 1K at most"]
    assert usage["requests"] == 1 and usage["retries"] == 0 and not usage["estimated"]


def test_streaming_answer_is_merged_and_a_cut_stream_is_malformed(store) -> None:
    with serve() as srv:
        result = run(backend(srv, stream=True), store)
    assert srv.app.state.requests.items[0].path.endswith(":streamGenerateContent?alt=sse")
    assert result.image.size == (1376, 768) and result.meta["gemini_turn"]["parts"][-1]["thoughtSignature"]
    with serve(stream_cut=True) as srv:
        with pytest.raises(MalformedResponse, match="stream ended mid-event"):
            run(backend(srv, stream=True), store)
    assert merge_stream('data: {"candidates": [{"content": {"parts": [{"text": "a"}]}}]}\n\n')["candidates"][0][
        "content"]["parts"] == [{"text": "a"}]


# --- each outcome is distinct --------------------------------------------------------------------


def test_text_only_stop_is_no_image_returned_with_the_models_text(store) -> None:
    with serve("no_image") as srv:
        with pytest.raises(NoImageReturned, match="text only.*I can describe it instead") as info:
            run(backend(srv), store)
    assert info.value.reason == "text_only" and len(srv.app.state.requests.items) == 1


def test_finish_reason_no_image_is_its_own_outcome(store) -> None:
    with serve(finish_reason="NO_IMAGE") as srv:
        with pytest.raises(NoImageReturned, match="NO_IMAGE") as info:
            run(backend(srv), store)
    assert info.value.reason == "NO_IMAGE"


@pytest.mark.parametrize("reason", ["IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "SAFETY", "PROHIBITED_CONTENT"])
def test_safety_finish_reasons_are_safety_blocked_and_not_retried(store, reason) -> None:
    faults = ("safety",) if reason == "IMAGE_SAFETY" else ()
    with serve(*faults, finish_reason=None if faults else reason) as srv:
        with pytest.raises(SafetyBlocked, match=f"refused to return the image: finishReason {reason}") as info:
            run(backend(srv), store)
    assert info.value.reason == reason and len(srv.app.state.requests.items) == 1


def test_blocked_prompt_is_safety_blocked_with_the_block_reason(store) -> None:
    with serve(block_reason="PROHIBITED_CONTENT") as srv:
        with pytest.raises(SafetyBlocked, match=r"blocked the prompt \(PROHIBITED_CONTENT\)") as info:
            run(backend(srv), store)
    assert info.value.reason == "prompt_blocked:PROHIBITED_CONTENT"


def test_429_is_retried_after_google_retry_delay(store) -> None:
    with serve("429=0.4") as srv:
        t0 = time.perf_counter()
        result = run(backend(srv, backoff_initial=0.0, backoff_max=0.0), store)
        elapsed = time.perf_counter() - t0
    assert elapsed >= 0.4, "the wait comes from RetryInfo.retryDelay (the body has no Retry-After header)"
    assert result.meta["usage"]["retries"] == 1 and result.meta["usage"]["requests"] == 2


def test_per_day_quota_is_not_retried(store) -> None:
    with serve("quota*3") as srv:
        with pytest.raises(QuotaExhausted, match="GenerateRequestsPerDayPerProjectPerModel"):
            run(backend(srv), store)
    assert len(srv.app.state.requests.items) == 1


@pytest.mark.parametrize("faults", [("503",), ("500", "503"), ("html",), ("reset",), ("slow=0.6",)])
def test_transient_failures_are_retried_then_succeed(store, faults) -> None:
    with serve(*faults) as srv:
        result = run(backend(srv, read_timeout=0.4), store)
    assert result.image.size == (1376, 768)
    assert result.meta["usage"]["retries"] == len(faults)


def test_persistent_429_is_rate_limited(store) -> None:
    with serve("429=0.01*5") as srv:
        with pytest.raises(RateLimited, match="RESOURCE_EXHAUSTED.*after 3 attempts"):
            run(backend(srv), store)


def test_retired_model_is_a_bad_request_that_says_so(store) -> None:
    with serve() as srv:
        with pytest.raises(BadRequest, match="404.*NOT_FOUND.*gemini-3-pro-image-preview was shut down; use "
                                             "gemini-3-pro-image"):
            run(backend(srv, "gemini-3-pro-image-preview"), store)
        with pytest.raises(BadRequest, match="unknown or retired"):
            run(backend(srv, "gemini-9-ultra-image"), store, plan=plan("1:1"))
    assert len(srv.app.state.requests.items) == 2


def test_bad_key_is_an_auth_error_and_never_leaks(monkeypatch, store) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-wrong-key-999")
    with serve(api_key="AIza-right-key") as srv:
        with pytest.raises(AuthError, match="API_KEY_INVALID|API key not valid") as info:
            run(backend(srv), store)
    assert "AIza-wrong-key-999" not in str(info.value)


def test_missing_key_is_required_only_by_googles_endpoint(store) -> None:
    with pytest.raises(AuthError, match="set GEMINI_API_KEY or GOOGLE_API_KEY"):
        run(GeminiBackend(), store)
    with serve() as srv:
        run(backend(srv), store)
    assert srv.app.state.requests.items[0].headers["x-goog-api-key"] == "***", "a placeholder key is sent"


@pytest.mark.parametrize("fault, match", [("malformed", "expected JSON"), ("truncated", "cannot be decoded")])
def test_malformed_and_truncated_answers_are_malformed_responses(store, fault, match) -> None:
    with serve(fault) as srv:
        with pytest.raises(MalformedResponse, match=match):
            run(backend(srv), store)


def test_wrong_size_fault_delivers_a_half_size_image(store) -> None:
    with serve("wrong_size") as srv:
        assert run(backend(srv), store).image.size == (688, 384)


def test_fake_validates_ratio_size_and_case_like_the_real_api() -> None:
    with serve() as srv:
        def post(model: str, cfg: dict[str, Any]) -> httpx.Response:
            return httpx.post(f"{srv.url}/v1beta/models/{model}:generateContent",
                              json={"contents": [{"parts": [{"text": "x"}]}], "generationConfig": cfg})

        lower = post("gemini-3.1-flash-image", {"imageConfig": {"imageSize": "1k"}})
        pro_512 = post("gemini-3-pro-image", {"imageConfig": {"imageSize": "512"}})
        pro_wide = post("gemini-3-pro-image", {"imageConfig": {"aspectRatio": "8:1"}})
        both = post("gemini-3.1-flash-image", {"thinkingConfig": {"thinkingBudget": 0, "thinkingLevel": "high"}})
        ok = post("gemini-3.1-flash-image", {"responseFormat": {"image": {"aspectRatio": "8:1", "imageSize": "512"}}})
    for resp in (lower, pro_512, pro_wide, both):
        assert resp.status_code == 400 and resp.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "uppercase" in lower.json()["error"]["message"]
    assert ok.status_code == 200


def test_google_error_bodies_are_classified_including_a_list_wrapper() -> None:
    req = httpx.Request("POST", "http://x/v1beta/models/m:generateContent")
    body = [{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "slow down", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}}]
    out = classify(httpx.Response(429, json=body, request=req))
    assert isinstance(out, Retryable) and out.retry_after == 1.5 and isinstance(out.error, RateLimited)
    unavailable = classify(httpx.Response(503, json={"error": {"code": 503, "status": "UNAVAILABLE"}}, request=req))
    assert isinstance(unavailable, Retryable)
    invalid = classify(httpx.Response(400, json={"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                                           "message": "bad ratio"}}, request=req))
    assert isinstance(invalid, BadRequest) and "bad ratio" in str(invalid)
    free = classify(httpx.Response(429, json={"error": {"code": 429, "message": "Quota exceeded, limit: 0"}},
                                   request=req))
    assert isinstance(free, QuotaExhausted)


# --- the official SDK against the fake -----------------------------------------------------------


def _sdk(server: FakeServer):
    from google import genai

    return genai, genai.Client(api_key="test", http_options=genai.types.HttpOptions(base_url=server.url))


def test_official_sdk_accepts_the_fakes_answer_with_image_bytes_and_usage() -> None:
    with serve() as srv:
        genai, client = _sdk(srv)
        types = genai.types
        resp = client.models.generate_content(
            model="gemini-3.1-flash-image", contents=[POSTER],
            config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"],
                                               image_config=types.ImageConfig(aspect_ratio="16:9", image_size="2K")))
    sent = srv.app.state.requests.items[0].body
    assert sent["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    finals = [p for p in resp.candidates[0].content.parts if p.inline_data and not p.thought]
    assert Image.open(io.BytesIO(finals[-1].inline_data.data)).size == (2752, 1536)
    assert finals[-1].thought_signature
    assert resp.usage_metadata.candidates_tokens_details[0].token_count == 1683
    assert resp.usage_metadata.thoughts_token_count > 0


def test_official_sdk_raises_on_429_and_reports_a_blocked_prompt() -> None:
    from google.genai import errors

    with serve("429=2*5") as srv:
        genai, client = _sdk(srv)
        with pytest.raises(errors.ClientError) as info:
            client.models.generate_content(model="gemini-3.1-flash-image", contents=[POSTER])
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
    assert any(d.get("retryDelay") == "2s" for d in info.value.details["error"]["details"])
    with serve(block_reason="PROHIBITED_CONTENT") as srv:
        genai, client = _sdk(srv)
        resp = client.models.generate_content(model="gemini-3.1-flash-image", contents=[POSTER])
    assert resp.candidates is None and resp.prompt_feedback.block_reason.value == "PROHIBITED_CONTENT"


def test_official_sdk_streams_from_the_fake() -> None:
    with serve() as srv:
        genai, client = _sdk(srv)
        chunks = list(client.models.generate_content_stream(model="gemini-3-pro-image", contents=[POSTER]))
    assert 2 <= len(chunks) <= 3
    assert chunks[-1].candidates[0].finish_reason.value == "STOP" and chunks[-1].usage_metadata.total_token_count
    last = chunks[-1].candidates[0].content.parts[-1]
    assert last.thought_signature and Image.open(io.BytesIO(last.inline_data.data)).size == (1024, 1024)


# --- end to end through the CLI -----------------------------------------------------------------


CLI_OPTIONS = ["--backend-option", "backoff_initial=0.01", "--backend-option", "backoff_max=0.05",
               "--backend-option", "read_timeout=10"]


def cli(server: FakeServer, out: Path, prompt: str = POSTER, *extra: str) -> int:
    return main(["run", prompt, "--backend", "gemini", "--base-url", server.url, "--out", str(out), "--quiet",
                 "--thread-id", "t1", *CLI_OPTIONS, *extra])


def candidate_meta(run_dir: Path) -> list[dict[str, Any]]:
    from agent.interfaces.api import open_graph

    async def go():
        async with open_graph(run_dir) as graph:
            snap = await graph.aget_state({"configurable": {"thread_id": "t1"}})
            return [c.meta for c in snap.values["candidates"]]

    return asyncio.run(go())


def test_cli_loop_passes_against_the_fake(tmp_path, capsys) -> None:
    with serve() as srv:
        code = cli(srv, tmp_path / "run")
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["status"] == "passed" and (tmp_path / "run" / "final.png").exists()
    assert report["candidates"][0]["cost"] == pytest.approx(0.067, abs=0.001)


def test_cli_unknown_backend_option_is_bad_input(tmp_path, capsys) -> None:
    code = main(["run", POSTER, "--backend", "gemini", "--base-url", "http://127.0.0.1:9", "--out",
                 str(tmp_path / "run"), "--quiet", "--backend-option", "imagesize=2K"])
    assert code == 2 and "known options:" in capsys.readouterr().err


def test_cli_safety_block_exits_4_with_a_clear_message(tmp_path, capsys) -> None:
    with serve("safety") as srv:
        code = cli(srv, tmp_path / "run")
    err = capsys.readouterr().err
    assert code == 4
    assert "SafetyBlocked" in err and "finishReason IMAGE_SAFETY" in err


def test_cli_429_then_ok_exits_0_with_retries_in_the_candidate_meta(tmp_path, capsys) -> None:
    with serve("429=0.05") as srv:
        code = cli(srv, tmp_path / "run")
    assert code == 0, capsys.readouterr().err
    (meta,) = candidate_meta(tmp_path / "run")
    assert meta["usage"]["retries"] == 1 and meta["usage"]["requests"] == 2
    assert "thoughtSignature" in json.dumps(meta["gemini_turn"])


def test_cli_safety_block_on_iteration_2_is_not_retried_and_delivers_candidate_1(tmp_path, capsys) -> None:
    illegible = 'An elegant minimal poster, subtle tone-on-tone, busy texture, that says "GRAND OPENING"'
    with serve("slow=0.01", "safety") as srv:
        code = cli(srv, tmp_path / "run", illegible)
        generations = [r for r in srv.app.state.requests.items if "generateContent" in r.path]
    err = capsys.readouterr().err
    assert code == 3 and "iteration 2" in err and "IMAGE_SAFETY" in err and "pixloop: backend failure" in err
    assert len(generations) == 2  # the safety block is not asked again
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["status"] == "below_threshold" and report["stop_reason"] == "backend_error"
    assert report["final"]["candidate"] == "c1" and "SafetyBlocked" in report["error"]
    assert [c["id"] for c in report["candidates"]] == ["c1"] and (tmp_path / "run" / "final.png").exists()
