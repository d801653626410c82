"""Edits with masks and generations with references over HTTP, against fakes that use the images they receive.

For every HTTP backend, an edit with a mask changes only the pixels inside the mask: each fake follows its
API's own mask convention (OpenAI: alpha 0 = edit; ComfyUI: /upload/mask alpha, LoadImage MASK = 1 - alpha;
AUTOMATIC1111: white = repaint; Gemini: no mask, the area stated in words), so a client that converts
pixloop's mask (white = may change) the wrong way would see its change land outside the mask. A reference
photo sent with a generation is placed in the image, and the face critic finds that person in it. ComfyUI
workflows whose placeholders cannot be filled stop the CLI with exit 2 before any request reaches the fake.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from agent.backends.a1111 import A1111Backend
from agent.backends.base import GenerationRequest
from agent.backends.comfyui import ComfyUIBackend, builtin_workflow
from agent.backends.gemini import GeminiBackend, describe_mask, read_regions, regions_mask
from agent.backends.openai import OpenAIBackend
from agent.interfaces.cli import main
from agent.models import Box, Plan, Subject
from agent.models.errors import BadRequest
from agent.runtime.store import ArtifactStore
from agent.testing.fakes import FakeServer, FaultPlan
from agent.testing.fakes import a1111 as a1111_fake
from agent.testing.fakes import comfyui as comfyui_fake
from agent.testing.fakes import gemini as gemini_fake
from agent.testing.fakes import openai as openai_fake
from critics.base import CheckContext
from critics.face import FaceCritic

FAST = {"backoff_initial": "0.01", "backoff_max": "0.05", "read_timeout": "20", "max_attempts": "2"}
SIGN = 'Replace this part with a sign that says "SALE"'


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "A1111_AUTH"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


# --- helpers ---------------------------------------------------------------------------------------


def scene(size: tuple[int, int]) -> Image.Image:
    """A busy, deterministic picture: any pixel a fake re-renders differs from it."""
    rng = np.random.default_rng(7)
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    arr = np.concatenate([np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)),
                          rng.integers(0, 256, (h, w, 1)).astype(np.float32)], axis=2)
    img = Image.fromarray(arr.astype(np.uint8), "RGB")
    ImageDraw.Draw(img).ellipse((w // 5, h // 5, w // 2, h // 2), fill=(250, 250, 20))
    return img


def rect_mask(size: tuple[int, int], *boxes: tuple[int, int, int, int]) -> Image.Image:
    """pixloop's mask: white (255) where the image may change."""
    mask = Image.new("L", size, 0)
    for box in boxes:
        mask.paste(255, box)
    return mask


def assert_changed_only_inside(before: Image.Image, after: Image.Image, mask: Image.Image, *, margin: int = 0,
                               tolerance: int = 0) -> None:
    """Pixels outside the mask (grown by `margin`) equal within `tolerance`; most pixels inside changed."""
    assert after.size == before.size
    grown = mask.filter(ImageFilter.MaxFilter(2 * margin + 1)) if margin else mask
    diff = np.abs(np.asarray(after.convert("RGB"), np.int16) - np.asarray(before.convert("RGB"), np.int16)).max(axis=2)
    inside, outside = np.asarray(mask) >= 128, np.asarray(grown) == 0
    assert outside.any() and diff[outside].max() <= tolerance, \
        f"{int((diff[outside] > tolerance).sum())} pixels outside the mask changed (max {diff[outside].max()})"
    assert (diff[inside] > 24).mean() > 0.5, "the masked area was not edited"


def person_identity(image: Image.Image, photo: Path, store: ArtifactStore) -> Any:
    """The face critic's verdict: is the person of `photo` in `image`?"""
    ref = store.put_file(photo)
    plan = Plan(prompt="a poster of our host", width=image.width, height=image.height, aspect_ratio="1:1",
                size="1K", subjects=[Subject(id="host", kind="person", reference=ref,
                                             region=Box(x=0.05, y=0.05, w=0.9, h=0.9))])
    return FaceCritic().check(image, plan, CheckContext(candidate_id="c1", store=store, references=[ref]))


