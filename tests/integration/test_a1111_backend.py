"""The AUTOMATIC1111 / Forge backend: payloads, info parsing, each error outcome, Basic auth, end to end."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from agent.backends.a1111 import A1111Backend
from agent.backends.base import GenerationRequest
from agent.interfaces.cli import main
from agent.models import Plan
from agent.models.errors import (
    AuthError,
    BackendError,
    BadRequest,
    MalformedResponse,
    NoImageReturned,
    ServerError,
    UnknownBackendError,
)
from agent.runtime.store import ArtifactStore
from agent.testing.fakes import FakeServer, Fault, FaultPlan
from agent.testing.fakes.a1111 import create_app

FAST = {"backoff_initial": 0.01, "backoff_max": 0.05, "read_timeout": 10, "max_attempts": 3}
PROMPT = 'A poster that says "HELLO"'


def plan(width: int = 512, height: int = 384) -> Plan:
    return Plan(prompt=PROMPT, width=width, height=height, aspect_ratio="4:3", size="1K",
                negative=["blurry", "watermark"])


def request(**kw) -> GenerationRequest:
    return GenerationRequest(plan=kw.pop("plan", None) or plan(), seed=kw.pop("seed", 11), prompt=PROMPT, **kw)


def generate(url: str, store=None, options: dict | None = None, **kw):
    backend = A1111Backend(url, {**FAST, **(options or {})})
    return asyncio.run(backend.generate(request(**kw), store))


def sent(app) -> dict:
    return [r.body for r in app.state.requests.items if r.path.startswith("/sdapi/v1/")][-1]


def b64_image(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))


def mock_backend(*replies: tuple[int, object], options: dict | None = None) -> tuple[A1111Backend, list]:
    """A backend whose HTTP answers are scripted (status, JSON body); returns it and the list of calls."""
    calls: list[httpx.Request] = []
    queue = list(replies)

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        status, body = queue.pop(0) if queue else (200, {})
        return httpx.Response(status, json=body)

    backend = A1111Backend("http://a1111.test", {**FAST, **(options or {})}, transport=httpx.MockTransport(handler))
    return backend, calls


# --- payloads -------------------------------------------------------------------------------------


def test_txt2img_payload_carries_prompt_negative_seed_and_size_in_multiples_of_8() -> None:
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        result = generate(srv.url, options={"sampler": "DPM++ 2M", "steps": "25", "cfg": "6", "scheduler": "Karras",
                                            "checkpoint": "sd_xl_base_1.0.safetensors [31e35c80fc]"},
                          plan=plan(1021, 766))

    body = sent(app)
    assert body["prompt"] == PROMPT and body["negative_prompt"] == "blurry, watermark"
    assert (body["seed"], body["steps"], body["cfg_scale"], body["sampler_name"]) == (11, 25, 6.0, "DPM++ 2M")
    assert (body["width"], body["height"], body["batch_size"]) == (1024, 768, 1) and body["scheduler"] == "Karras"
    assert body["override_settings"] == {"sd_model_checkpoint": "sd_xl_base_1.0.safetensors [31e35c80fc]"}
    assert [r.path for r in app.state.requests.items] == ["/sdapi/v1/txt2img"]
    assert result.image.size == (1024, 768) and result.cost == 0.0
    assert "1021x766 rendered at 1024x768" in result.meta["notes"][0]


def test_img2img_with_a_mask_sends_base64_init_image_mask_and_inpaint_settings(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    base = Image.new("RGB", (512, 384), (10, 120, 200))
    mask = Image.new("L", (512, 384), 0)
    mask.paste(255, (0, 0, 256, 384))
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        result = generate(srv.url, store, base_image=store.put_image(base), mask=store.put_image(mask))

    body = sent(app)
    assert app.state.requests.items[-1].path == "/sdapi/v1/img2img"
    assert np.array_equal(np.asarray(b64_image(body["init_images"][0]).convert("RGB")), np.asarray(base))
    sent_mask = np.asarray(b64_image(body["mask"]).convert("L"))
    assert sent_mask[:, :256].min() == 255 and sent_mask[:, 256:].max() == 0, "white = repaint, unchanged"
    assert body["denoising_strength"] == 0.6 and body["inpainting_fill"] == 1
    assert body["inpaint_full_res"] is False and body["inpainting_mask_invert"] == 0
    assert not body["init_images"][0].startswith("data:")
    kept = np.asarray(result.image)[:, 300:].astype(int)
    assert (np.abs(kept - (10, 120, 200)) <= 2).all(), "outside the mask is kept"
    assert result.meta["endpoint"] == "img2img" and result.meta["masked"] is True


def test_references_are_ignored_with_a_note_unless_reference_mode_is_img2img(tmp_path, product_png) -> None:
    store = ArtifactStore(tmp_path)
    ref = store.put_file(product_png)
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        ignored = generate(srv.url, store, references=[ref])
        assert "init_images" not in sent(app) and "no multi-image fusion" in ignored.meta["notes"][0]
        used = generate(srv.url, store, {"reference_mode": "img2img"}, references=[ref])
        body = sent(app)

    assert body["denoising_strength"] == 0.85 and b64_image(body["init_images"][0]).size == (512, 384)
    assert used.meta["endpoint"] == "img2img"
    assert A1111Backend(None, {}).capabilities.max_references == 0
    caps = A1111Backend(None, {"reference_mode": "img2img"}).capabilities
    assert (caps.max_references, caps.edit, caps.mask, caps.cost_per_image) == (1, True, True, 0.0)


def test_info_json_string_is_parsed_into_meta() -> None:
    app = create_app(FaultPlan(), sd_model_name="juggernautXL_v9")
    with FakeServer(app) as srv:
        result = generate(srv.url, seed=-1 % 2**32)
    assert result.meta["seed"] == 2**32 - 1 and result.meta["model"] == "juggernautXL_v9"
    assert result.meta["sd_model_hash"] == "31e35c80fc" and result.meta["version"].startswith("v1.10")
    backend, _ = mock_backend((200, {"images": [base64.b64encode(_png()).decode()], "info": "not json"}))
    assert "info field is not JSON" in asyncio.run(backend.generate(request(), None)).meta["notes"][-1]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (512, 384), "white").save(buf, format="PNG")
    return buf.getvalue()


def test_bad_options_are_rejected_when_the_backend_is_built(tmp_path, capsys) -> None:
    code = main(["run", "a poster", "--backend", "a1111", "--backend-option", "inpainting_fill=7",
                 "--out", str(tmp_path / "r"), "-q"])
    assert code == 2 and "inpainting_fill must be 0 fill, 1 original" in capsys.readouterr().err
    with pytest.raises(UnknownBackendError, match="unknown option.*samplr"):
        A1111Backend(None, {"samplr": "Euler"})


# --- errors -----------------------------------------------------------------------------------------


def test_unknown_sampler_404_is_a_bad_request_naming_the_sampler_and_not_retried() -> None:
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        with pytest.raises(BadRequest, match=r"Sampler not found: sampler_name 'Euler b' is not installed"):
            generate(srv.url, options={"sampler": "Euler b"})
    assert len(app.state.requests.items) == 1


def test_init_image_not_found_404_is_a_bad_request() -> None:
    backend, calls = mock_backend((404, {"error": "HTTPException", "detail": "Init image not found", "body": "",
                                         "errors": "404: Init image not found"}))
    with pytest.raises(BadRequest, match="HTTP 404: Init image not found"):
        asyncio.run(backend.generate(request(), None))
    assert len(calls) == 1


def test_422_lists_the_invalid_fields() -> None:
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        with pytest.raises(BadRequest, match=r"invalid request fields: body.steps: ensure this value is greater"):
            generate(srv.url, options={"steps": "0"})
    backend, _ = mock_backend((422, {"detail": [{"loc": ["body", "cfg_scale"], "msg": "value is not a valid float",
                                                 "type": "type_error.float"}]}))
    with pytest.raises(BadRequest, match="body.cfg_scale: value is not a valid float"):
        asyncio.run(backend.generate(request(), None))


def test_out_of_memory_500_is_reported_at_once_but_other_500s_are_retried() -> None:
    oom = (500, {"error": "OutOfMemoryError", "detail": "", "body": "", "errors": "CUDA out of memory."})
    backend, calls = mock_backend(oom, oom)
    with pytest.raises(BackendError, match="ran out of GPU memory") as info:
        asyncio.run(backend.generate(request(), None))
    assert len(calls) == 1 and not isinstance(info.value, ServerError)

    other = (500, {"error": "RuntimeError", "detail": "", "body": "", "errors": "device-side assert"})
    backend, calls = mock_backend(other, other, other)
    with pytest.raises(ServerError, match=r"RuntimeError.*\(after 3 attempts\)"):
        asyncio.run(backend.generate(request(), None))
    assert len(calls) == 3


def test_invalid_encoded_image_500_is_a_bad_request() -> None:
    backend, calls = mock_backend((500, {"error": "HTTPException", "detail": "Invalid encoded image", "body": "",
                                         "errors": "500: Invalid encoded image"}))
    with pytest.raises(BadRequest, match="could not decode an image we sent"):
        asyncio.run(backend.generate(request(), None))
    assert len(calls) == 1


@pytest.mark.parametrize("fault, error, message", [
    ("no_image", NoImageReturned, "returned no image"),
    ("malformed", MalformedResponse, "expected JSON"),
    ("truncated", MalformedResponse, "truncated or corrupt"),
])
def test_result_faults_are_reported_precisely(fault, error, message) -> None:
    app = create_app(FaultPlan.parse([fault]))
    with FakeServer(app) as srv:
        with pytest.raises(error, match=message):
            generate(srv.url)


def test_transient_faults_are_retried() -> None:
    app = create_app(FaultPlan.parse(["503", "reset"]))
    with FakeServer(app) as srv:
        result = generate(srv.url)
    assert result.meta["usage"] == {"requests": 3, "retries": 2, "failures": 0}


# --- Basic auth ---------------------------------------------------------------------------------------


def test_basic_auth_from_the_environment_is_sent_and_never_recorded(monkeypatch) -> None:
    monkeypatch.setenv("A1111_AUTH", "pix:s3cret-pass")
    app = create_app(FaultPlan(), auth="pix:s3cret-pass")
    with FakeServer(app) as srv:
        result = generate(srv.url)
    assert result.image.size == (512, 384)
    assert app.state.requests.items[0].headers["authorization"] == "***"


def test_401_is_an_auth_error_saying_what_to_configure(monkeypatch) -> None:
    monkeypatch.delenv("A1111_AUTH", raising=False)
    app = create_app(FaultPlan(), auth="pix:s3cret-pass")
    with FakeServer(app) as srv:
        with pytest.raises(AuthError, match="wants HTTP Basic auth .*A1111_AUTH=user:pass"):
            generate(srv.url)
        with pytest.raises(AuthError, match="rejected the Basic auth credentials") as info:
            generate(srv.url, options={"username": "pix", "password": "wrong-pass"})
    assert "wrong-pass" not in str(info.value)
    assert len(app.state.requests.items) == 2, "401 is not retried"


# --- end to end -------------------------------------------------------------------------------------


def cli(url: str, out: Path, prompt: str = 'A bold poster that says "GRAND OPENING"') -> int:
    args = ["run", prompt, "--backend", "a1111", "--base-url", url, "--out", str(out), "-q"]
    for k, v in FAST.items():
        args += ["--backend-option", f"{k}={v}"]
    return main(args)


def test_pixloop_run_with_a1111_passes_end_to_end_through_faults(tmp_path, capsys) -> None:
    app = create_app(FaultPlan.parse(["500", "slow=0.3"]))
    with FakeServer(app) as srv:
        code = cli(srv.url, tmp_path / "run")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "status: passed" in out.out and (tmp_path / "run" / "final.png").exists()


class FailSecondRequest(FaultPlan):
    def __init__(self, kind: str, times: int = 1):
        super().__init__()
        self.kind, self.times, self.calls = kind, times, 0

    def next(self):
        self.calls += 1
        return Fault(self.kind) if 2 <= self.calls < 2 + self.times else None


def test_a_bad_answer_on_iteration_2_is_retried_and_the_run_continues(tmp_path, capsys) -> None:
    app = create_app(FailSecondRequest("truncated"))
    with FakeServer(app) as srv:
        code = cli(srv.url, tmp_path / "run",
                   'An elegant minimal poster, subtle tone-on-tone, busy texture, that says "GRAND OPENING"')
    err = capsys.readouterr().err
    assert code in (0, 3) and "backend failed" not in err
    assert (tmp_path / "run" / "final.png").exists() and (tmp_path / "run" / "candidates" / "01-c1.png").exists()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["status"] in ("passed", "below_threshold") and report["stop_reason"] != "backend_error"
    assert [c["id"] for c in report["candidates"]][:2] == ["c1", "c2"]
    assert report["candidates"][1]["meta"]["answer_retries"] == 1
    retries = [e for e in map(json.loads, (tmp_path / "run" / "events.jsonl").read_text().splitlines())
               if e.get("event") == "answer_retry"]
    assert len(retries) == 1 and "MalformedResponse" in retries[0]["error"]


def test_a_persistent_fault_on_iteration_2_exits_3_and_delivers_candidate_1(tmp_path, capsys) -> None:
    app = create_app(FailSecondRequest("truncated", times=99))
    with FakeServer(app) as srv:
        code = cli(srv.url, tmp_path / "run",
                   'An elegant minimal poster, subtle tone-on-tone, busy texture, that says "GRAND OPENING"')
    err = capsys.readouterr().err
    assert code == 3 and "a1111 backend failed on iteration 2: MalformedResponse" in err
    assert "after 1 answer retry" in err
    assert (tmp_path / "run" / "final.png").exists() and (tmp_path / "run" / "candidates" / "01-c1.png").exists()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["status"] == "below_threshold" and report["stop_reason"] == "backend_error"
    assert report["final"]["candidate"] == "c1" and "MalformedResponse" in report["error"]
