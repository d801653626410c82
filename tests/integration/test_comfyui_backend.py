"""The ComfyUI backend against the loopback fake: graphs, uploads, websocket and polling, errors, end to end."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from agent.backends.base import GenerationRequest
from agent.backends.comfyui import (
    ComfyUIBackend,
    WorkflowError,
    builtin_workflow,
    load_workflow,
    sd_size,
    substitute,
)
from agent.interfaces.cli import main
from agent.models import Plan
from agent.models.errors import BackendError, BadRequest, MalformedResponse, NoImageReturned, UnknownBackendError
from agent.runtime.store import ArtifactStore
from agent.testing.fakes import FakeServer, Fault, FaultPlan
from agent.testing.fakes.comfyui import create_app

FAST = {"poll_interval": 0.01, "backoff_initial": 0.01, "backoff_max": 0.05, "read_timeout": 10, "max_attempts": 3}
PROMPT = 'A poster that says "HELLO"'


def plan(width: int = 512, height: int = 384, **kw) -> Plan:
    return Plan(prompt=PROMPT, width=width, height=height, aspect_ratio="4:3", size="1K",
                negative=["blurry", "watermark"], **kw)


def generate(url: str, store=None, options: dict | None = None, **request):
    backend = ComfyUIBackend(url, {**FAST, **(options or {})})
    req = GenerationRequest(plan=request.pop("plan", None) or plan(), seed=request.pop("seed", 7), prompt=PROMPT,
                            **request)
    return asyncio.run(backend.generate(req, store))


def sent_graph(app) -> dict:
    bodies = [r.body for r in app.state.requests.items if r.path.endswith("/prompt") and r.body]
    return bodies[-1]["prompt"]


def paths(app) -> list[str]:
    return [f"{r.method} {r.path.split('/history/')[0] + ('/history/ID' if '/history/' in r.path else '')}"
            for r in app.state.requests.items]


def write_workflow(tmp_path: Path, graph: dict) -> str:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(graph))
    return str(path)


# --- placeholders and workflows ------------------------------------------------------------------


def test_whole_value_placeholders_take_their_type_and_embedded_ones_become_text() -> None:
    graph = {"3": {"class_type": "KSampler", "inputs": {"seed": "{{seed}}", "cfg": "{{ cfg }}", "steps": "{{steps}}",
                                                        "sampler_name": "{{sampler}}"}},
             "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "photo of {{prompt}}, seed {{seed}}"}}}
    out = substitute(graph, {"seed": "42", "cfg": 6, "steps": 30.0, "sampler": "euler", "prompt": "a fox"})

    assert out["3"]["inputs"] == {"seed": 42, "cfg": 6.0, "steps": 30, "sampler_name": "euler"}
    assert isinstance(out["3"]["inputs"]["cfg"], float) and isinstance(out["3"]["inputs"]["seed"], int)
    assert out["6"]["inputs"]["text"] == "photo of a fox, seed 42"
    assert graph["3"]["inputs"]["seed"] == "{{seed}}", "the template is not modified"


def test_a_used_placeholder_without_a_value_is_an_error_naming_it_and_where() -> None:
    graph = {"10": {"class_type": "LoadImage", "inputs": {"image": "{{reference_2}}"}}}
    with pytest.raises(WorkflowError, match=r"\{\{reference_2\}\} \(used at node 10 \(LoadImage\) input image\): "
                                            r"the request has fewer than 2 reference image"):
        substitute(graph, {"reference_1": "a.png"})


def test_workflow_files_are_checked_for_api_format_outputs_and_known_placeholders(tmp_path) -> None:
    no_output = builtin_workflow("txt2img")
    del no_output["9"]
    with pytest.raises(WorkflowError, match="no SaveImage or PreviewImage node"):
        load_workflow(write_workflow(tmp_path, no_output))
    with pytest.raises(WorkflowError, match="UI format; export it with 'Save \\(API Format\\)'"):
        load_workflow(write_workflow(tmp_path, {"nodes": [], "links": [], "version": 0.4}))
    typo = builtin_workflow("txt2img")
    typo["6"]["inputs"]["text"] = "{{promt}}"
    with pytest.raises(WorkflowError, match=r"unknown placeholder \{\{promt\}\} at node 6"):
        load_workflow(write_workflow(tmp_path, typo))
    with pytest.raises(WorkflowError, match="workflow file not found"):
        load_workflow(tmp_path / "missing.json")
    wrapped = {"prompt": builtin_workflow("txt2img"), "client_id": "x"}
    assert load_workflow(write_workflow(tmp_path, wrapped))["9"]["class_type"] == "SaveImage"


@pytest.mark.parametrize("option, message", [
    ("workflow=nope.json", "comfyui backend: workflow: workflow file not found: nope.json"),
    ("edit_workflow=nope.json", "comfyui backend: edit_workflow: workflow file not found: nope.json"),
    ("chekpoint=x.safetensors", "unknown option(s) chekpoint; known options: backoff_initial"),
    ("steps=many", "backend option steps='many' is not a valid int"),
    ("reference_mode=fuse", "reference_mode='fuse': use img2img or ignore"),
])
def test_bad_backend_options_are_bad_input_exit_2(tmp_path, capsys, monkeypatch, option, message) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["run", "a poster", "--backend", "comfyui", "--backend-option", option, "--out", "r", "-q"])
    assert code == 2 and message in capsys.readouterr().err
    with pytest.raises(UnknownBackendError):
        ComfyUIBackend(None, dict([option.split("=", 1)]))


def test_capabilities_follow_the_workflow(tmp_path) -> None:
    flow = builtin_workflow("txt2img")
    flow["20"] = {"class_type": "LoadImage", "inputs": {"image": "{{reference_1}}"}}
    flow["21"] = {"class_type": "LoadImage", "inputs": {"image": "{{reference_2}}"}}
    caps = ComfyUIBackend(None, {"workflow": write_workflow(tmp_path, flow)}).capabilities
    assert (caps.max_references, caps.edit, caps.mask, caps.cost_per_image) == (2, False, False, 0.0)

    builtin = ComfyUIBackend(None, {}).capabilities
    assert (builtin.max_references, builtin.edit, builtin.mask, builtin.sizes) == (1, True, True, ["1K", "2K"])
    wide = ComfyUIBackend(None, {"reference_mode": "ignore", "max_side": "4096"}).capabilities
    assert (wide.sizes, wide.max_references) == (["1K", "2K", "4K"], 0)


def test_sizes_are_rounded_to_multiples_of_8_and_the_long_side_capped() -> None:
    assert sd_size(1024, 576, 2048) == (1024, 576, None)
    w, h, note = sd_size(4096, 2304, 2048)
    assert (w, h) == (2048, 1152) and "4096x2304 rendered at 2048x1152" in note
    assert sd_size(1021, 573, 2048)[:2] == (1024, 576)


# --- requests against the fake ---------------------------------------------------------------------


def test_builtin_txt2img_graph_carries_plan_size_seed_negative_and_completes_over_the_websocket() -> None:
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        result = generate(srv.url, options={"checkpoint": "v1-5-pruned-emaonly.safetensors", "steps": "12",
                                            "cfg": "5.5", "sampler": "dpmpp_2m"}, seed=1234)

    graph = sent_graph(app)
    assert graph["5"]["inputs"] == {"width": 512, "height": 384, "batch_size": 1}
    assert graph["3"]["inputs"]["seed"] == 1234 and graph["3"]["inputs"]["steps"] == 12
    assert graph["3"]["inputs"]["cfg"] == 5.5 and graph["3"]["inputs"]["sampler_name"] == "dpmpp_2m"
    assert graph["4"]["inputs"]["ckpt_name"] == "v1-5-pruned-emaonly.safetensors"
    assert graph["6"]["inputs"]["text"] == PROMPT and graph["7"]["inputs"]["text"] == "blurry, watermark"
    prompt_body = next(r.body for r in app.state.requests.items if r.path == "/prompt")
    ws = next(r for r in app.state.requests.items if r.method == "WS")
    assert ws.body["clientId"] == prompt_body["client_id"] and len(prompt_body["client_id"]) == 32
    assert paths(app) == ["WS /ws", "POST /prompt", "GET /history/ID", "GET /view"]
    assert result.image.size == (512, 384) and result.cost == 0.0
    assert result.meta["completion"] == "websocket" and result.meta["previews"] == 1
    assert result.meta["output"]["node"] == "9" and result.meta["workflow"] == "builtin:txt2img"


def test_completion_falls_back_to_polling_history_when_the_websocket_closes_early() -> None:
    app = create_app(FaultPlan(), ws_close_early=True, history_polls=2)
    with FakeServer(app) as srv:
        result = generate(srv.url)

    assert result.meta["completion"] == "polling" and result.image.size == (512, 384)
    assert paths(app).count("GET /history/ID") >= 3, "two empty answers, then the entry"


def test_without_a_websocket_the_client_polls_history() -> None:
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        result = generate(srv.url, options={"websocket": "false"})
    assert result.meta["completion"] == "polling" and "WS /ws" not in paths(app)


def test_user_workflow_uploads_the_reference_and_uses_the_name_the_server_returned(tmp_path, product_png) -> None:
    flow = builtin_workflow("img2img")
    flow["10"]["inputs"]["image"] = "{{reference_1}}"
    flow["6"]["inputs"]["text"] = "product photo, {{prompt}}"
    flow["3"]["inputs"]["denoise"] = "{{denoise}}"
    store = ArtifactStore(tmp_path / "store")
    ref = store.put_file(product_png)
    app = create_app(FaultPlan(), ignore_overwrite=True)
    with FakeServer(app) as srv:
        clash = f"pixloop-ref-{ref.sha256[:16]}.png"
        httpx.post(f"{srv.url}/upload/image", files={"image": (clash, b"other bytes", "image/png")})
        result = generate(srv.url, store, {"workflow": write_workflow(tmp_path, flow), "denoise": "0.45"},
                          references=[ref])

    upload = [r.body for r in app.state.requests.items if r.path == "/upload/image"][-1]
    assert upload["type"] == "input" and upload["overwrite"] == "true" and upload["filename"] == clash
    graph = sent_graph(app)
    assert graph["10"]["inputs"]["image"] == f"pixloop-ref-{ref.sha256[:16]} (1).png"
    assert graph["6"]["inputs"]["text"] == f"product photo, {PROMPT}" and graph["3"]["inputs"]["denoise"] == 0.45
    assert result.image.size == (400, 296), "img2img renders at the LoadImage size (the reference's)"
    assert result.meta["workflow"].endswith("flow.json")


def test_edit_with_a_mask_uploads_it_through_upload_mask_and_sets_a_latent_noise_mask(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    base = Image.new("RGB", (512, 384), (10, 120, 200))
    mask = Image.new("L", (512, 384), 0)
    mask.paste(255, (0, 0, 256, 384))
    base_ref, mask_ref = store.put_image(base), store.put_image(mask)
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        result = generate(srv.url, store, base_image=base_ref, mask=mask_ref, instruction="make it a sunset")

    graph = sent_graph(app)
    [image_upload] = [r.body for r in app.state.requests.items if r.path == "/upload/image"]
    [mask_upload] = [r.body for r in app.state.requests.items if r.path == "/upload/mask"]
    assert json.loads(mask_upload["original_ref"]) == {"filename": image_upload["filename"], "subfolder": "",
                                                       "type": "input"}
    assert graph["10"] == {"class_type": "LoadImage", "inputs": {"image": image_upload["filename"]},
                           "_meta": {"title": "Load base image"}}
    assert graph["11"]["inputs"] == {"pixels": ["10", 0], "vae": ["4", 2]}
    assert graph["12"]["inputs"] == {"image": mask_upload["filename"], "channel": "alpha"}
    assert graph["13"]["inputs"] == {"samples": ["11", 0], "mask": ["12", 0]}
    assert graph["3"]["inputs"]["latent_image"] == ["13", 0] and graph["3"]["inputs"]["denoise"] == 0.6
    assert graph["6"]["inputs"]["text"].startswith("make it a sunset\n")
    pixels = np.asarray(result.image)
    assert (pixels[:, 256:] == (10, 120, 200)).all(), "outside the mask is kept exactly"
    assert (np.abs(pixels[:, :256].astype(int) - (10, 120, 200)).sum(axis=2) > 30).mean() > 0.5, "inside changed"
    assert result.meta["denoise"] == 0.6 and result.meta["masked"] is True


def test_a_reference_without_a_base_image_starts_img2img_with_a_higher_denoise(tmp_path, product_png) -> None:
    store = ArtifactStore(tmp_path)
    ref = store.put_file(product_png)
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        result = generate(srv.url, store, references=[ref, ref])

    graph = sent_graph(app)
    assert graph["3"]["inputs"]["denoise"] == 0.85 and graph["10"]["class_type"] == "LoadImage"
    assert result.image.size == (512, 384), "the reference is fitted to the plan size before upload"
    assert any("1 further reference image(s) ignored" in n for n in result.meta["notes"])


def test_large_plans_are_rendered_at_max_side_and_say_so(tmp_path) -> None:
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        result = generate(srv.url, options={"max_side": "1024"},
                          plan=Plan(prompt=PROMPT, width=2048, height=1536, aspect_ratio="4:3", size="2K"))
    assert sent_graph(app)["5"]["inputs"]["width"] == 1024 and result.image.size == (1024, 768)
    assert "2048x1536 rendered at 1024x768" in result.meta["notes"][0]


# --- errors -------------------------------------------------------------------------------------------


def test_unknown_checkpoint_400_names_the_node_and_input_and_is_not_retried() -> None:
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        with pytest.raises(BadRequest) as info:
            generate(srv.url, options={"checkpoint": "dreamshaper.safetensors"})

    msg = str(info.value)
    assert "prompt_outputs_failed_validation" in msg
    assert "node 4 (CheckpointLoaderSimple) input 'ckpt_name': value_not_in_list" in msg
    assert "'dreamshaper.safetensors' not in ['sd_xl_base_1.0.safetensors'" in msg and "checkpoint=NAME" in msg
    assert paths(app).count("POST /prompt") == 1


def test_execution_error_over_the_websocket_names_node_exception_and_message() -> None:
    app = create_app(FaultPlan(), execution_error=True)
    with FakeServer(app) as srv:
        with pytest.raises(BackendError, match=r"ComfyUI node 3 \(KSampler\) failed: RuntimeError: mat1 and mat2"):
            generate(srv.url)


def test_execution_error_found_by_polling_history_is_reported_the_same_way() -> None:
    app = create_app(FaultPlan([Fault("quota")]), ws_close_early=True)
    with FakeServer(app) as srv:
        with pytest.raises(BackendError, match=r"node 3 \(KSampler\) failed: torch.OutOfMemoryError.*out of GPU"):
            generate(srv.url)
    assert "GET /history/ID" in paths(app)


def test_missing_output_on_view_is_a_clear_404() -> None:
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        backend = ComfyUIBackend(srv.url, FAST)
        with pytest.raises(BadRequest, match=r"output image 'gone.png' \(type output\) is not on the server \(404"):
            asyncio.run(backend._view({"filename": "gone.png", "subfolder": "", "type": "output"}))


@pytest.mark.parametrize("fault, error, message", [
    ("no_image", NoImageReturned, "finished without an image"),
    ("malformed", MalformedResponse, "expected JSON"),
    ("truncated", MalformedResponse, "truncated or corrupt"),
])
def test_result_faults_are_reported_precisely(fault, error, message) -> None:
    app = create_app(FaultPlan.parse([fault]))
    with FakeServer(app) as srv:
        with pytest.raises(error, match=message):
            generate(srv.url)


def test_transient_failures_on_prompt_are_retried() -> None:
    app = create_app(FaultPlan.parse(["500", "reset", "429=0.01"]))
    with FakeServer(app) as srv:
        result = generate(srv.url, options={"max_attempts": 4})
    assert result.meta["usage"]["retries"] == 3 and paths(app).count("POST /prompt") == 4


def test_wrong_size_output_is_returned_with_a_note_for_the_spec_critic() -> None:
    app = create_app(FaultPlan.parse(["wrong_size"]))
    with FakeServer(app) as srv:
        result = generate(srv.url)
    assert result.image.size == (256, 192) and "not the requested 512x384" in result.meta["notes"][-1]


# --- the fake itself ---------------------------------------------------------------------------------


def test_fake_validates_links_outputs_and_uploads_and_serves_api_prefixed_routes() -> None:
    app = create_app(FaultPlan())
    graph = builtin_workflow("txt2img")
    with FakeServer(app) as srv:
        good = substitute(graph, {"checkpoint": "sd_xl_base_1.0.safetensors", "width": 64, "height": 64,
                                  "prompt": "x", "negative": "", "seed": 1, "steps": 1, "cfg": 1, "sampler": "euler",
                                  "scheduler": "normal"})
        assert httpx.post(f"{srv.url}/api/prompt", json={"prompt": good}).status_code == 200
        assert httpx.get(f"{srv.url}/api/object_info/KSampler").json()["KSampler"]["output"] == ["LATENT"]
        broken = json.loads(json.dumps(good))
        broken["8"]["inputs"]["samples"] = ["99", 0]
        broken["5"]["inputs"]["width"] = 65
        body = httpx.post(f"{srv.url}/prompt", json={"prompt": broken}).json()
        assert body["node_errors"]["8"]["errors"][0]["type"] == "bad_linked_input"
        assert "not a multiple of 8" in body["node_errors"]["5"]["errors"][0]["details"]
        no_out = {k: v for k, v in good.items() if k != "9"}
        assert httpx.post(f"{srv.url}/prompt", json={"prompt": no_out}).json()["error"]["type"] == "prompt_no_outputs"
        load = {**good, "10": {"class_type": "LoadImage", "inputs": {"image": "never-uploaded.png"}}}
        err = httpx.post(f"{srv.url}/prompt", json={"prompt": load}).json()["node_errors"]["10"]["errors"][0]
        assert err["details"] == "Invalid image file: never-uploaded.png"
        names = [httpx.post(f"{srv.url}/upload/image", files={"image": ("a.png", b"x", "image/png")},
                            data=data).json()["name"] for data in ({}, {}, {"overwrite": "true"})]
        assert names == ["a.png", "a (1).png", "a.png"]


def test_fake_reset_fault_drops_the_connection() -> None:
    app = create_app(FaultPlan.parse(["reset"]))
    with FakeServer(app) as srv:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"{srv.url}/prompt", json={"prompt": {}})


# --- end to end -------------------------------------------------------------------------------------


def cli(url: str, out: Path, prompt: str = 'A bold poster that says "GRAND OPENING"', *extra: str) -> int:
    opts = [f"{k}={v}" for k, v in FAST.items()]
    args = ["run", prompt, "--backend", "comfyui", "--base-url", url, "--out", str(out), "-q"]
    for o in opts:
        args += ["--backend-option", o]
    return main([*args, *extra])


def test_pixloop_run_with_comfyui_passes_end_to_end_through_faults(tmp_path, capsys) -> None:
    app = create_app(FaultPlan.parse(["500", "reset"]), ws_close_early=True)
    with FakeServer(app) as srv:
        code = cli(srv.url, tmp_path / "run")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "status: passed" in out.out and (tmp_path / "run" / "final.png").exists()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["status"] == "passed"


class FailSecondPrompt(FaultPlan):
    """No fault on the first generation request, then an unrecoverable one."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind, self.calls = kind, 0

    def next(self):
        self.calls += 1
        return Fault(self.kind) if self.calls == 2 else None