def run(backend: Any, request: GenerationRequest, store: ArtifactStore) -> Any:
    async def go() -> Any:
        try:
            return await backend.generate(request, store)
        finally:
            close = getattr(backend, "aclose", None)
            if close is not None:
                await close()

    return asyncio.run(go())


def request(width: int, height: int, ratio: str, **kw: Any) -> GenerationRequest:
    plan = Plan(prompt='A poster that says "SALE"', width=width, height=height, aspect_ratio=ratio, size="1K")
    return GenerationRequest(plan=plan, seed=3, prompt=plan.prompt, **kw)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# --- OpenAI: /v1/images/edits, alpha 0 = edit ---------------------------------------------------------


def test_openai_masked_edit_changes_only_the_pixels_inside_the_mask(store) -> None:
    size, box = (1024, 768), (96, 64, 480, 352)
    before, mask = scene(size), rect_mask(size, box)
    app = openai_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        backend = OpenAIBackend("gpt-image-2", srv.url, FAST)
        result = run(backend, request(*size, "4:3", base_image=store.put_image(before),
                                      mask=store.put_image(mask), instruction=SIGN), store)
    [rec] = app.state.requests.items
    assert rec.path == "/v1/images/edits" and [f["field"] for f in rec.body["files"]] == ["image", "mask"]
    assert_changed_only_inside(before, result.image, mask)


def test_openai_fake_edits_where_the_mask_is_transparent_so_an_inverted_mask_changes_the_rest() -> None:
    size, box = (1024, 1024), (100, 100, 400, 400)
    before = scene(size)
    inverted = Image.new("RGBA", size, (0, 0, 0, 0))
    inverted.paste((0, 0, 0, 255), box)  # opaque (kept) inside the box, transparent (edited) everywhere else
    app = openai_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        resp = httpx.post(f"{srv.url}/v1/images/edits", headers={"Authorization": "Bearer sk-test"},
                          data={"model": "gpt-image-2", "prompt": SIGN, "size": "1024x1024"},
                          files=[("image", ("a.png", png_bytes(before), "image/png")),
                                 ("mask", ("m.png", png_bytes(inverted), "image/png"))], timeout=60)
    after = Image.open(io.BytesIO(base64.b64decode(resp.json()["data"][0]["b64_json"])))
    assert_changed_only_inside(before, after, Image.eval(rect_mask(size, box), lambda v: 255 - v))


def test_openai_fake_rejects_a_mask_without_alpha_like_the_api() -> None:
    app = openai_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        resp = httpx.post(f"{srv.url}/v1/images/edits", headers={"Authorization": "Bearer sk-test"},
                          data={"model": "gpt-image-2", "prompt": SIGN},
                          files=[("image", ("a.png", png_bytes(scene((512, 512))), "image/png")),
                                 ("mask", ("m.png", png_bytes(rect_mask((512, 512), (0, 0, 9, 9))), "image/png"))])
    error = resp.json()["error"]
    assert resp.status_code == 400 and error["param"] == "mask" and "alpha channel" in error["message"]


def test_openai_reference_photo_is_placed_so_its_face_is_in_the_generation(store, faces_dir) -> None:
    app = openai_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        backend = OpenAIBackend("gpt-image-2", srv.url, FAST)
        result = run(backend, request(1024, 1024, "1:1", references=[store.put_file(faces_dir / "kit_harington_1.jpg")]),
                     store)
    assert [f["field"] for f in app.state.requests.items[0].body["files"]] == ["image[]"]
    assert person_identity(result.image, faces_dir / "kit_harington_2.jpg", store).passed, "another photo matches"
    assert not person_identity(result.image, faces_dir / "rose_leslie_1.jpg", store).passed


def test_openai_masked_edit_places_the_references_inside_the_mask_only(store, product_png) -> None:
    size, box = (1024, 1024), (512, 0, 1024, 1024)
    before, mask = scene(size), rect_mask(size, box)
    app = openai_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        backend = OpenAIBackend("gpt-image-2", srv.url, FAST)
        result = run(backend, request(*size, "1:1", base_image=store.put_image(before), mask=store.put_image(mask),
                                      references=[store.put_file(product_png)], instruction="Put the mug here"),
                     store)
    assert_changed_only_inside(before, result.image, mask)
    right = np.asarray(result.image)[:, 512:].astype(int)
    red = (right[..., 0] > 150) & (right[..., 1] < 80) & (right[..., 2] < 80)
    assert red.sum() > 2000, "the red mug of the reference is in the edited half"


