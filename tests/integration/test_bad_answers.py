"""A single bad 200 answer (malformed JSON, a truncated image, no image) is asked for again once
(`PixloopConfig.answer_retries`) before the iteration fails; refusals are never retried; a later iteration
that fails for good ends the run below threshold with the candidate it already had."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from agent.backends.base import GenerationRequest, GenerationResult
from agent.interfaces.api import RunResult, generate
from agent.loop.generation import produce
from agent.models import PixloopConfig, Plan
from agent.models.errors import BackendError, ImageInputError, MalformedResponse, NoImageReturned, SafetyBlocked
from agent.runtime.http import deadline
from agent.runtime.store import ArtifactStore
from agent.testing.fakes import FakeServer, FaultPlan
from agent.testing.fakes.gemini import create_app

POSTER = 'A bold poster that says "GRAND OPENING"'
ILLEGIBLE = 'An elegant minimal poster, subtle tone-on-tone, busy texture, that says "GRAND OPENING"'
FAST = {"backoff_initial": 0.01, "backoff_max": 0.05, "read_timeout": 10, "max_attempts": 3}


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


def run(tmp_path: Path, faults: list[str], prompt: str = POSTER, **config: Any) -> tuple[RunResult, int]:
    """A gemini run against the fake with these faults; returns the result and how many generations were asked."""
    with FakeServer(create_app(FaultPlan.parse(faults))) as srv:
        result = generate(prompt, out=tmp_path / "run", max_iterations=3,
                          config=PixloopConfig(backend="gemini", base_url=srv.url, options=FAST, **config))
        asked = sum(1 for r in srv.app.state.requests.items if "generateContent" in r.path)
    return result, asked


def events(result: RunResult, name: str) -> list[dict[str, Any]]:
    lines = (result.run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == name]


@pytest.mark.parametrize("fault", ["truncated", "malformed", "no_image"])
def test_one_bad_answer_is_asked_again_and_the_run_goes_on(tmp_path: Path, fault: str) -> None:
    result, asked = run(tmp_path, [fault])
    assert result.status == "passed" and result.exit_code == 0 and result.error is None
    assert asked == 2
    first = result.report["candidates"][0]
    assert first["id"] == "c1" and first["meta"]["answer_retries"] == 1
    kind = {"truncated": "MalformedResponse", "malformed": "MalformedResponse", "no_image": "NoImageReturned"}[fault]
    assert kind in first["meta"]["answer_errors"][0]
    assert [e["attempt"] for e in events(result, "answer_retry")] == [1]


@pytest.mark.parametrize("fault", ["truncated", "malformed", "no_image"])
def test_two_bad_answers_in_a_row_fail_the_iteration(tmp_path: Path, fault: str) -> None:
    result, asked = run(tmp_path, [f"{fault}*2"])
    assert asked == 2
    assert result.status == "failed" and result.stop_reason == "backend_error" and result.exit_code == 4
    assert result.error is not None and "iteration 1" in result.error and "after 1 answer retry" in result.error
    assert result.report["error"] == result.error and result.report["candidates"] == []


def test_answer_retries_0_turns_the_retry_off(tmp_path: Path) -> None:
    result, asked = run(tmp_path, ["truncated"], answer_retries=0)
    assert asked == 1
    assert result.status == "failed" and result.exit_code == 4 and "MalformedResponse" in (result.error or "")
    assert "answer retr" not in (result.error or "") and events(result, "answer_retry") == []


def test_answer_retries_is_bounded() -> None:
    assert PixloopConfig(answer_retries=5).answer_retries == 5
    with pytest.raises(ValueError):
        PixloopConfig(answer_retries=6)
    with pytest.raises(ValueError):
        PixloopConfig(answer_retries=-1)


def test_a_safety_block_is_not_retried(tmp_path: Path) -> None:
    result, asked = run(tmp_path, ["safety"])
    assert asked == 1 and result.exit_code == 4 and "SafetyBlocked" in (result.error or "")


def test_a_later_iteration_that_keeps_failing_ends_below_threshold_with_the_earlier_candidate(tmp_path: Path) -> None:
    result, asked = run(tmp_path, ["slow=0.01", "malformed*2"], prompt=ILLEGIBLE)
    assert asked == 3  # c1, then iteration 2 and its one retry
    assert result.status == "below_threshold" and result.exit_code == 3 and result.stop_reason == "backend_error"
    assert result.final_image is not None and result.final_image.exists()
    assert result.report["final"]["candidate"] == "c1" and [c["id"] for c in result.report["candidates"]] == ["c1"]
    assert "iteration 2" in (result.error or "") and "MalformedResponse" in (result.error or "")


# --- the retry in `produce`, against backend doubles ----------------------------------------------


class Scripted:
    """A backend that raises or returns what its script says, one entry per call."""

    name = "scripted"

    def __init__(self, *script: Any):
        self.script = list(script)
        self.calls = 0

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        self.calls += 1
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, Exception):
            raise step
        if step == "none":
            return GenerationResult(image=None)
        return GenerationResult(image=Image.new("RGB", (64, 64), "white"), meta={"n": self.calls})


def produced(tmp_path: Path, backend: Scripted, answer_retries: int = 1):
    plan = Plan(prompt=POSTER, width=64, height=64, aspect_ratio="1:1", size="1K")
    return asyncio.run(produce(None, backend=backend, store=ArtifactStore.for_dir(tmp_path), plan=plan, seed=1,
                               prompt=POSTER, references=[], candidates={}, answer_retries=answer_retries))


def test_an_answer_without_image_and_undecodable_bytes_are_retried(tmp_path: Path) -> None:
    backend = Scripted("none", ImageInputError("gemini image is truncated or corrupt"))
    [made] = produced(tmp_path, backend, answer_retries=2)
    assert backend.calls == 3 and made.meta["answer_retries"] == 2 and made.meta["n"] == 3
    assert "NoImageReturned" in made.meta["answer_errors"][0] and "ImageInputError" in made.meta["answer_errors"][1]


def test_the_last_bad_answer_is_raised_as_a_backend_error(tmp_path: Path) -> None:
    backend = Scripted(MalformedResponse("bad json"), "none")
    with pytest.raises(NoImageReturned) as info:
        produced(tmp_path, backend)
    assert isinstance(info.value, BackendError) and "after 1 answer retry" in str(info.value)


@pytest.mark.parametrize("error", [SafetyBlocked("blocked"), BackendError("out of memory")])
def test_refusals_and_other_failures_are_not_retried(tmp_path: Path, error: Exception) -> None:
    backend = Scripted(error)
    with pytest.raises(type(error)):
        produced(tmp_path, backend)
    assert backend.calls == 1


def test_no_retry_once_the_deadline_has_passed(tmp_path: Path) -> None:
    backend = Scripted(MalformedResponse("bad json"))

    async def go():
        plan = Plan(prompt=POSTER, width=64, height=64, aspect_ratio="1:1", size="1K")
        with deadline(0.0):
            return await produce(None, backend=backend, store=ArtifactStore.for_dir(tmp_path), plan=plan, seed=1,
                                 prompt=POSTER, references=[], candidates={}, answer_retries=3)

    with pytest.raises(MalformedResponse):
        asyncio.run(go())
    assert backend.calls == 1
