"""The openai backend against the loopback OpenAI Images fake: requests, sizes, edits, costs, errors,
the official SDK's view of the fake, and pixloop's whole loop on top of both."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import io
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from PIL import Image, ImageDraw

from agent.backends.base import GenerationRequest
from agent.backends.openai import (
    PRICES,
    InvalidBackendOption,
    OpenAIBackend,
    choose_size,
    classify_openai_error,
    cost_from_usage,
    flex_size,
    flex_size_ok,
    openai_mask,
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
    ServerError,
    ServiceTimeout,
)
from agent.runtime.http import Retryable
from agent.runtime.store import ArtifactStore
from agent.testing.fakes import FakeServer, FaultPlan
from agent.testing.fakes.openai import create_app

FAST = {"connect_timeout": "2", "read_timeout": "5", "max_attempts": "3", "backoff_initial": "0.01",
        "backoff_max": "0.05", "total_timeout": "30"}
POSTER = 'A bold poster that says "GRAND OPENING"'


@pytest.fixture(autouse=True)
def no_real_key(monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def server():
    faults = FaultPlan()
    app = create_app(faults)
    with FakeServer(app) as srv:
        yield srv, app, faults


@pytest.fixture
def fake(server):
    srv, app, faults = server
    faults.faults.clear()
    app.state.requests.items.clear()
    return SimpleNamespace(url=srv.url, v1=srv.url + "/v1", app=app, faults=faults, log=app.state.requests)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


def plan(width: int = 1024, height: int = 1024, ratio: str = "1:1") -> Plan:
    return Plan(prompt=POSTER, width=width, height=height, aspect_ratio=ratio, size="1K")


def backend(fake, model: str = "gpt-image-2", **options: str) -> OpenAIBackend:
    return OpenAIBackend(model=model, base_url=fake.v1, options={**FAST, **options})


def generate(b: OpenAIBackend, request: GenerationRequest, store=None):
    async def go():
        try:
            return await b.generate(request, store)
        finally:
            await b.aclose()

    return asyncio.run(go())


def request(p: Plan | None = None, **kwargs) -> GenerationRequest:
    return GenerationRequest(plan=p or plan(), seed=0, prompt=POSTER, **kwargs)


def png(size=(512, 512), colour="red") -> Image.Image:
    img = Image.new("RGB", size, colour)
    ImageDraw.Draw(img).ellipse((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill="white")
    return img


# --- request building -------------------------------------------------------------------------


def test_generation_posts_json_with_model_prompt_n_size_quality_and_format(fake) -> None:
    result = generate(backend(fake), request())
    [rec] = fake.log.items
    assert rec.path == "/v1/images/generations"
    assert rec.body == {"model": "gpt-image-2", "prompt": POSTER, "n": 1, "size": "1024x1024", "quality": "auto",
                        "output_format": "png"}
    assert rec.headers["authorization"] == "***"
    assert result.image.size == (1024, 1024) and result.meta["endpoint"] == "generations"


def test_generation_options_reach_the_wire_and_the_format_is_sniffed(fake) -> None:
    b = backend(fake, quality="high", background="opaque", output_format="webp", output_compression="80",
                moderation="low")
    result = generate(b, request())
    body = fake.log.items[0].body
    assert {k: body[k] for k in ("quality", "background", "output_format", "output_compression", "moderation")} == \
        {"quality": "high", "background": "opaque", "output_format": "webp", "output_compression": 80,
         "moderation": "low"}
    assert result.meta["mime"] == "image/webp" and "format_mismatch" not in result.meta


def test_a_bare_base_url_gets_v1_and_a_local_server_gets_sk_local_when_no_key_is_set(store) -> None:
    app = create_app(FaultPlan(), api_key="sk-local")
    with FakeServer(app) as srv:
        result = generate(OpenAIBackend(base_url=srv.url, options=FAST), request())
    assert result.image.size == (1024, 1024) and app.state.requests.paths() == ["/v1/images/generations"]


def test_the_key_comes_from_openai_api_key_at_request_time(monkeypatch) -> None:
    app = create_app(FaultPlan(), api_key="sk-env-key-123456")
    with FakeServer(app) as srv:
        b = OpenAIBackend(base_url=srv.url + "/v1", options=FAST)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-123456")
        assert generate(b, request()).image.size == (1024, 1024)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-654321")
        with pytest.raises(AuthError, match="invalid_api_key") as info:
            generate(b, request())
    assert "sk-wrong-key-654321" not in str(info.value)
    assert len(app.state.requests.items) == 2


def test_missing_key_against_the_real_endpoint_is_a_clear_auth_error_before_any_request() -> None:
    b = OpenAIBackend()
    assert b.base_url == "https://api.openai.com/v1"
    with pytest.raises(AuthError, match="OPENAI_API_KEY is not set"):
        generate(b, request())
    assert b.http.usage.requests == 0


@pytest.mark.parametrize("canvas, expected", [
    ((1024, 1024), (1024, 1024)),
    ((680, 1024), (688, 1024)),      # 2:3 poster: nearest multiples of 16
    ((2048, 1152), (2048, 1152)),    # already valid
    ((1024, 576), (1088, 608)),      # 16:9 1K is under the pixel floor: scaled up, ratio kept
    ((1024, 438), (1248, 528)),      # 21:9 1K likewise
    ((4096, 2304), (3840, 2160)),    # 16:9 4K capped at the maximum
    ((4096, 4096), (2880, 2880)),    # 1:1 4K: pixel budget 3840*2160
    ((1024, 4096), (1184, 3552)),    # 1:4 clamped to 1:3
])
def test_gpt_image_2_size_is_the_nearest_valid_size(canvas, expected) -> None:
    assert choose_size("gpt-image-2", *canvas) == expected
    assert choose_size("gpt-image-2-2026-04-21", *canvas) == expected


def test_gpt_image_2_sizes_are_always_valid_and_keep_the_ratio() -> None:
    for w in range(200, 5000, 173):
        for h in range(200, 5000, 191):
            sw, sh = flex_size(w, h)
            assert flex_size_ok(sw, sh), (w, h, sw, sh)
            if 1 / 3 <= w / h <= 3:
                assert abs((sw / sh) / (w / h) - 1) < 0.02, (w, h, sw, sh)


@pytest.mark.parametrize("canvas, expected", [
    ((1024, 1024), (1024, 1024)), ((2048, 2048), (1024, 1024)), ((680, 1024), (1024, 1536)),
    ((1024, 680), (1536, 1024)), ((1024, 576), (1536, 1024)), ((576, 1024), (1024, 1536)),
    ((1024, 819), (1536, 1024)), ((1024, 922), (1024, 1024)),
])
def test_gpt_image_1_family_size_is_chosen_by_orientation(canvas, expected) -> None:
    for model in ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "chatgpt-image-latest"):
        assert choose_size(model, *canvas) == expected


def test_fixed_size_models_report_the_rounding_in_meta(fake) -> None:
    result = generate(backend(fake, model="gpt-image-1"), request(plan(1024, 576, "16:9")))
    assert fake.log.items[0].body["size"] == "1536x1024"
    assert result.meta["size_rounding"]["requested"] == "1024x576"
    assert result.meta["size_rounding"]["sent"] == "1536x1024"
    assert result.image.size == (1536, 1024)


def test_bad_options_are_rejected_up_front() -> None:
    with pytest.raises(InvalidBackendOption, match="quality='ultra'"):
        OpenAIBackend(options={"quality": "ultra"})
    with pytest.raises(InvalidBackendOption, match="unknown option"):
        OpenAIBackend(options={"qualty": "high"})
    with pytest.raises(InvalidBackendOption, match="output_compression needs"):
        OpenAIBackend(options={"output_compression": "50"})
    with pytest.raises(InvalidBackendOption, match="gpt-image-1-mini"):
        OpenAIBackend(model="gpt-image-1-mini", options={"input_fidelity": "high"})


# --- edits ------------------------------------------------------------------------------------


def test_edit_sends_one_image_the_instruction_and_a_mask_with_alpha_0_where_editable(fake, store) -> None:
    base = store.put_image(png((640, 480)))
    mask_img = Image.new("L", (640, 480), 0)
    ImageDraw.Draw(mask_img).rectangle((100, 50, 300, 200), fill=255)   # pixloop: white = may change
    mask = store.put_image(mask_img)
    b = backend(fake, input_fidelity="high")
    result = generate(b, request(plan(1024, 768, "4:3"), base_image=base, mask=mask,
                                 instruction='Replace the circle with a sign that says "SALE"'), store)
    [rec] = fake.log.items
    assert rec.path == "/v1/images/edits"
    assert rec.body["prompt"] == 'Replace the circle with a sign that says "SALE"'
    assert rec.body["model"] == "gpt-image-2" and rec.body["input_fidelity"] == "high"
    assert rec.body["size"] == "1024x768" and "moderation" not in rec.body
    fields = [f["field"] for f in rec.body["files"]]
    assert fields == ["image", "mask"]
    assert rec.body["files"][0]["data"] == store.path(base).read_bytes()
    sent_mask = Image.open(io.BytesIO(rec.body["files"][1]["data"]))
    assert sent_mask.format == "PNG" and sent_mask.mode == "RGBA" and sent_mask.size == (640, 480)
    alpha = sent_mask.getchannel("A")
    assert alpha.getpixel((200, 120)) == 0 and alpha.getpixel((10, 10)) == 255 and alpha.getpixel((400, 300)) == 255
    assert result.image.size == (1024, 768) and result.meta["endpoint"] == "edits"


def test_mask_of_another_size_is_scaled_to_the_first_image() -> None:
    mask = Image.new("L", (100, 50), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 49, 49), fill=255)
    sent = Image.open(io.BytesIO(openai_mask(mask, (400, 200))))
    assert sent.size == (400, 200)
    assert sent.getchannel("A").getpixel((50, 100)) == 0 and sent.getchannel("A").getpixel((350, 100)) == 255


def test_base_image_with_references_goes_as_repeated_image_brackets_base_first(fake, store) -> None:
    base = store.put_image(png((512, 512), "red"))
    refs = [store.put_image(png((300, 300), c)) for c in ("green", "blue")]
    generate(backend(fake), request(base_image=base, references=refs, instruction='Add a sign "OPEN"'), store)
    files = fake.log.items[0].body["files"]
    assert [f["field"] for f in files] == ["image[]"] * 3
    sent = [hashlib.sha256(f["data"]).hexdigest() for f in files]
    assert sent == [base.sha256, refs[0].sha256, refs[1].sha256]


def test_references_without_a_base_image_use_the_edits_endpoint_with_the_generation_prompt(fake, store) -> None:
    refs = [store.put_image(png((400, 400), "green"))]
    result = generate(backend(fake), request(references=refs), store)
    rec = fake.log.items[0]
    assert rec.path == "/v1/images/edits" and rec.body["prompt"] == POSTER
    assert [f["field"] for f in rec.body["files"]] == ["image[]"]
    assert result.image.size == (1024, 1024)


def test_fake_rejects_a_mask_whose_size_differs_from_the_image(fake) -> None:
    img, mask = io.BytesIO(), io.BytesIO()
    png((512, 512)).save(img, "PNG")
    Image.new("RGBA", (256, 256)).save(mask, "PNG")
    resp = httpx.post(fake.v1 + "/images/edits", headers={"Authorization": "Bearer sk-test"},
                      data={"model": "gpt-image-2", "prompt": "x"},
                      files=[("image", ("a.png", img.getvalue(), "image/png")),
                             ("mask", ("m.png", mask.getvalue(), "image/png"))])
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error" and resp.json()["error"]["param"] == "mask"


def test_fake_validates_model_size_and_n(fake) -> None:
    def post(body):
        return httpx.post(fake.v1 + "/images/generations", headers={"Authorization": "Bearer k"}, json=body)

    assert post({"model": "gpt-image-9", "prompt": "x"}).status_code == 404
    assert post({"model": "gpt-image-1", "prompt": "x", "size": "1000x1000"}).json()["error"]["param"] == "size"
    assert post({"model": "gpt-image-2", "prompt": "x", "size": "1000x1000"}).status_code == 400
    assert post({"model": "gpt-image-2", "prompt": "x", "n": 11}).json()["error"]["param"] == "n"
    assert post({"prompt": "x"}).status_code == 400        # no model means dall-e-2
    assert httpx.post(fake.v1 + "/images/generations", json={"model": "gpt-image-2", "prompt": "x"}).status_code == 401


# --- response parsing and cost ----------------------------------------------------------------


def test_usage_becomes_cost_and_meta(fake) -> None:
    result = generate(backend(fake, quality="high"), request())
    usage = result.meta["usage"]
    assert usage["output_tokens_details"]["image_tokens"] == 4160
    prices = PRICES["gpt-image-2"]
    text = usage["input_tokens_details"]["text_tokens"]
    assert result.cost == pytest.approx((text * prices.text_in + 4160 * prices.image_out) / 1e6)
    assert result.meta["cost_source"] == "usage" and result.meta["request_id"].startswith("req_")
    assert result.meta["quality"] == "high" and result.meta["size"] == "1024x1024"


def test_cost_from_the_documented_example_usage() -> None:
    usage = {"input_tokens": 50, "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
             "output_tokens": 4160, "output_tokens_details": {"text_tokens": 0, "image_tokens": 4160},
             "total_tokens": 4210}
    assert cost_from_usage("gpt-image-1", usage) == pytest.approx(0.16665)     # the doc's "$0.167 high"
    assert cost_from_usage("gpt-image-2-2026-04-21", usage) == cost_from_usage("gpt-image-2", usage)
    assert cost_from_usage("some-local-model", usage) is None
    assert all(p.source for p in PRICES.values())


def test_wrong_size_image_is_kept_and_flagged(fake) -> None:
    fake.faults.add("wrong_size")
    result = generate(backend(fake), request())
    assert result.image.size == (512, 512) and result.meta["size_mismatch"] == "asked for 1024x1024, got 512x512"


# --- errors -----------------------------------------------------------------------------------


def test_moderation_blocked_is_a_safety_block_and_never_retried(fake) -> None:
    fake.faults.add("safety*3")
    with pytest.raises(SafetyBlocked, match="moderation_blocked") as info:
        generate(backend(fake), request())
    assert info.value.reason == "moderation_blocked" and len(fake.log.items) == 1


def test_insufficient_quota_is_not_retried(fake) -> None:
    fake.faults.add("quota*3")
    with pytest.raises(QuotaExhausted, match="insufficient_quota"):
        generate(backend(fake), request())
    assert len(fake.log.items) == 1


def test_rate_limit_is_retried_after_the_servers_retry_after(fake) -> None:
    fake.faults.add("429=0.3")
    b = backend(fake)
    t0 = time.perf_counter()
    result = generate(b, request())
    assert time.perf_counter() - t0 >= 0.3
    assert result.image.size == (1024, 1024) and len(fake.log.items) == 2 and b.http.usage.retries == 1


def test_persistent_rate_limit_reports_rate_limited(fake) -> None:
    fake.faults.add("429=0.01*5")
    with pytest.raises(RateLimited, match=r"rate_limit_exceeded.*after 3 attempts"):
        generate(backend(fake), request())


@pytest.mark.parametrize("fault", ["500", "503", "html", "reset"])
def test_transient_failures_are_retried_then_succeed(fake, fault) -> None:
    fake.faults.add(fault)
    result = generate(backend(fake), request())
    assert result.image.size == (1024, 1024) and len(fake.log.items) == 2


def test_html_502_that_persists_is_a_readable_server_error(fake) -> None:
    fake.faults.add("html*3")
    with pytest.raises(ServerError, match="502 Bad Gateway.*non-JSON body"):
        generate(backend(fake), request())


def test_slow_answer_past_the_read_timeout_is_retried(fake) -> None:
    fake.faults.add("slow=2")
    result = generate(backend(fake, read_timeout="1"), request())
    assert result.image.size == (1024, 1024) and len(fake.log.items) == 2


def test_always_slow_server_is_a_timeout(fake) -> None:
    fake.faults.add("slow=1*2")
    with pytest.raises(ServiceTimeout):
        generate(backend(fake, read_timeout="0.2", max_attempts="2"), request())


def test_malformed_json_is_a_malformed_response(fake) -> None:
    fake.faults.add("malformed")
    with pytest.raises(MalformedResponse, match="expected JSON"):
        generate(backend(fake), request())


def test_truncated_image_is_a_malformed_response_naming_the_image(fake) -> None:
    fake.faults.add("truncated")
    with pytest.raises(MalformedResponse, match="returned image is unusable.*truncated or corrupt"):
        generate(backend(fake), request())


def test_empty_data_is_no_image_returned(fake) -> None:
    fake.faults.add("no_image")
    with pytest.raises(NoImageReturned, match="no image"):
        generate(backend(fake), request())


def test_unknown_model_is_a_bad_request(fake) -> None:
    with pytest.raises(BadRequest, match="model_not_found"):
        generate(backend(fake, model="gpt-image-9"), request())
    assert len(fake.log.items) == 1


def _resp(status: int, body: dict | str, **headers: str) -> httpx.Response:
    if isinstance(body, dict):
        return httpx.Response(status, json=body, headers=headers)
    return httpx.Response(status, text=body, headers=headers)


def test_classifier_reads_openai_retry_hints_and_x_should_retry() -> None:
    limited = {"error": {"message": "Rate limit reached. Please try again in 20s. Visit ...", "type": "requests",
                         "param": None, "code": "rate_limit_exceeded"}}
    assert classify_openai_error(_resp(429, limited)).retry_after == 20
    assert classify_openai_error(_resp(429, limited, **{"retry-after-ms": "1500"})).retry_after == 1.5
    no_hint = {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}
    assert classify_openai_error(_resp(429, no_hint, **{"x-ratelimit-remaining-requests": "0",
                                                        "x-ratelimit-reset-requests": "6m0s"})).retry_after == 360
    overloaded = {"error": {"message": "The server is overloaded", "type": "server_error"}}
    assert isinstance(classify_openai_error(_resp(503, overloaded)), Retryable)
    assert isinstance(classify_openai_error(_resp(503, overloaded, **{"x-should-retry": "false"})), ServerError)
    assert isinstance(classify_openai_error(_resp(403, {"error": {"message": "verify org"}})), AuthError)
    policy = {"error": {"message": "no", "code": "content_policy_violation"}}
    assert classify_openai_error(_resp(400, policy)).reason == "content_policy_violation"


# --- the official SDK accepts the fake's answers ---------------------------------------------

@pytest.fixture
def openai():
    return pytest.importorskip("openai", reason="the official openai SDK is not installed")


def sdk(fake, retries: int = 0):
    import openai

    return openai.OpenAI(api_key="sk-test", base_url=fake.v1, max_retries=retries)


def test_sdk_generate_decodes_to_a_png_of_the_requested_size(openai, fake) -> None:
    resp = sdk(fake).images.generate(model="gpt-image-2", prompt=POSTER, size="1536x1024")
    img = Image.open(io.BytesIO(base64.b64decode(resp.data[0].b64_json)))
    assert img.format == "PNG" and img.size == (1536, 1024)
    assert resp.usage.output_tokens_details.image_tokens > 0 and resp.usage.input_tokens_details.text_tokens > 0
    assert resp.size == "1536x1024" and resp.output_format == "png"


def test_sdk_edit_with_two_images_and_a_mask(openai, fake, tmp_path: Path) -> None:
    paths = []
    for name, colour in (("a.png", "red"), ("b.png", "blue")):
        png((1024, 1024), colour).save(tmp_path / name)
        paths.append(tmp_path / name)
    Image.new("RGBA", (1024, 1024), (0, 0, 0, 0)).save(tmp_path / "mask.png")
    with open(paths[0], "rb") as a, open(paths[1], "rb") as b, open(tmp_path / "mask.png", "rb") as m:
        resp = sdk(fake).images.edit(model="gpt-image-1.5", image=[a, b], mask=m, prompt='a sign that says "SALE"')
    img = Image.open(io.BytesIO(base64.b64decode(resp.data[0].b64_json)))
    assert img.format == "PNG" and img.size == (1024, 1024) and resp.usage.input_tokens_details.image_tokens > 0
    assert [f["field"] for f in fake.log.items[0].body["files"]] == ["image[]", "image[]", "mask"]


def test_sdk_sees_moderation_blocked_as_bad_request_with_code(openai, fake) -> None:
    fake.faults.add("safety")
    with pytest.raises(openai.BadRequestError) as info:
        sdk(fake).images.generate(model="gpt-image-2", prompt="x", size="1024x1024")
    assert info.value.code == "moderation_blocked" and info.value.type == "image_generation_user_error"


def test_sdk_sees_429_as_rate_limit_error_and_retries_it(openai, fake) -> None:
    fake.faults.add("429=0.01")
    with pytest.raises(openai.RateLimitError) as info:
        sdk(fake).images.generate(model="gpt-image-2", prompt="x", size="1024x1024")
    assert info.value.code == "rate_limit_exceeded" and info.value.response.headers["retry-after"] == "0.01"
    fake.faults.add("429=0.01")
    assert sdk(fake, retries=1).images.generate(model="gpt-image-2", prompt="x", size="1024x1024").data


def test_sdk_streaming_gives_partial_then_completed(openai, fake) -> None:
    if "partial_images" not in inspect.signature(openai.OpenAI(api_key="x").images.generate).parameters:
        pytest.skip("the installed openai SDK has no image streaming")
    stream = sdk(fake).images.generate(model="gpt-image-2", prompt=POSTER, size="1024x1024", stream=True,
                                       partial_images=1)
    events = list(stream)
    assert [e.type for e in events] == ["image_generation.partial_image", "image_generation.completed"]
    final = Image.open(io.BytesIO(base64.b64decode(events[-1].b64_json)))
    assert final.size == (1024, 1024) and events[-1].usage.output_tokens > 0


# --- the whole loop through the CLI -----------------------------------------------------------

CLI_OPTS = [a for k, v in FAST.items() for a in ("--backend-option", f"{k}={v}")]


def run_cli(base_url: str, out: Path, prompt: str = POSTER) -> int:
    return main(["run", prompt, "--backend", "openai", "--base-url", base_url, "--out", str(out), "-q", *CLI_OPTS])


def test_cli_run_against_the_fake_passes(fake, tmp_path: Path) -> None:
    assert run_cli(fake.url, tmp_path / "run") == 0
    assert (tmp_path / "run" / "final.png").exists()
    assert fake.log.paths() == ["/v1/images/generations"]


def test_cli_moderation_block_exits_4_with_a_clear_message(fake, tmp_path: Path, capsys) -> None:
    fake.faults.add("safety")
    assert run_cli(fake.url, tmp_path / "run") == 4
    err = capsys.readouterr().err
    assert "SafetyBlocked" in err and "moderation_blocked" in err and "safety system" in err


def test_cli_rate_limit_then_ok_exits_0(fake, tmp_path: Path) -> None:
    fake.faults.add("429=0.01")
    assert run_cli(fake.url, tmp_path / "run") == 0
    assert len(fake.log.items) == 2


def test_cli_fault_on_a_later_iteration_keeps_the_first_candidate(tmp_path: Path, capsys) -> None:
    app = create_app(FaultPlan.parse(["quota"]), faults_after=1)
    prompt = 'An elegant minimal poster, subtle tone-on-tone, busy texture, that says "GRAND OPENING"'
    with FakeServer(app) as srv:
        assert run_cli(srv.url, tmp_path / "run", prompt) == 3  # below threshold, with the first candidate
    assert (tmp_path / "run" / "final.png").exists()
    assert "QuotaExhausted" in capsys.readouterr().err and len(app.state.requests.items) == 2
