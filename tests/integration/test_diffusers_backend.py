"""The diffusers backend on CPU, against a tiny randomly initialised Stable Diffusion pipeline.

The pipeline is built from config here and saved with save_pretrained, so the backend runs its
real loading path (from_pretrained, local_files_only) on a real folder; no weights are downloaded.
A random UNet draws noise, so these tests check sizes, determinism, modes and errors, not content.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the diffusers backend needs torch: pip install 'pixloop[diffusers]'")
pytest.importorskip("diffusers", reason="the diffusers backend needs diffusers: pip install 'pixloop[diffusers]'")
pytest.importorskip("transformers", reason="the tiny test pipeline needs transformers (CLIP)")

import numpy as np
import torch
from PIL import Image

import agent
from agent.backends import BackendError, GenerationRequest, get_backend
from agent.backends.diffusers import DiffusersBackend, DiffusersConfigError, generation_size
from agent.models import PixloopConfig, Plan
from agent.models.errors import SafetyBlocked
from agent.runtime.store import ArtifactStore

FAST = {"steps": 2, "max_side": 64}


def config(model_dir: Path | str, **options) -> PixloopConfig:
    return PixloopConfig(backend="diffusers", options={"model_path": str(model_dir), **options})


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (GPT-2 / CLIP's bytes_to_unicode)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            symbols.append(256 + extra)
            extra += 1
    return [chr(c) for c in symbols]


def write_tiny_clip_tokenizer(folder: Path) -> Path:
    """A tiny CLIP BPE vocabulary: every byte symbol, with and without </w>, a few merges, the specials."""
    symbols = _byte_symbols()
    merges = ["p o", "po s", "t e", "te r</w>"]
    tokens = [*symbols, *(s + "</w>" for s in symbols), *(m.replace(" ", "") for m in merges),
              "<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder


def build_tiny_sd_pipeline(folder: Path) -> Path:
    """Save a randomly initialised, few-MB Stable Diffusion pipeline (UNet, VAE, CLIP, DDIM) to folder."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32)
    vae = AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"])
    tokenizer = CLIPTokenizer.from_pretrained(str(write_tiny_clip_tokenizer(folder.parent / "tokenizer-src")),
                                              local_files_only=True, model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=1000,
        layer_norm_eps=1e-5, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny tensors on two shared cores: thread hand-offs cost 10-20x the maths, so use one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd_pipeline(tmp_path_factory.mktemp("tiny-sd") / "model")


@pytest.fixture(scope="module")
def backend(model_dir: Path) -> DiffusersBackend:
    return DiffusersBackend.from_config(config(model_dir, **FAST))


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "run")


def make_plan(width: int = 64, height: int = 40, negative: list[str] | None = None) -> Plan:
    return Plan(prompt="A poster", width=width, height=height, aspect_ratio="16:9", size="1K",
                negative=negative if negative is not None else ["blurry"])


def run(backend: DiffusersBackend, store: ArtifactStore, seed: int = 1, plan: Plan | None = None, **fields):
    request = GenerationRequest(plan=plan or make_plan(), seed=seed, prompt="A poster", **fields)
    return asyncio.run(backend.generate(request, store))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def red_base_and_box_mask(store: ArtifactStore, size: tuple[int, int] = (64, 40)):
    base = store.put_image(Image.new("RGB", size, (220, 30, 30)))
    mask = Image.new("L", size, 0)
    mask.paste(255, (16, 8, 48, 32))
    return base, store.put_image(mask)


def test_generation_size_caps_the_long_side_keeps_the_aspect_and_rounds_to_multiples_of_8() -> None:
    assert generation_size(1024, 1024, 1024) == (1024, 1024)
    assert generation_size(1376, 768, 1024) == (1024, 568)
    assert generation_size(680, 1024, 64) == (40, 64)
    assert generation_size(100, 30, 64) == (64, 16)
    assert generation_size(50, 30, 1024) == (48, 32)
    assert generation_size(1000, 1000, 1024, multiple=16) == (1008, 1008)
    assert generation_size(3, 3, 1024) == (8, 8)


def test_generate_returns_a_free_image_of_the_planned_size_from_the_saved_folder(backend, store) -> None:
    result = run(backend, store, plan=make_plan(64, 40))

    assert result.image.size == (64, 40) and result.image.mode == "RGB"
    assert result.cost == 0.0
    assert result.meta["pipeline"] == "StableDiffusionPipeline" and result.meta["mode"] == "text2img"
    assert result.meta["steps"] == 2 and result.meta["seed"] == 1 and result.meta["guidance_scale"] == 7.5
    assert result.meta["device"] == "cpu" and result.meta["dtype"] == "float32"
    assert result.meta["size"] == {"requested": [64, 40], "generated": [64, 40]}
    assert "notes" not in result.meta
    json.dumps(result.meta)