# --- Gemini: no mask parameter, the area stated in words -----------------------------------------------


def test_a_mask_in_words_names_boxes_that_cover_it_and_reads_back() -> None:
    mask = rect_mask((1000, 600), (101, 33, 333, 250), (700, 400, 950, 590))
    sentence, boxes = describe_mask(mask)
    assert sentence.startswith("Change only the area inside these boxes") and len(boxes) == 2
    assert "left 10.1%, top 5.5%, right 33.3%, bottom 41.7% (the upper left)" in sentence
    read, rest = read_regions(f"Make it blue\n{sentence}")
    assert rest == "Make it blue" and len(read) == 2
    covered = np.asarray(regions_mask(read, mask.size)) > 0
    assert covered[np.asarray(mask) > 0].all(), "the stated boxes cover the mask"
    assert covered.sum() <= (np.asarray(mask) > 0).sum() * 1.02
    assert describe_mask(Image.new("L", (10, 10), 0)) == ("", [])


def test_gemini_edit_states_the_mask_in_words_and_the_fake_changes_only_inside_it(store) -> None:
    size = (1024, 1024)
    before, mask = scene(size), rect_mask(size, (128, 96, 512, 416), (640, 700, 960, 960))
    app = gemini_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        backend = GeminiBackend(base_url=srv.url, options=FAST)
        assert not backend.capabilities.mask
        result = run(backend, request(*size, "1:1", base_image=store.put_image(before), mask=store.put_image(mask),
                                      instruction=SIGN), store)
    image_part, text_part = app.state.requests.items[0].body["contents"][0]["parts"]
    assert "inlineData" in image_part and text_part["text"].startswith(SIGN + "\nChange only the area inside these")
    assert any("mask stated in words (2 boxes)" in n for n in result.meta["notes"])
    assert_changed_only_inside(before, result.image, mask, margin=2)


def test_gemini_reference_photo_is_placed_so_its_face_is_in_the_generation(store, faces_dir) -> None:
    app = gemini_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        result = run(GeminiBackend(base_url=srv.url, options=FAST),
                     request(1024, 1024, "1:1", references=[store.put_file(faces_dir / "biden_1.jpg")]), store)
    assert person_identity(result.image, faces_dir / "biden_2.jpg", store).passed
    assert not person_identity(result.image, faces_dir / "kit_harington_1.jpg", store).passed


def test_gemini_edit_without_a_mask_keeps_the_picture_and_sets_the_new_text(store) -> None:
    before = scene((1024, 1024))
    app = gemini_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        result = run(GeminiBackend(base_url=srv.url, options=FAST),
                     request(1024, 1024, "1:1", base_image=store.put_image(before), instruction=SIGN), store)
    same = (np.asarray(result.image).astype(int) == np.asarray(before).astype(int)).all(axis=2)
    assert 0.5 < same.mean() < 1.0, "most of the picture is kept, the text is new"


# --- ComfyUI: /upload/mask, LoadImage MASK = 1 - alpha ----------------------------------------------------


def write(tmp_path: Path, name: str, graph: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(graph))
    return str(path)


def edit_graph() -> dict[str, Any]:
    """A user's edit workflow: the masked image's own MASK output through VAEEncodeForInpaint."""
    graph = builtin_workflow("img2img")
    graph["12"] = {"class_type": "LoadImage", "inputs": {"image": "{{mask}}"}}
    graph["11"] = {"class_type": "VAEEncodeForInpaint",
                   "inputs": {"pixels": ["10", 0], "vae": ["4", 2], "mask": ["12", 1], "grow_mask_by": 0}}
    graph["6"]["inputs"]["text"] = "{{instruction}}"
    return graph


def reference_graph() -> dict[str, Any]:
    """A generation workflow that conditions on reference 1 through ReferenceLatent (an edit model's graph)."""
    graph = builtin_workflow("txt2img")
    graph["20"] = {"class_type": "LoadImage", "inputs": {"image": "{{reference_1}}"}}
    graph["21"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["20", 0], "vae": ["4", 2]}}
    graph["22"] = {"class_type": "ReferenceLatent", "inputs": {"conditioning": ["6", 0], "latent": ["21", 0]}}
    graph["3"]["inputs"]["positive"] = ["22", 0]
    return graph


