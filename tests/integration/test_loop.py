"""The whole loop on the embedded compose backend with the real OCR critic."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from agent import BriefError, generate
from agent.interfaces.api import CHECKPOINT_DB
from agent.models import Verdict
from critics import CriticInfo, register_critic, unregister_critic

ILLEGIBLE = ('An elegant minimal poster, subtle tone-on-tone, busy texture, '
             'that says "GRAND OPENING" and "Saturday at noon"')


def test_illegible_first_render_is_corrected_and_passes(tmp_path, delivered_from) -> None:
    result = generate(ILLEGIBLE, out=tmp_path / "run", max_iterations=4)

    assert result.status == "passed" and result.stop_reason == "passed"
    first, last = result.report["candidates"][0], result.report["candidates"][-1]
    first_ocr = next(v for v in first["verdicts"] if v["critic"] == "ocr")
    last_ocr = next(v for v in last["verdicts"] if v["critic"] == "ocr")
    assert not first_ocr["passed"] and "GRAND OPENING" in first_ocr["feedback"]
    assert last_ocr["passed"] and last_ocr["score"] >= 0.9
    assert all(v["passed"] for v in last["verdicts"])
    action = result.report["actions"][0]
    assert action["strategy"] == "restyle_text" and action["style"], "the correction must change the style"
    assert result.final_image is not None and result.final_image.exists()
    delivered_from(result.final_image, tmp_path / "run" / last["path"])
    assert len(list((tmp_path / "run" / "candidates").glob("*.png"))) == len(result.report["candidates"])


class _AllWhite:
    """A real measurement no compose render can satisfy: the share of pure white pixels must be 99%."""

    name = "all_white"
    info = CriticInfo(threshold=0.99, threshold_source="test", description="share of pure white pixels")

    def check(self, image, plan, context) -> Verdict:
        share = float((np.asarray(image.convert("L")) == 255).mean())
        return Verdict(critic=self.name, candidate_id=context.candidate_id, score=share, passed=share >= 0.99,
                       threshold=0.99, feedback=f"only {share:.0%} of the pixels are white")


def unpassable(tmp_path, **budget):
    """A run whose brief no image can satisfy (the all_white critic), with these budget limits."""
    register_critic("all_white", _AllWhite)
    try:
        return generate('A poster that says "OPEN"', out=tmp_path / "run", critics=["all_white"], **budget)
    finally:
        unregister_critic("all_white")


def test_brief_that_cannot_pass_stops_on_budget_below_threshold(tmp_path) -> None:
    result = unpassable(tmp_path, max_iterations=3, patience=5)

    assert result.status == "below_threshold"
    assert result.stop_reason == "max_iterations"
    assert result.iterations == 3 and len(result.report["candidates"]) == 3
    assert result.final_image is not None and result.final_image.exists()
    assert "all_white" in result.report["summary"] and "iteration budget" in result.report["summary"]


def test_no_improvement_stops_after_patience_rounds(tmp_path) -> None:
    result = unpassable(tmp_path, max_iterations=10, patience=1)

    assert result.stop_reason == "no_improvement"
    assert result.iterations < 10


def test_cost_budget_is_never_exceeded(tmp_path) -> None:
    result = unpassable(tmp_path, max_iterations=10, max_cost=2, patience=10)

    assert result.stop_reason == "max_cost"
    assert result.report["cost_used"] <= 2
    assert result.iterations == 2


def test_budget_below_one_image_is_bad_input(tmp_path) -> None:
    with pytest.raises(BriefError, match=r"max_cost 0.5 is below the cost of one image"):
        generate("a poster", out=tmp_path / "run", max_cost=0.5)


def test_unknown_backend_is_bad_input(tmp_path) -> None:
    with pytest.raises(BriefError, match=r"unknown backend 'dall-e-9'; known backends: .*compose"):
        generate("a poster", backend="dall-e-9", out=tmp_path / "run")


def test_threshold_for_unknown_critic_is_bad_input(tmp_path) -> None:
    with pytest.raises(BriefError, match=r"unknown critic\(s\) sharpness"):
        generate("a poster", thresholds={"sharpness": 0.5}, out=tmp_path / "run")


def test_checkpoints_hold_image_references_not_pixels(tmp_path) -> None:
    result = generate('A 2K poster that says "HELLO"', out=tmp_path / "run", max_iterations=2)
    db = sqlite3.connect(result.run_dir / CHECKPOINT_DB)
    blobs = [r[0] for r in db.execute("select checkpoint from checkpoints")]
    blobs += [r[0] for r in db.execute("select value from writes")]
    assert blobs
    for blob in blobs:
        assert b"\x89PNG" not in blob and b"\xff\xd8\xff" not in blob
    assert max(len(b) for b in blobs) < 20_000


def test_report_records_verdicts_thresholds_actions_and_timings(tmp_path) -> None:
    result = generate(ILLEGIBLE, out=tmp_path / "run", max_iterations=3)
    report = json.loads((result.run_dir / "report.json").read_text())

    assert report["status"] == "passed" and report["iterations"] == len(report["candidates"])
    assert report["thresholds"]["ocr"] == {"threshold": 0.9, "source": "default"}
    for c in report["candidates"]:
        assert {v["critic"] for v in c["verdicts"]} == set(report["thresholds"])
        for v in c["verdicts"]:
            assert 0 <= v["score"] <= 1 and v["threshold"] == report["thresholds"][v["critic"]]["threshold"]
    assert {"plan", "backend", "critics", "judge"} <= set(report["timings"])
    events = [json.loads(ln)["event"] for ln in (result.run_dir / "events.jsonl").read_text().splitlines()]
    assert events[:2] == ["policy", "plan"] and events[-1] == "finalize" and "correct" in events


def test_user_threshold_is_used_and_reported(tmp_path) -> None:
    result = generate('A bold poster that says "OPEN"', out=tmp_path / "run", thresholds={"ocr": 0.5})
    assert result.report["thresholds"]["ocr"] == {"threshold": 0.5, "source": "brief"}
    assert result.report["candidates"][0]["verdicts"][0]["threshold"] == 0.5


def test_api_keys_never_reach_reports_logs_or_checkpoints(tmp_path, monkeypatch) -> None:
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("GEMINI_API_KEY", secret + "g")
    result = generate('A poster that says "HELLO"', out=tmp_path / "run", max_iterations=1)
    for path in result.run_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_secret_backend_options_are_masked_in_run_settings(tmp_path) -> None:
    from agent.models import PixloopConfig, public_config

    config = PixloopConfig(options={"password": "hunter2-secret", "steps": "20", "api_key": "k-123456"})
    data = public_config(config)
    assert data["options"] == {"password": "***", "steps": "20", "api_key": "***"}


def test_generate_works_from_inside_a_running_event_loop_as_in_jupyter(tmp_path) -> None:
    import asyncio

    async def notebook_cell():  # a notebook runs its cells inside an event loop
        return generate('A poster that says "HELLO"', out=tmp_path / "nb", max_iterations=1)

    result = asyncio.run(notebook_cell())
    assert result.final_image is not None and result.final_image.exists()
    assert result.status in ("passed", "below_threshold")
