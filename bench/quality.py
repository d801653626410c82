"""Quality benchmark: how often the loop delivers a passing image, and what each strategy is worth.

A fixed suite of briefs (posters and banners with exact text, product shots on new backgrounds, scenes
with one or two reference people, masked edits, real photo edits through `edit()` with derived masks, fusions of
people and products, 16:9 and 21:9 at 2K/4K) runs on the `simulated` backend
(compose renders plus injected failures at the "typical" profile's rates, partial response to feedback)
with the real critics (OCR, face identity, artifacts, spec, edit preservation). It prints:

- pass rate, mean iterations and mean cost for single-shot (1 iteration), the loop at <=3 and at <=5
  iterations, and the loop at <=3 with each correction strategy removed (an ablation);
- pass rates per scenario kind, the critics that still fail, and for every strategy how often it fired
  and how often it improved (and fixed) the verdict it targeted.

Every brief runs with 2 fixed seeds (`--seeds`), so the figures are over 90 runs. The loop is
deterministic (seeded backend, deterministic critics; compose's per-process render caches are emptied
before each run), so one <=5 run per brief gives all three budgets: single-shot = whether iteration 1's
candidate passed, <=3 = passed by iteration 3, with the iterations and cost spent up to that point
(same patience and stop rules). For an ablation, a run that never chose the removed strategy within 3
iterations follows the identical trajectory (a disabled strategy is skipped exactly where it would have
returned None; for `upscale`, a run counts as using it when any action was delivered upscaled), so only
the runs that chose it are re-run with PixloopConfig(strategies=all-but-it). `--verify N` re-runs the
N runs with the most corrections for real at <=3 and without each strategy they never chose, and
compares.

    python bench/quality.py            # the full suite (36 briefs x 2 seeds, all ablations), 2 workers
    python bench/quality.py --quick    # 12 briefs, 1 seed, 3 ablations: a smoke run
    python bench/quality.py --verify 6 # also check both shortcuts against real runs
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.append(str(Path(__file__).resolve().parent))  # after the repo: bench/critics.py must not shadow critics

from _machine import machine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("PIXLOOP_SHARED", REPO.parent / "shared")) / "data" / "faces"
PROFILE = "typical"
PATIENCE = 2
"""The default patience (Budget.patience): two rounds without improvement stop a run."""
EDIT_PLANNER = "bench-edit"


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """One brief: what to ask, with which references, on which canvas, with which seed."""

    id: str
    kind: str
    prompt: str
    refs: tuple[str, ...] = ()
    aspect: str | None = None
    size: str | None = None
    seed: int = 0
    edit: tuple[str, ...] = ()
    """For kind "edit": what the source image has instead ("text:<element id>=<old text>", or "subjects",
    meaning the source lacks the subjects) — the mask covers exactly the part to change."""
    source: str | None = None
    """For kind "photo-edit": the photo to edit (a face photo file or product:<shape>), edited with `edit()`:
    the planner derives the mask from the instruction unless `keep` or `region` says where."""
    keep: str | None = None
    region: tuple[int, int, int, int] | None = None


def scenarios() -> list[Scenario]:
    """The suite: 45 briefs, fixed seeds. Reference names: face photo files, or product:<shape>."""
    s: list[Scenario] = []

    def add(kind: str, prompt: str, **kw: Any) -> None:
        s.append(Scenario(id=f"{kind}-{sum(1 for x in s if x.kind == kind) + 1}", kind=kind, prompt=prompt,
                          seed=101 + 7 * len(s), **kw))

    # posters with exact text
    add("poster", 'A bold poster that says "GRAND OPENING" and "Saturday at noon"', aspect="2:3")
    add("poster", 'A vintage concert poster: "JAZZ NIGHT" and "Live at the Blue Room"', aspect="2:3", size="2K")
    add("poster", 'A minimal flyer that says "SUMMER SALE" and "Everything half price"', aspect="4:5")
    add("poster", 'A punchy square poster that says "FRESH COFFEE"', aspect="1:1")
    add("poster", 'A poster that says "BOOK FAIR", "October 12 to 14" and "Free entry for everyone"',
        aspect="3:4", size="2K")
    add("poster", 'An elegant gold poster that says "GALA DINNER" and "Black tie optional"', aspect="2:3")
    add("poster", 'A loud red sale poster that says "CLEARANCE" and "Last three days"', aspect="4:5", size="2K")
    # banners, 16:9 and 21:9 at 2K/4K
    add("banner", 'A blue website banner that says "CLOUD HOSTING" and "Deploy in seconds"', aspect="16:9",
        size="2K")
    add("banner", 'A cinematic banner that says "THE LONG ROAD" and "In cinemas this winter"', aspect="21:9",
        size="4K")
    add("banner", 'A YouTube thumbnail that says "TOP TEN TRICKS"', aspect="16:9", size="4K")
    add("banner", 'A green ultra wide banner that says "GARDEN SHOW" and "Tickets on sale now"',
        aspect="21:9", size="2K")
    add("banner", 'A purple desktop wallpaper banner that says "FOCUS MODE"', aspect="16:9", size="2K")
    add("banner", 'A teal conference banner that says "DATA SUMMIT" and "Berlin, June 3"', aspect="21:9",
        size="4K")
    # product shots on new backgrounds
    add("product", 'Product shot of this mug on a warm gradient background', refs=("product:mug",),
        aspect="1:1")
    add("product", 'Our bottle on a clean minimal backdrop, with the words "STAY COLD"',
        refs=("product:bottle",), aspect="4:5", size="2K")
    add("product", 'This sneaker on a neon background for a widescreen ad that says "RUN FASTER"',
        refs=("product:sneaker",), aspect="16:9", size="2K")
    add("product", 'The perfume bottle on a pink gradient, 21:9 banner that says "NEW SCENT"',
        refs=("product:perfume",), aspect="21:9", size="4K")
    add("product", 'This watch on a black backdrop', refs=("product:watch",), aspect="3:2")
    add("product", 'Mug and bottle together on a coffee background that says "MORNING SET"',
        refs=("product:mug", "product:bottle"), aspect="16:9", size="2K")
    # scenes with one reference person
    add("person", 'A portrait of this person for a speaker card that says "KEYNOTE"',
        refs=("obama_1.jpg",), aspect="4:5")
    add("person", 'This person on a blue banner that says "MEET THE FOUNDER"', refs=("kit_harington_1.jpg",),
        aspect="16:9", size="2K")
    add("person", 'A profile picture of this person on a gradient', refs=("alex_lacamoire_1.jpg",),
        aspect="1:1")
    add("person", 'This person on a poster that says "VOTE TODAY" and "Polls open at 7"',
        refs=("biden_1.jpg",), aspect="2:3", size="2K")
    add("person", 'A 21:9 hero image of this person that says "WELCOME BACK"', refs=("rose_leslie_1.jpg",),
        aspect="21:9", size="4K")
    add("person", 'A teal story card of this person that says "NEW EPISODE"', refs=("obama_2.jpg",),
        aspect="9:16")
    # scenes with two reference people
    add("two-people", 'These two people on a poster that says "DEBATE NIGHT"',
        refs=("obama_3.jpg", "biden_2.jpg"), aspect="3:2")
    add("two-people", 'A widescreen banner of these two actors that says "NOW STREAMING"',
        refs=("kit_harington_2.jpg", "rose_leslie_2.jpg"), aspect="16:9", size="2K")
    add("two-people", 'These two people side by side on a gradient', refs=("alex_lacamoire_2.jpg",
                                                                         "lin_manuel_miranda_1.jpg"),
        aspect="4:3")
    add("two-people", 'A cinematic 21:9 banner of these two that says "THE INTERVIEW"',
        refs=("obama_4.jpg", "kit_harington_3.jpg"), aspect="21:9", size="2K")
    add("two-people", 'A square card of these two people that says "HAPPY ANNIVERSARY"',
        refs=("biden_1.jpg", "obama_5.jpg"), aspect="1:1")
    # edits with masks (the source image is made by the edit planner; the mask covers the change)
    add("edit", 'Change the headline of this poster to "WINTER SALE", keep "Everything half price"',
        aspect="4:5", edit=("text:headline=SUMMER SALE",))
    add("edit", 'Replace the banner headline with "OPEN LATE" and keep "Kitchen until midnight"',
        aspect="16:9", size="2K", edit=("text:headline=OPEN EARLY",))
    add("edit", 'Put this mug into the empty spot of the picture', refs=("product:mug",), aspect="3:2",
        edit=("subjects",))
    add("edit", 'Add this person to the banner that says "OUR TEAM"', refs=("obama_1.jpg",), aspect="16:9",
        size="2K", edit=("subjects",))
    add("edit", 'On this flyer keep "SPRING PARTY" and fix the date line to "Friday at eight"', aspect="2:3",
        edit=("text:subheading=Fridey at ate",))
    add("edit", 'Change the offer to "TWO FOR ONE" on this 21:9 banner with this bottle',
        refs=("product:bottle",), aspect="21:9", size="4K", edit=("text:headline=BUY ONE GET ONE",))
    # real photo edits through `pixloop edit`: masks derived from the instruction, or --keep / --region
    add("photo-edit", "put him in front of a deep blue studio background", source="alex_lacamoire_1.jpg")
    add("photo-edit", "change the background to a sunny beach", source="obama_1.jpg")
    add("photo-edit", "place the product on a warm terracotta background", source="product:bottle", keep="product")
    add("photo-edit", "make this corner teal", source="kit_harington_1.jpg", region=(0, 0, 300, 200))
    add("photo-edit", "golden hour lighting", source="biden_1.jpg")
    add("photo-edit", "make his shirt dark blue", source="lin_manuel_miranda_1.jpg")
    # fusion: people and products in one scene, each reference verified on its own
    add("fusion", 'A campaign poster with this person and this bottle that says "NEW TASTE"',
        refs=("obama_2.jpg", "product:bottle"), aspect="2:3")
    add("fusion", 'These two people with our mug on a banner that says "TEAM COFFEE"',
        refs=("kit_harington_2.jpg", "rose_leslie_1.jpg", "product:mug"), aspect="16:9", size="2K")
    add("fusion", 'Our mug, bottle and watch together on a gradient that says "GIFT SET"',
        refs=("product:mug", "product:bottle", "product:watch"), aspect="4:3")
    return s


QUICK = ("poster-1", "poster-2", "banner-1", "banner-2", "product-2", "product-3", "person-1", "person-2",
         "two-people-1", "two-people-2", "edit-1", "edit-4", "photo-edit-1", "photo-edit-3", "fusion-1")


def make_products(folder: Path) -> dict[str, Path]:
    """Simple product photos drawn with Pillow on light backdrops (no faces in them)."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    out = {}

    def save(name: str, img: Image.Image) -> None:
        out[name] = folder / f"{name}.png"
        img.save(out[name])

    img = Image.new("RGB", (400, 300), "white")
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((110, 70, 260, 250), 18, fill=(200, 30, 30))
    d.ellipse((240, 110, 320, 200), outline=(200, 30, 30), width=18)
    save("mug", img)
    img = Image.new("RGB", (300, 500), (235, 235, 230))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((100, 120, 200, 460), 30, fill=(30, 80, 190))
    d.rectangle((125, 50, 175, 125), fill=(30, 80, 190))
    d.rectangle((120, 30, 180, 60), fill=(20, 20, 20))
    save("bottle", img)
    img = Image.new("RGB", (500, 300), (245, 245, 245))
    d = ImageDraw.Draw(img)
    d.polygon([(60, 220), (120, 110), (260, 120), (330, 190), (450, 200), (450, 240), (60, 240)],
              fill=(240, 200, 20))
    d.rectangle((60, 235, 450, 255), fill=(40, 40, 40))
    save("sneaker", img)
    img = Image.new("RGB", (300, 400), (250, 245, 240))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((70, 150, 230, 360), 24, fill=(220, 120, 170))
    d.rectangle((125, 90, 175, 150), fill=(200, 170, 90))
    d.ellipse((115, 50, 185, 100), fill=(60, 60, 60))
    save("perfume", img)
    img = Image.new("RGB", (300, 400), (240, 240, 240))
    d = ImageDraw.Draw(img)
    d.rectangle((120, 20, 180, 380), fill=(90, 60, 40))
    d.ellipse((80, 130, 220, 270), fill=(190, 190, 200))
    d.ellipse((95, 145, 205, 255), fill=(20, 30, 60))
    save("watch", img)
    return out


