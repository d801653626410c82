"""Run critics on any image without generating: the library side of `pixloop check`.

The image gets a plan built from what the caller says it should be (text, references,
size, original and mask); every requested critic runs in parallel, as in the graph.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agent.loop.planning import looks_like_person
from agent.models import (
    ASPECT_RATIOS,
    LONG_SIDE,
    Box,
    CheckSpec,
    Plan,
    Subject,
    TextElement,
    Verdict,
    nearest_aspect_ratio,
)
from agent.models.errors import CriticUnavailable, InputError
from agent.runtime.images import ImageInputError, load_image
from agent.runtime.paths import prepare_out_dir
from agent.runtime.store import ArtifactStore
from critics import CheckContext, applies, check_names, checks_for, get_critic

NEED_FLAGS = {"text": "--text", "person": "a --reference photo of a person",
              "reference": "a --reference image of an object (one with a face goes to the face critic)",
              "original": "--original", "mask": "--mask"}
"""How `pixloop check` is given each input a critic can need (`CriticInfo.needs`)."""


def _needs_hint(name: str) -> str:
    needs = get_critic(name).info.needs
    return f"{name} needs {' and '.join(NEED_FLAGS[n] for n in needs)}" if needs else f"{name} does not apply"


class CheckResult(BaseModel):
    """Verdicts for one image; `passed` is True only if every critic that ran passed."""

    image: str
    width: int
    height: int
    passed: bool
    critics: list[dict[str, Any]]
    unverified: list[str] = []
    """Critics that could not run (their engine or endpoint is unavailable): nothing of theirs was verified."""


nearest_ratio = nearest_aspect_ratio
"""The supported aspect ratio closest to width/height (`agent.models.nearest_aspect_ratio`)."""


def parse_size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) <= 0 or int(h) <= 0:
        raise InputError(f"--size: expected WIDTHxHEIGHT such as 1920x1080, got {text!r}")
    return int(w), int(h)


def _check_texts(texts: Iterable[str]) -> list[str]:
    """The required texts as a list; an empty or whitespace-only one is bad input naming `--text`."""
    out = list(texts)
    for i, t in enumerate(out, 1):
        if not t.strip():
            raise InputError(f"--text: text {i} is {'empty' if not t else 'only whitespace'}; "
                             "give the exact text the image must show")
    return out


def _subject_id(kind: str, index: int, path: str | Path, taken: set[str]) -> str:
    """A person is `person<N>`; an object is named by its file ("bottle.png"), so the reference critic's feedback
    says which file it did not find ("reference 2 (bottle.png) not found ...")."""
    if kind == "person":
        return f"person{index + 1}"
    name = Path(path).name or f"product{index + 1}"
    return name if name not in taken else f"{name} ({index + 1})"


def build_check_plan(image_size: tuple[int, int], store: ArtifactStore, *, texts: Iterable[str] = (),
                     references: Iterable[str | Path] = (), original: str | Path | None = None,
                     mask: str | Path | None = None, size: tuple[int, int] | None = None,
                     aspect: str | None = None) -> Plan:
    """A plan describing what the image was supposed to be."""
    if aspect is not None and aspect not in ASPECT_RATIOS:
        raise InputError(f"--aspect: unknown aspect ratio {aspect!r}; choose one of {', '.join(ASPECT_RATIOS)}")
    if size is not None:
        width, height = size
    elif aspect is not None:
        a, b = (int(v) for v in aspect.split(":"))
        long_side = max(image_size)
        width, height = (long_side, round(long_side * b / a)) if a >= b else (round(long_side * a / b), long_side)
    else:
        width, height = image_size
    ratio = aspect or nearest_ratio(width, height)
    tier = next((t for t, side in LONG_SIDE.items() if max(width, height) <= side), "4K")
    whole = Box(x=0, y=0, w=1, h=1)
    elements = [TextElement(id=f"text{i + 1}", content=t, role="headline" if i == 0 else "body", region=whole)
                for i, t in enumerate(_check_texts(texts))]
    subjects: list[Subject] = []
    for i, path in enumerate(references):
        ref = store.put_file(path)
        # one detector decides, as in a run: a face the face critic can match makes a person; anything else is an
        # object the reference critic searches for
        kind = "person" if looks_like_person(store, ref) else "product"
        subjects.append(Subject(id=_subject_id(kind, i, path, {s.id for s in subjects}), kind=kind, reference=ref,
                                region=whole))
    source = store.put_file(original) if original else None
    mask_ref = store.put_file(mask) if mask else None
    if mask_ref is not None and source is None:
        raise InputError("--mask needs --original (the image the edit started from)")
    return Plan(prompt="(pixloop check)", width=width, height=height, aspect_ratio=ratio, size=tier,
                text=elements, subjects=subjects, source=source, mask=mask_ref)


def check_image(image_path: str | Path, *, texts: Iterable[str] = (), references: Iterable[str | Path] = (),
                original: str | Path | None = None, mask: str | Path | None = None,
                size: tuple[int, int] | None = None, aspect: str | None = None,
                critics: Iterable[str] | None = None, thresholds: dict[str, float] | None = None,
                out: str | Path | None = None) -> CheckResult:
    """Run critics on an existing image. Raises InputError (bad input) with a message naming the problem.

    Evidence files (heat maps, difference maps) go to `out` when given, else they are discarded.
    """
    texts = _check_texts(texts)
    image = load_image(image_path)
    names = list(critics) if critics is not None else None
    if names is not None:
        check_names(names, "--critics")
    with tempfile.TemporaryDirectory(prefix="pixloop-check-") as tmp:
        store = ArtifactStore(prepare_out_dir(out, "--out") if out else tmp)
        plan = build_check_plan(image.size, store, texts=texts, references=references, original=original,
                                mask=mask, size=size, aspect=aspect)
        checks = checks_for(plan, thresholds)
        if names is not None:
            # a critic asked for by name runs when it has what it needs, on by default or not (plugins)
            for n in names:
                critic = get_critic(n)
                if n not in checks and applies(critic, plan):
                    checks[n] = CheckSpec(threshold=(thresholds or {}).get(n, critic.info.threshold),
                                          source="brief" if n in (thresholds or {}) else "default")
            idle = [n for n in names if n not in checks]
            if idle:
                raise InputError(f"--critics: nothing for {', '.join(idle)} to check in this image "
                                 f"({'; '.join(_needs_hint(n) for n in idle)})")
            checks = {n: checks[n] for n in names}
        plan.checks = checks
        context = CheckContext(candidate_id=Path(image_path).name, store=store,
                               references=[s.reference for s in plan.subjects], original=plan.source, mask=plan.mask)

        def run(name: str) -> Verdict:
            t0 = time.perf_counter()
            try:
                v = get_critic(name).check(image, plan, context)
            except CriticUnavailable as e:
                return Verdict.unavailable(name, context.candidate_id, checks[name].threshold, str(e))
            except Exception as e:  # noqa: BLE001 - report, never crash the whole check
                return Verdict(critic=name, candidate_id=context.candidate_id, score=0.0, passed=False,
                               threshold=checks[name].threshold, feedback=f"{name} critic failed: {e}",
                               error=f"{type(e).__name__}: {e}")
            return v.model_copy(update={"seconds": round(time.perf_counter() - t0, 4)})

        with ThreadPoolExecutor(max_workers=max(1, len(checks))) as pool:
            verdicts = list(pool.map(run, list(checks)))
        rows = []
        for v in verdicts:
            evidence = v.evidence if out else _drop_paths(v.evidence)
            row = {"name": v.critic, "status": v.status, "score": round(v.score, 4) if v.checked else None,
                   "passed": v.passed, "threshold": v.threshold, "feedback": v.feedback, "evidence": evidence,
                   "seconds": v.seconds}
            if v.error:
                row["error"] = v.error
            rows.append(row)
    return CheckResult(image=str(image_path), width=image.width, height=image.height,
                       passed=all(v.passed for v in verdicts if v.checked), critics=rows,
                       unverified=[v.critic for v in verdicts if not v.checked])


def _drop_paths(evidence: dict[str, Any]) -> dict[str, Any]:
    """Without --out, evidence files are temporary: do not report paths that will not exist."""
    return {k: (None if k in ("heatmap", "diff_map") else v) for k, v in evidence.items()}


__all__ = ["CheckResult", "ImageInputError", "build_check_plan", "check_image", "nearest_ratio", "parse_size"]