def test_comfyui_builtin_inpaint_changes_only_the_pixels_inside_the_mask(store) -> None:
    size = (512, 384)
    before, mask = scene(size), rect_mask(size, (40, 40, 300, 200))
    app = comfyui_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        result = run(ComfyUIBackend(srv.url, {**FAST, "poll_interval": "0.01"}),
                     request(*size, "4:3", base_image=store.put_image(before), mask=store.put_image(mask),
                             instruction=SIGN), store)
    assert [r.path for r in app.state.requests.items if r.path.startswith("/upload")] == ["/upload/image",
                                                                                          "/upload/mask"]
    assert result.meta["workflow"] == "builtin:inpaint" and result.meta["masked"]
    assert_changed_only_inside(before, result.image, mask)


def test_comfyui_edit_workflow_edits_inside_the_mask_while_workflow_generates(tmp_path, store) -> None:
    size = (512, 384)
    before, mask = scene(size), rect_mask(size, (256, 0, 512, 384))
    options = {**FAST, "poll_interval": "0.01", "workflow": write(tmp_path, "gen.json", builtin_workflow("txt2img")),
               "edit_workflow": write(tmp_path, "edit.json", edit_graph())}
    app = comfyui_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        backend = ComfyUIBackend(srv.url, options)
        assert (backend.capabilities.edit, backend.capabilities.mask) == (True, True)
        edited = run(backend, request(*size, "4:3", base_image=store.put_image(before), mask=store.put_image(mask),
                                      instruction=SIGN), store)
        generated = run(ComfyUIBackend(srv.url, options), request(*size, "4:3"), store)
    assert edited.meta["workflow"].endswith("edit.json") and generated.meta["workflow"].endswith("gen.json")
    graphs = [r.body["prompt"] for r in app.state.requests.items if r.path == "/prompt"]
    assert graphs[0]["6"]["inputs"]["text"] == SIGN and graphs[0]["12"]["inputs"]["image"].startswith("pixloop-mask-")
    assert_changed_only_inside(before, edited.image, mask)


def test_comfyui_generation_workflow_alone_cannot_edit_and_says_which_option_to_set(tmp_path, store) -> None:
    backend = ComfyUIBackend("http://127.0.0.1:9", {"workflow": write(tmp_path, "gen.json", builtin_workflow("txt2img"))})
    assert (backend.capabilities.edit, backend.capabilities.mask) == (False, False)
    with pytest.raises(BadRequest, match="edit_workflow=FILE"):
        run(backend, request(512, 384, "4:3", base_image=store.put_image(scene((512, 384)))), store)


@pytest.mark.parametrize("option, graph, message", [
    ("workflow", "builtin:img2img", "uses {{base_image}} at node 10 (LoadImage) input image, which only an edit"),
    ("workflow", "builtin:inpaint", "uses {{base_image}}"),
    ("edit_workflow", "builtin:txt2img", "has no {{base_image}} placeholder, so it cannot edit an image"),
    ("edit_workflow", "typo", "unknown placeholder {{maks}} at node 12"),
])
def test_comfyui_workflow_placeholders_that_cannot_be_filled_exit_2_before_any_request(
        tmp_path, capsys, option, graph, message) -> None:
    if graph == "typo":
        flow = edit_graph()
        flow["12"]["inputs"]["image"] = "{{maks}}"
    else:
        flow = builtin_workflow(graph.removeprefix("builtin:"))
    app = comfyui_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        code = main(["run", 'A poster that says "HELLO"', "--backend", "comfyui", "--base-url", srv.url,
                     "--backend-option", f"{option}={write(tmp_path, 'flow.json', flow)}",
                     "--out", str(tmp_path / "run"), "-q"])
    assert code == 2
    assert f"comfyui backend: {option}: " in (err := capsys.readouterr().err) and message in err
    assert app.state.requests.items == [], "nothing reached the server"