# --------------------------------------------------------------------------- edit briefs


_EDITS: dict[str, tuple[str, ...]] = {}
"""prompt -> Scenario.edit, read by EditPlanner (registered in every worker)."""


class EditPlanner:
    """Plans an edit brief: the RulePlanner's plan, plus the image being edited and its mask.

    The source is the same layout rendered with what the image had before (another headline, no
    subject yet); the mask covers the changed elements' regions (padded). The plan's `source` and
    `mask` turn on edit mode in generation and the preservation critic.
    """

    name = EDIT_PLANNER

    def plan(self, brief: Any, references: list[Any], store: Any) -> Any:
        from PIL import Image, ImageDraw

        from agent.backends.compose import render
        from agent.loop.planning import RulePlanner
        from critics import checks_for

        plan = RulePlanner().plan(brief, references, store)
        change = _EDITS.get(brief.prompt, ())
        old = plan.model_copy(deep=True)
        boxes = []
        for item in change:
            if item.startswith("text:"):
                element_id, _, before = item[5:].partition("=")
                old.text = [e.model_copy(update={"content": before}) if e.id == element_id else e for e in old.text]
                boxes += [e.region for e in plan.text if e.id == element_id]
            elif item == "subjects":
                old.subjects = []
                boxes += [s.region for s in plan.subjects]
        source, _ = render(old, brief.seed, store)
        mask = Image.new("L", source.size, 0)
        draw = ImageDraw.Draw(mask)
        for box in boxes:
            x0, y0, x1, y1 = box.to_pixels(*source.size)
            pad = round(0.02 * max(source.size))
            draw.rectangle((max(0, x0 - pad), max(0, y0 - pad), min(source.width, x1 + pad) - 1,
                            min(source.height, y1 + pad) - 1), fill=255)
        plan.source = store.put_image(source)
        plan.mask = store.put_image(mask)
        plan.notes.append(f"edit: source rendered with {', '.join(change)}; mask covers the change")
        plan.checks = checks_for(plan, brief.thresholds)
        return plan


