"""One registry type: built-ins by import path, plugins by entry point, run-time registration, cached instances."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from agent.backends import BACKENDS, get_backend
from agent.loop.planning import PLANNERS, get_planner
from agent.models import Box, CheckSpec, PixloopConfig, Plan, TextElement
from agent.models.errors import UnknownCriticError, UnknownNameError
from agent.runtime.registry import Registry
from critics import CRITICS, CriticInfo, checks_for, critic_info, get_critic, is_measured, weight


class Thing:
    def __init__(self) -> None:
        self.made = True


def test_a_builtin_is_imported_on_first_use_and_its_instance_is_shared() -> None:
    reg: Registry[object] = Registry("thing", builtins={"od": "collections:OrderedDict"}, group=None)
    assert reg.names() == ["od"] and reg.origin("od") == "builtin" and reg.provider("od") == "pixloop"
    assert reg.instance("od") is reg.instance("od")
    assert reg.instance("od", key=1) is not reg.instance("od", key=2)


def test_registration_replaces_a_builtin_for_the_process_and_unregister_restores_it() -> None:
    reg: Registry[object] = Registry("thing", builtins={"x": "collections:OrderedDict"}, group=None)
    first = reg.instance("x")
    with reg.registered("x", Thing):
        assert isinstance(reg.instance("x"), Thing) and reg.origin("x") == "registered"
    assert type(reg.instance("x")) is type(first) and reg.origin("x") == "builtin"


def test_unknown_names_are_input_errors_that_list_the_known_ones() -> None:
    reg: Registry[object] = Registry("gadget", builtins={"a": "collections:OrderedDict"}, group=None,
                                     error=UnknownCriticError)
    with pytest.raises(UnknownCriticError, match="unknown gadget 'b'; known gadgets: a"):
        reg.factory("b")
    assert issubclass(UnknownCriticError, UnknownNameError)


def test_a_builtin_that_cannot_be_imported_names_the_extra_to_install() -> None:
    reg: Registry[object] = Registry("backend", builtins={"gpu": "no_such_module_xyz:Backend"}, group=None,
                                     unavailable_hint=lambda n: f"install pixloop[{n}]")
    with pytest.raises(UnknownNameError, match=r"backend 'gpu' is not available here: .*install pixloop\[gpu\]"):
        reg.factory("gpu")


def test_entry_points_in_the_group_are_found_with_their_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    reg: Registry[object] = Registry("thing", builtins={}, group="pixloop.things")
    ep = EntryPoint(name="od", value="collections:OrderedDict", group="pixloop.things")
    monkeypatch.setattr("agent.runtime.registry.entry_points", lambda group: [ep] if group == "pixloop.things" else [])
    assert reg.names() == ["od"] and reg.origin("od") == "plugin" and reg.provider("od") == "collections:OrderedDict"
    assert reg.instance("od") == {}


def test_the_three_registries_hold_the_built_ins() -> None:
    assert {"ocr", "face", "artifacts", "spec", "preservation", "vlm"} <= set(CRITICS.names())
    assert {"compose", "gemini", "openai", "comfyui", "a1111", "diffusers", "simulated"} <= set(BACKENDS.names())
    assert {"rule", "llm"} <= set(PLANNERS.names())
    assert get_backend("compose", PixloopConfig()) is get_backend("compose", PixloopConfig())
    assert get_planner("rule").name == "rule"


def test_each_critic_describes_itself_and_the_loop_reads_weights_and_ranking_from_that() -> None:
    for name in ("ocr", "face", "artifacts", "spec", "preservation", "vlm"):
        info = critic_info(name)
        assert isinstance(info, CriticInfo) and info.threshold_source and info.description and info.on_by_default
        assert get_critic(name).name == name
    assert (weight("ocr"), weight("face"), weight("spec"), weight("artifacts"), weight("vlm")) == (3.0, 3.0, 2.0, 1.5, 1.0)
    assert is_measured("ocr") and not is_measured("vlm")
    assert critic_info("ocr").needs == ("text",) and critic_info("preservation").needs == ("original",)


def test_a_critic_that_is_off_by_default_runs_only_when_the_brief_names_it() -> None:
    class Quiet:
        name = "quiet"
        info = CriticInfo(threshold=0.3, threshold_source="test")

        def check(self, image, plan, context):  # pragma: no cover - never run here
            raise AssertionError

    plan = Plan(prompt="p", width=64, height=64, aspect_ratio="1:1", size="1K",
                text=[TextElement(id="h", content="HI", region=Box(x=0, y=0, w=1, h=1))])
    with CRITICS.registered("quiet", Quiet):
        assert "quiet" not in checks_for(plan)
        assert checks_for(plan, extra=["quiet"])["quiet"] == CheckSpec(threshold=0.3, source="default")
        assert checks_for(plan, {"quiet": 0.9})["quiet"] == CheckSpec(threshold=0.9, source="brief")
        with pytest.raises(UnknownCriticError, match="critics: unknown critic"):
            checks_for(plan, extra=["nope"])