def test_comfyui_reference_latent_workflow_puts_the_reference_face_in_the_image(tmp_path, store, faces_dir) -> None:
    options = {**FAST, "poll_interval": "0.01", "workflow": write(tmp_path, "ref.json", reference_graph())}
    app = comfyui_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        backend = ComfyUIBackend(srv.url, options)
        assert backend.capabilities.max_references == 1
        result = run(backend, request(1024, 1024, "1:1", references=[store.put_file(faces_dir / "biden_1.jpg")]),
                     store)
    assert person_identity(result.image, faces_dir / "biden_2.jpg", store).passed


def test_comfyui_fake_upload_mask_puts_the_uploaded_alpha_on_the_original_like_comfyui() -> None:
    app = comfyui_fake.create_app(FaultPlan())
    alpha = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    alpha.paste((0, 0, 0, 0), (0, 0, 32, 64))
    with FakeServer(app) as srv:
        httpx.post(f"{srv.url}/upload/image", files={"image": ("base.png", png_bytes(scene((64, 64))), "image/png")})
        ref = json.dumps({"filename": "base.png", "subfolder": "", "type": "input"})
        name = httpx.post(f"{srv.url}/api/upload/mask", data={"original_ref": ref, "type": "input"},
                          files={"image": ("m.png", png_bytes(alpha), "image/png")}).json()["name"]
        broken = httpx.post(f"{srv.url}/upload/mask", files={"image": ("m.png", png_bytes(alpha), "image/png")})
        stored = Image.open(io.BytesIO(httpx.get(f"{srv.url}/view", params={"filename": name, "type": "input"}).content))
    assert stored.mode == "RGBA" and stored.getpixel((10, 5))[3] == 0 and stored.getpixel((50, 5))[3] == 255
    assert stored.convert("RGB").tobytes() == scene((64, 64)).tobytes(), "the original's pixels are kept"
    assert broken.status_code == 500, "no original_ref: ComfyUI's handler raises"


# --- AUTOMATIC1111: img2img with a mask, white = repaint ---------------------------------------------------


def test_a1111_inpainting_changes_only_the_pixels_inside_the_blurred_mask(store) -> None:
    size = (512, 384)
    before, mask = scene(size), rect_mask(size, (200, 100, 450, 300))
    app = a1111_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        result = run(A1111Backend(srv.url, FAST), request(*size, "4:3", base_image=store.put_image(before),
                                                          mask=store.put_image(mask), instruction=SIGN), store)
    body = app.state.requests.items[-1].body
    assert body["inpainting_fill"] == 1 and body["denoising_strength"] == 0.6 and body["mask_blur"] == 4
    assert body["inpaint_full_res"] is False and len(body["init_images"]) == 1
    assert_changed_only_inside(before, result.image, mask, margin=12, tolerance=1)


def test_a1111_inpaint_full_res_without_blur_keeps_every_pixel_outside_the_mask(store) -> None:
    size = (512, 384)
    before, mask = scene(size), rect_mask(size, (16, 16, 160, 120))
    app = a1111_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        result = run(A1111Backend(srv.url, {**FAST, "inpaint_full_res": "true", "mask_blur": "0"}),
                     request(*size, "4:3", base_image=store.put_image(before), mask=store.put_image(mask),
                             instruction=SIGN), store)
    assert_changed_only_inside(before, result.image, mask)


def test_a1111_fake_repaints_black_when_the_mask_is_inverted_as_the_webui_does() -> None:
    size, box = (256, 256), (0, 0, 128, 256)
    before = scene(size)
    app = a1111_fake.create_app(FaultPlan())
    with FakeServer(app) as srv:
        body = {"prompt": SIGN, "width": 256, "height": 256, "seed": 1, "mask_blur": 0, "inpainting_mask_invert": 1,
                "init_images": [base64.b64encode(png_bytes(before)).decode()],
                "mask": base64.b64encode(png_bytes(rect_mask(size, box))).decode()}
        answer = httpx.post(f"{srv.url}/sdapi/v1/img2img", json=body, timeout=60).json()
    after = Image.open(io.BytesIO(base64.b64decode(answer["images"][0])))
    assert_changed_only_inside(before, after, Image.eval(rect_mask(size, box), lambda v: 255 - v))