# --------------------------------------------------------------------------- one run (in a worker)


_WORKER: dict[str, Any] = {}


def _init_worker(products: dict[str, str], edits: dict[str, tuple[str, ...]]) -> None:
    """Per-process set-up: the edit planner."""
    import logging

    logging.disable(logging.WARNING)
    from agent.loop.planning import register_planner

    register_planner(EDIT_PLANNER, EditPlanner)
    _EDITS.update(edits)
    _WORKER["products"] = {k: Path(v) for k, v in products.items()}


def _forget_render_caches() -> None:
    """Empty compose's per-process face-box and cut-out caches, so a run never depends on what ran before it
    in this worker. (The simulated backend renders a drifted reference under the real reference's sha256,
    so without this, a drift in an earlier run changes how the real person is cropped in a later one.)"""
    from agent.backends import compose

    compose.clear_caches()


def _resolve(ref: str) -> Path:
    if ref.startswith("product:"):
        return _WORKER["products"][ref.split(":", 1)[1]]
    return FACES / ref


def run_one(task: tuple[Scenario, int, tuple[str, ...] | None, str]) -> dict[str, Any]:
    """Run one brief; returns a compact per-iteration record (pass, cost, actions) and deletes the run folder."""
    scenario, max_iterations, strategies, label = task
    from agent import generate
    from agent.models import STRATEGIES, PixloopConfig

    _forget_render_caches()
    allowed = list(strategies) if strategies is not None else None
    config = PixloopConfig(backend="simulated", options={"profile": PROFILE},
                           planner=EDIT_PLANNER if scenario.kind == "edit" else "rule", strategies=allowed)
    tmp = tempfile.mkdtemp(prefix="pixloop-quality-")
    t0 = time.perf_counter()
    try:
        if scenario.source is not None:
            from agent import edit

            result = edit(_resolve(scenario.source), scenario.prompt, keep=scenario.keep, region=scenario.region,
                          references=[_resolve(r) for r in scenario.refs], seed=scenario.seed,
                          max_iterations=max_iterations, patience=PATIENCE, out=Path(tmp) / "run", config=config)
        else:
            result = generate(scenario.prompt, references=[_resolve(r) for r in scenario.refs],
                              aspect=scenario.aspect, size=scenario.size, seed=scenario.seed,
                              max_iterations=max_iterations, patience=PATIENCE, out=Path(tmp) / "run",
                              config=config)
    finally:
        wall = time.perf_counter() - t0
        shutil.rmtree(tmp, ignore_errors=True)
    report = result.report
    iterations: dict[int, dict[str, Any]] = {}
    for c in report["candidates"]:
        it = iterations.setdefault(c["iteration"], {"passed": False, "cost": 0.0, "failing": []})
        passed = all(v["passed"] for v in c["verdicts"])
        it["cost"] += c["cost"]
        if passed:
            it["passed"] = True
        if not it["failing"] or passed:
            it["failing"] = sorted(v["critic"] for v in c["verdicts"] if not v["passed"])
        it.setdefault("injected", []).extend((c["meta"].get("simulated") or {}).get("injected") or [])
    actions = []
    by_iteration = defaultdict(list)
    for c in report["candidates"]:
        by_iteration[c["iteration"]].append(c)
    for a in report["actions"]:
        target = a["addresses"][0] if a["addresses"] else "loop"
        made = by_iteration.get(a["iteration"], [])
        fixed = any(v["critic"] == target and v["passed"] for c in made for v in c["verdicts"])
        actions.append({"iteration": a["iteration"], "strategy": a["strategy"], "target": target,
                        "change": a["score_changes"].get(target), "fixed": fixed, "reason": a["reason"][:300],
                        "upscaled": a["deliver_upscaled"]})
    return {"scenario": scenario.id, "kind": scenario.kind, "label": label, "max_iterations": max_iterations,
            "strategies": allowed, "status": result.status, "iterations": result.iterations,
            "per_iteration": {k: iterations[k] for k in sorted(iterations)}, "actions": actions,
            "summary": report.get("summary", ""), "wall": round(wall, 2), "all": list(STRATEGIES)}