def test_a_plan_larger_than_max_side_is_rendered_smaller_and_the_rounding_is_noted(backend, store) -> None:
    result = run(backend, store, plan=make_plan(100, 60))

    assert result.image.size == (64, 40)
    assert result.meta["size"] == {"requested": [100, 60], "generated": [64, 40]}
    assert any("64x40 instead of 100x60" in n and "max_side 64" in n for n in result.meta["notes"])


def test_same_seed_gives_identical_pixels_and_another_seed_differs(backend, store) -> None:
    a, again, other = (run(backend, store, seed=s).image for s in (7, 7, 8))

    assert np.array_equal(pixels(a), pixels(again))
    assert np.abs(pixels(a) - pixels(other)).mean() > 1.0


def test_img2img_with_a_base_image_runs_at_the_planned_size_with_the_configured_strength(backend, store) -> None:
    base = store.put_image(Image.new("RGB", (128, 80), (220, 30, 30)))
    result = run(backend, store, base_image=base)

    assert result.image.size == (64, 40)
    assert result.meta["mode"] == "img2img" and result.meta["pipeline"] == "StableDiffusionImg2ImgPipeline"
    assert result.meta["strength"] == 0.6 and result.meta["base_image"] == base.sha256
    assert np.abs(pixels(result.image) - pixels(Image.new("RGB", (64, 40), (220, 30, 30)))).mean() > 1.0


def test_inpainting_changes_only_the_white_part_of_the_mask(backend, store) -> None:
    base, mask = red_base_and_box_mask(store)
    result = run(backend, store, base_image=base, mask=mask)

    assert result.image.size == (64, 40)
    assert result.meta["mode"] == "inpaint" and result.meta["pipeline"] == "StableDiffusionInpaintPipeline"
    out = pixels(result.image)
    assert (out[:8] == (220, 30, 30)).all() and (out[:, :16] == (220, 30, 30)).all()
    assert np.abs(out[8:32, 16:48] - np.array([220, 30, 30])).mean() > 1.0
    again = run(backend, store, base_image=base, mask=mask)
    assert np.array_equal(out, pixels(again.image))


def test_all_modes_share_one_copy_of_the_weights_per_folder_device_and_dtype(backend, model_dir) -> None:
    other = DiffusersBackend.from_config(PixloopConfig(backend="diffusers", model=str(model_dir),
                                                       options={"steps": "3"}))
    text2img, _ = backend._pipeline("text2img")
    img2img, _ = other._pipeline("img2img")

    assert other._weights() is backend._weights()
    assert img2img.unet is text2img.unet and img2img.vae is text2img.vae


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside diffusers, numpy 2
def test_a_named_scheduler_replaces_the_folders_own_for_this_backend_only(backend, model_dir, store) -> None:
    dpm = DiffusersBackend.from_config(config(model_dir, scheduler="DPMSolverMultistepScheduler", **FAST))
    result = run(dpm, store)

    assert result.meta["scheduler"] == "DPMSolverMultistepScheduler" and result.image.size == (64, 40)
    assert run(backend, store).meta["scheduler"] == "DDIMScheduler"


def test_string_options_from_the_cli_are_parsed(model_dir) -> None:
    b = DiffusersBackend.from_config(config(model_dir, steps="4", guidance_scale="5.5", max_side="512",
                                            strength="0.3", overlay="false", device="cpu", dtype="auto"))

    assert (b.steps, b.guidance_scale, b.max_side, b.strength, b.overlay) == (4, 5.5, 512, 0.3, False)
    assert b.device == "cpu" and b.dtype == torch.float32


def test_capabilities_are_honest(backend) -> None:
    caps = backend.capabilities

    assert caps.edit and caps.mask and caps.deterministic
    assert caps.max_references == 0 and caps.cost_per_image == 0.0
    assert caps.native_long_side == 64 and caps.sizes == []


def test_references_are_ignored_with_a_note(backend, store) -> None:
    ref = store.put_image(Image.new("RGB", (32, 32), "blue"))
    result = run(backend, store, references=[ref])

    assert any("1 reference image(s) ignored" in n for n in result.meta["notes"])


def test_negative_prompt_comes_from_the_plan_and_a_long_prompt_is_noted_as_truncated(backend, store,
                                                                                      monkeypatch) -> None:
    pipe, _ = backend._pipeline("text2img")
    seen: dict = {}
    encode = type(pipe).encode_prompt

    def spy(*args, **kwargs):
        seen.update(inspect.signature(encode).bind(*args, **kwargs).arguments)
        return encode(*args, **kwargs)

    monkeypatch.setattr(type(pipe), "encode_prompt", spy)
    request = GenerationRequest(plan=make_plan(negative=["watermark", "extra text"]), seed=1,
                                prompt="poster " * 100)
    result = asyncio.run(backend.generate(request, store))

    assert seen["negative_prompt"] == "watermark, extra text"
    assert any("the text encoder reads only the first 77" in n for n in result.meta["notes"])