def test_a_fault_on_iteration_2_delivers_candidate_1_below_threshold(tmp_path, capsys) -> None:
    app = create_app(FailSecondPrompt("quota"))
    with FakeServer(app) as srv:
        code = cli(srv.url, tmp_path / "run",
                   'An elegant minimal poster, subtle tone-on-tone, busy texture, that says "GRAND OPENING"')
    err = capsys.readouterr().err
    assert code == 3  # a later iteration's failure ends the run with the candidate it has (issue 9)
    assert json.loads((tmp_path / "run" / "report.json").read_text())["status"] == "below_threshold"
    assert "comfyui backend failed on iteration 2" in err and "torch.OutOfMemoryError" in err
    assert (tmp_path / "run" / "final.png").exists() and (tmp_path / "run" / "candidates" / "01-c1.png").exists()


def test_interruptions_fail_and_events_of_other_prompts_are_ignored() -> None:
    from agent.backends.comfyui import Progress as _Progress

    backend = ComfyUIBackend(None, {})
    other = json.dumps({"type": "execution_error", "data": {"prompt_id": "someone-else", "node_id": "3"}})
    assert backend._on_event(other, "mine", _Progress()) is False
    done = json.dumps({"type": "executing", "data": {"node": None, "prompt_id": "mine"}})
    assert backend._on_event(done, "mine", _Progress()) is True
    with pytest.raises(BackendError, match="prompt mine was interrupted"):
        backend._on_event(json.dumps({"type": "execution_interrupted", "data": {"prompt_id": "mine"}}), "mine",
                          _Progress())


def test_the_wait_is_bounded_by_the_timeout_option() -> None:
    from agent.models.errors import ServiceTimeout

    app = create_app(FaultPlan(), ws_close_early=True, history_polls=10**6)
    with FakeServer(app) as srv:
        with pytest.raises(ServiceTimeout, match=r"did not finish within 0.3 s \(raise --backend-option timeout"):
            generate(srv.url, options={"timeout": "0.3", "poll_interval": "0.05"})