# --------------------------------------------------------------------------- derived figures


@dataclass
class Outcome:
    passed: bool
    iterations: int
    cost: float
    failing: list[str] = field(default_factory=list)


def at_cap(record: dict[str, Any], cap: int) -> Outcome:
    """What the run would have returned with max_iterations=cap (the loop is deterministic)."""
    its = record["per_iteration"]
    cost = 0.0
    last = None
    for k in sorted(its, key=int):
        if int(k) > cap:
            break
        cost += its[k]["cost"]
        last = its[k]
        if its[k]["passed"]:
            return Outcome(True, int(k), cost)
    return Outcome(False, min(cap, record["iterations"]), cost, list(last["failing"]) if last else [])


def used_within(record: dict[str, Any], strategy: str, cap: int) -> bool:
    """Whether the run chose `strategy` for an iteration within the cap (for upscale: or delivered an
    action's result upscaled, which only an enabled upscale strategy does)."""
    return any(a["iteration"] <= cap and (a["strategy"] == strategy or (strategy == "upscale" and a["upscaled"]))
               for a in record["actions"])


def summarise(outcomes: list[Outcome]) -> tuple[float, float, float, int]:
    n = len(outcomes)
    passed = sum(o.passed for o in outcomes)
    return (100.0 * passed / n, sum(o.iterations for o in outcomes) / n, sum(o.cost for o in outcomes) / n, passed)


