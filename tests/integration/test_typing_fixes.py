"""Bugs found while making mypy pass: each test pins the fixed behaviour."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="the diffusers backend needs torch: pip install 'pixloop[diffusers]'")
pytest.importorskip("diffusers", reason="the diffusers backend needs diffusers: pip install 'pixloop[diffusers]'")

from agent.backends.diffusers import DiffusersBackend, DiffusersConfigError
from agent.models import PixloopConfig


def _config(tmp_path, **options) -> PixloopConfig:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return PixloopConfig(backend="diffusers", model=str(tmp_path), options=options)


def test_the_bare_scheduler_mixin_is_an_unknown_scheduler_not_a_crash_at_generation(tmp_path) -> None:
    # diffusers.SchedulerMixin is a class in the diffusers namespace but has no from_config: it used to be
    # accepted here and then fail with AttributeError when the pipeline was built.
    with pytest.raises(DiffusersConfigError, match="unknown diffusers scheduler 'SchedulerMixin'; choose one of"):
        DiffusersBackend.from_config(_config(tmp_path, scheduler="SchedulerMixin"))


def test_a_concrete_scheduler_class_is_still_accepted(tmp_path) -> None:
    import diffusers

    backend = DiffusersBackend.from_config(_config(tmp_path, scheduler="EulerDiscreteScheduler"))
    assert backend.scheduler_cls is diffusers.EulerDiscreteScheduler