def test_nsfw_flag_from_the_safety_checker_is_safety_blocked(backend, store, monkeypatch) -> None:
    pipe, _ = backend._pipeline("text2img")

    class Features:
        pixel_values = torch.zeros(1, 3, 8, 8)

        def to(self, *_):
            return self

    monkeypatch.setattr(pipe, "feature_extractor", lambda images, return_tensors: Features())
    monkeypatch.setattr(pipe, "safety_checker", lambda images, clip_input: (images, [True]))

    with pytest.raises(SafetyBlocked) as err:
        run(backend, store)
    assert err.value.reason == "nsfw_checker" and "NSFW" in str(err.value)


def test_out_of_memory_and_runtime_errors_become_clear_backend_errors(backend, store, monkeypatch) -> None:
    pipe, _ = backend._pipeline("text2img")

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(pipe.unet, "forward", oom)
    with pytest.raises(BackendError, match="out of GPU memory generating 64x40"):
        run(backend, store)

    def broken(*args, **kwargs):
        raise RuntimeError("expected scalar type Half but found Float")

    monkeypatch.setattr(pipe.unet, "forward", broken)
    with pytest.raises(BackendError, match="StableDiffusionPipeline failed .*Half but found Float"):
        run(backend, store)


def test_a_mask_without_a_base_image_is_a_backend_error(backend, store) -> None:
    _, mask = red_base_and_box_mask(store)
    with pytest.raises(BackendError, match="mask was given without a base_image"):
        run(backend, store, mask=mask)


@pytest.mark.parametrize("options, message", [
    ({}, "needs a local model folder"),
    ({"model_path": "/no/such/folder"}, "does not exist"),
])
def test_a_missing_model_folder_is_a_clear_config_error(options, message) -> None:
    with pytest.raises(DiffusersConfigError, match=message) as err:
        DiffusersBackend.from_config(PixloopConfig(backend="diffusers", options=options))
    assert isinstance(err.value, BackendError) and isinstance(err.value, ValueError)


def test_a_folder_without_model_index_json_is_not_a_diffusers_folder(tmp_path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(DiffusersConfigError, match="not a diffusers pipeline folder \\(no model_index.json\\)"):
        DiffusersBackend.from_config(PixloopConfig(backend="diffusers", model=str(tmp_path)))


@pytest.mark.parametrize("options, message", [
    ({"scheduler": "NoSuchScheduler"}, "unknown diffusers scheduler 'NoSuchScheduler'; choose one of .*DDIMScheduler"),
    ({"dtype": "int8"}, "unknown dtype 'int8'"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"steps": "0"}, "steps must be at least 1"),
    ({"steps": "two"}, "steps='two' is not a valid int"),
    ({"strength": "1.5"}, "strength must be in \\(0, 1\\]"),
])
def test_bad_options_are_clear_config_errors(model_dir, options, message) -> None:
    with pytest.raises(DiffusersConfigError, match=message):
        DiffusersBackend.from_config(config(model_dir, **options))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_a_gpu_is_a_config_error(model_dir) -> None:
    with pytest.raises(DiffusersConfigError, match="torch sees no CUDA device"):
        DiffusersBackend.from_config(config(model_dir, device="cuda"))


def test_a_folder_whose_weights_cannot_load_fails_on_generate_with_the_path(tmp_path, store) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                           "unet": ["diffusers", "UNet2DConditionModel"]}))
    broken = DiffusersBackend.from_config(PixloopConfig(backend="diffusers", model=str(tmp_path), options=FAST))
    with pytest.raises(BackendError, match=f"cannot load a diffusers pipeline from {tmp_path}"):
        run(broken, store)


def test_the_registry_builds_the_diffusers_backend(model_dir) -> None:
    assert isinstance(get_backend("diffusers", config(model_dir, **FAST)), DiffusersBackend)


def test_the_loop_runs_end_to_end_and_the_spec_critic_reports_the_capped_size(model_dir, tmp_path) -> None:
    result = agent.generate("A poster", config=config(model_dir, **FAST), size="1K", out=tmp_path / "run",
                            max_iterations=1)

    assert result.error is None and result.iterations == 1
    assert result.status == "below_threshold" and result.stop_reason == "max_iterations"
    assert result.final_image is not None and result.final_image.exists()
    (candidate,) = result.report["candidates"]
    assert (tmp_path / "run" / candidate["path"]).exists() and candidate["cost"] == 0.0
    assert max(candidate["width"], candidate["height"]) == 64
    spec = next(v for v in candidate["verdicts"] if v["critic"] == "spec")
    assert not spec["passed"] and spec["evidence"]["width"] == candidate["width"]
    assert "was requested" in spec["feedback"]