# --------------------------------------------------------------------------- driver


def run_tasks(pool: Any, tasks: list[tuple], what: str) -> list[dict[str, Any]]:
    out = []
    t0 = time.perf_counter()
    for i, rec in enumerate(pool.imap_unordered(run_one, tasks), 1):
        out.append(rec)
        print(f"[{time.perf_counter() - t0:6.1f}s] {what} {i}/{len(tasks)} {rec['scenario']:<14} {rec['label']:<22} "
              f"{rec['status']:<15} {rec['iterations']} it, {rec['wall']:.1f}s "
              f"{' '.join(a['strategy'] for a in rec['actions'])}", file=sys.stderr, flush=True)
    return out


def _cost_order(s: Scenario) -> int:
    return {"4K": 0, "2K": 1}.get(s.size or "1K", 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 briefs, 1 seed, 3 ablations (smoke run)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per brief (default 2; with --quick 1)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="scenario ids to run")
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--verify", type=int, default=0, metavar="N",
                        help="re-run N briefs for real at <=3 and without each strategy used, and compare")
    args = parser.parse_args(argv)

    from agent.models import STRATEGIES
    from agent.testing.simulated import SimulatedOptions

    briefs = scenarios()
    if args.quick:
        briefs = [s for s in briefs if s.id in QUICK]
    if args.only:
        briefs = [s for s in briefs if s.id in args.only]
    seeds = max(1, args.seeds or (1 if args.quick else 2))
    suite = [replace(s, id=f"{s.id}/{k + 1}", seed=s.seed + 1000 * k) for k in range(seeds) for s in briefs]
    ablate = list(STRATEGIES)
    if args.quick:
        ablate = ["reprompt", "typeset_text", "upscale"]
    if args.no_ablations:
        ablate = []
    opts = SimulatedOptions(profile=PROFILE)
    rates = ", ".join(f"{k} {v:g}" for k, v in opts.rates().items())
    header = (f"pixloop quality bench: {len(briefs)} briefs x {seeds} seed(s) = {len(suite)} runs on the simulated "
              f"backend, profile {PROFILE} "
              f"(failure rates: {rates}; feedback_response {opts.feedback_response:g}, edit_response "
              f"{opts.edit_response:g}, edit_artifacts {opts.edit_artifacts:g}, native_long_side "
              f"{opts.native_long_side}, cost {opts.cost_per_image:g} per image), fixed seeds, patience {PATIENCE}")
    print(machine(), flush=True)
    print(header, flush=True)

    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="pixloop-quality-products-"))
    products = {k: str(v) for k, v in make_products(work).items()}
    edits = {s.prompt: s.edit for s in suite if s.edit}
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers, initializer=_init_worker, initargs=(products, edits)) as pool:
        ordered = sorted(suite, key=_cost_order)
        full = run_tasks(pool, [(s, 5, None, "loop<=5") for s in ordered], "loop<=5")
        by_id = {r["scenario"]: r for r in full}
        ablation_runs: dict[tuple[str, str], dict[str, Any]] = {}
        tasks = []
        for strategy in ablate:
            rest = tuple(x for x in STRATEGIES if x != strategy)
            for s in ordered:
                if used_within(by_id[s.id], strategy, 3):
                    tasks.append((s, 3, rest, f"without {strategy}"))
        for rec in run_tasks(pool, tasks, "ablation"):
            ablation_runs[(rec["scenario"], rec["label"])] = rec
        verify_report: list[str] = []
        if args.verify:
            # the runs with the most corrections within <=3 iterations (the trajectories most worth checking)
            busiest = sorted(suite, key=lambda s: (-sum(a["iteration"] <= 3 for a in by_id[s.id]["actions"]), s.id))
            verify_report = verify(pool, busiest[: args.verify], by_id, ablate)
    shutil.rmtree(work, ignore_errors=True)
    wall = time.perf_counter() - t_start

    print_tables(suite, by_id, ablation_runs, ablate, header)
    for line in verify_report:
        print(line)
    print(f"\nwall time {wall:.0f} s with {args.workers} worker processes "
          f"({len(full)} loop runs <=5, {len(ablation_runs)} ablation re-runs)")
    return 0


def verify(pool: Any, subset: list[Scenario], by_id: dict[str, dict], ablate: list[str]) -> list[str]:
    """Real <=3 runs (and real ablation runs) for a few briefs, compared with the figures derived above."""
    from agent.models import STRATEGIES

    tasks = [(s, 3, None, "verify<=3") for s in subset]
    for s in subset:
        for strategy in ablate:
            if not used_within(by_id[s.id], strategy, 3):
                tasks.append((s, 3, tuple(x for x in STRATEGIES if x != strategy), f"verify-no-{strategy}"))
    lines = ["", "verification of the shortcuts (real runs):"]
    mismatches = 0
    for rec in run_tasks(pool, tasks, "verify"):
        derived = at_cap(by_id[rec["scenario"]], 3)
        real = at_cap(rec, 3)
        same = (derived.passed, derived.iterations, round(derived.cost, 6)) == (real.passed, real.iterations,
                                                                                 round(real.cost, 6))
        same = same and [a["strategy"] for a in rec["actions"]] == [
            a["strategy"] for a in by_id[rec["scenario"]]["actions"] if a["iteration"] <= 3]
        mismatches += not same
        if not same:
            lines.append(f"  MISMATCH {rec['scenario']} {rec['label']}: derived {derived} real {real}")
    lines.append(f"  {len(tasks)} real runs ({len(subset)} at <=3, {len(tasks) - len(subset)} ablations of "
                 f"strategies those briefs never chose): {len(tasks) - mismatches} identical to the derived "
                 f"figures, {mismatches} different")
    return lines


def _pct(x: float) -> str:
    return f"{x:.0f}%"


def print_tables(suite: list[Scenario], by_id: dict[str, dict], ablation_runs: dict, ablate: list[str],
                 header: str) -> None:
    records = [by_id[s.id] for s in suite]
    single = [at_cap(r, 1) for r in records]
    three = [at_cap(r, 3) for r in records]
    five = [at_cap(r, 5) for r in records]
    p3 = summarise(three)
    n = len(records)
    print()
    print("| run | pass rate | mean iterations | mean cost | pass rate vs loop <=3 |")
    print("|---|---:|---:|---:|---:|")
    for label, outs in (("single-shot (1 iteration)", single), ("loop <=3 iterations", three),
                        ("loop <=5 iterations", five)):
        p, it, cost, k = summarise(outs)
        delta = "" if label.startswith("loop <=3") else f"{p - p3[0]:+.0f} pts"
        print(f"| {label} | {_pct(p)} ({k}/{n}) | {it:.2f} | {cost:.3f} | {delta} |")
    for strategy in ablate:
        outs = []
        for r in records:
            rec = ablation_runs.get((r["scenario"], f"without {strategy}"))
            outs.append(at_cap(rec if rec is not None else r, 3))
        p, it, cost, k = summarise(outs)
        print(f"| <=3 without {strategy} | {_pct(p)} ({k}/{n}) | {it:.2f} | {cost:.3f} | {p - p3[0]:+.0f} pts |")

    print()
    print("| kind | runs | single-shot | loop <=3 | loop <=5 |")
    print("|---|---:|---:|---:|---:|")
    kinds = list(dict.fromkeys(s.kind for s in suite))
    for kind in kinds + ["2K/4K 16:9+21:9"]:
        if kind == "2K/4K 16:9+21:9":
            idx = [i for i, s in enumerate(suite) if s.aspect in ("16:9", "21:9") and s.size in ("2K", "4K")]
        else:
            idx = [i for i, s in enumerate(suite) if s.kind == kind]
        if not idx:
            continue
        cells = [f"{sum(outs[i].passed for i in idx)}/{len(idx)}" for outs in (single, three, five)]
        print(f"| {kind} | {len(idx)} | " + " | ".join(cells) + " |")

    print()
    fail1 = Counter(c for r in records for c in r["per_iteration"][next(iter(r["per_iteration"]))]["failing"]
                    if not r["per_iteration"][next(iter(r["per_iteration"]))]["passed"])
    fail3 = Counter(c for o in three if not o.passed for c in o.failing)
    print("critics failing on the first candidate: " + (", ".join(f"{k} {v}" for k, v in fail1.most_common())
                                                        or "none"))
    print("critics still failing after <=3 iterations: " + (", ".join(f"{k} {v}" for k, v in fail3.most_common())
                                                           or "none"))
    for r, o in zip(records, three):
        if not o.passed:
            final = "final report" if r["iterations"] <= 3 else f"after {r['iterations']} iterations ({r['status']})"
            print(f"  {r['scenario']}: fails {', '.join(o.failing)} at <=3; {final}: {r['summary'][:220]}")

    print()
    print("| strategy | fired (loop <=5) | targeted verdict improved | targeted verdict fixed |")
    print("|---|---:|---:|---:|")
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in records:
        for a in r["actions"]:
            st = stats[a["strategy"]]
            st[0] += 1
            st[1] += bool(a["change"] is not None and a["change"] > 0) or a["fixed"]
            st[2] += a["fixed"]
    from agent.models import STRATEGIES

    for strategy in STRATEGIES:
        fired, improved, fixed = stats.get(strategy, [0, 0, 0])
        if fired:
            print(f"| {strategy} | {fired} | {improved} ({100 * improved / fired:.0f}%) | "
                  f"{fixed} ({100 * fixed / fired:.0f}%) |")
        else:
            print(f"| {strategy} | 0 | - | - |")
    carried = sum(1 for r in records for a in r["actions"] if a["upscaled"] and a["strategy"] != "upscale")
    print(f"(besides, {carried} actions of other strategies had their result delivered upscaled, after an upscale "
          "or because the first candidate was too small)")
    gain = p3[0] - summarise(single)[0]
    print()
    print(f"target: loop <=3 beats single-shot by >= 40 pts with mean <= 2 iterations -> "
          f"{gain:+.0f} pts, mean {p3[1]:.2f} iterations: {'MET' if gain >= 40 and p3[1] <= 2 else 'NOT MET'}")


if __name__ == "__main__":
    raise SystemExit(main())
