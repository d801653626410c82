"""The cross-image consistency step of an illustrated document: the same characters and one look in every image.

``check_document(appearances, images, sheet)`` returns a `ConsistencyReport` for one round; images are taken in
``reading_order`` (a merge of the characters' appearance lists), so ``images`` may come in any order.

Faces -- per character, the sheet row is the mean (re-normalised) embedding of the largest face of each
reference image: one template that averages the references' pose and light, so a single odd reference is
diluted rather than deciding alone (and the matrix keeps one "sheet" row). In each image the character's face
is the one most similar to that template; when several characters share an image a Hungarian assignment
gives each its own face. Without usable references the first appearance anchors the character: its largest
free face is taken and later appearances are matched to it. An image fails for a character when no face is
left for it, when its similarity to the sheet is below the engine's ``same_threshold``, or (no sheet) when its
mean similarity to the other appearances is below it (when every appearance would fail, the anchor stays).
An engine that cannot load or run leaves the character unverified (``verified=False``), never failed.

Palette and style (``agent.loop.document.style``) -- each image against the others (leave-one-out): the
median over the other images of the share-weighted CIE76 Delta E from its 5-colour Lab palette to their nearest
palette colour, and the RMS distance of its statistics (saturation, lightness, contrast, edge density,
colourfulness) to the others' median, in units of each statistic's spread across unrelated images. An image fails
above either threshold. A document with fewer than 2 images has nothing to compare: every image passes.

Default thresholds, measured (1024x1024 PNGs from the compose backend; photos from shared/data/faces):
- consistent documents -- 15 sets of 4-6 renders of one plan with different seeds (5 styles: teal texture, gold
  gradient, blue solid, pink texture, green gradient; one person photo per page, no person, or another person
  and text on every page): palette distance max 11.2 (11.7 among the base images of the mixed sets below;
  median of the sets' maxima 6.3), style distance max 1.07;
- another palette and style among them (one render of another style among 5, 80 cases): palette min 13.6,
  10th percentile 16.4, median 20.5; style median 0.88;
- a photo among drawings (60 cases): palette min 9.6, p10 11.1, median 20.7; style median 1.16;
- a drawing among 4 photos (10 cases): palette min 15.1; the same palette with another background: palette
  5.3-10.1 and style 0.6-0.8 (not caught: that is a different layout, not a different look);
- 4 unrelated face photos (10 sets): palette median 16.0, p90 22.9; style median 1.41, p90 1.91.
``PALETTE_THRESHOLD`` 14 and ``STYLE_THRESHOLD`` 1.5 fail no image of a consistent document, catch 98% of
other-palette renders, 88% of photos among drawings and every drawing among photos; 75% of the images of an
unrelated-photo set fail (they do not share a look). Faces: on the dev photos the mean template beats checking
each reference alone (genuine similarity p10 0.78 vs 0.69, impostors at most 0.27 either way; SFace threshold 0.363).

Timing (2-core machine, SFace, model already loaded): 8 images at 1024x1024, one character in each, with a
2-photo sheet: 0.78-0.9 s (first call in the process 1.1-1.3 s); without a sheet 0.7-1.0 s. Per image ~65 ms face detection, ~30 ms per
face embedded, ~35 ms decoding, ~30 ms palette and statistics.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.loop.document.style import image_look, palette_distance, style_distance
from agent.models.document import CharacterConsistency, ConsistencyReport, PairScore, StyleDistance
from critics.face.engines import Face, FaceEngine, as_bgr, face_engine

PALETTE_THRESHOLD = 14.0
"""Default: an image whose palette is this far (Delta E) from the rest of the document fails."""
STYLE_THRESHOLD = 1.5
"""Default: an image whose statistics are this far (RMS of typical spreads) from the others' median fails."""
MAX_FACES = 6
"""Faces embedded per image (largest first): more characters than this in one panel are not told apart."""
SHEET = "sheet"


class _EngineFailed(RuntimeError):
    """The face engine could not load or failed on an image: faces stay unverified."""


@dataclass
class _Faces:
    faces: list[Face]
    embeddings: list[np.ndarray]


class _Files:
    """Per-call cache: each file is decoded once and its faces embedded once per engine."""

    def __init__(self) -> None:
        self._bgr: dict[tuple[str, int, int], np.ndarray] = {}
        self._faces: dict[tuple[str, tuple[str, int, int]], _Faces] = {}

    @staticmethod
    def key(path: Path) -> tuple[str, int, int]:
        st = path.stat()
        return str(path.resolve()), st.st_mtime_ns, st.st_size

    def bgr(self, path: Path) -> np.ndarray:
        key = self.key(path)
        if key not in self._bgr:
            from PIL import Image

            with Image.open(path) as img:
                self._bgr[key] = as_bgr(img)
        return self._bgr[key]

    def faces(self, engine: FaceEngine, path: Path) -> _Faces:
        key = (engine.name, self.key(path))
        if key not in self._faces:
            bgr = self.bgr(path)
            try:
                faces = sorted(engine.detect(bgr), key=lambda f: f.area, reverse=True)[:MAX_FACES]
                self._faces[key] = _Faces(faces, [np.asarray(engine.embed(bgr, f), np.float32) for f in faces])
            except Exception as e:  # noqa: BLE001 - any engine failure means "unverified", not "no face"
                raise _EngineFailed(f"{engine.name} failed on {path.name}: {type(e).__name__}: {e}") from e
        return self._faces[key]


def check_document(appearances: Mapping[str, Sequence[str]], images: Mapping[str, Path],
                   sheet: Mapping[str, Sequence[Path]], *, round: int = 1, engine: str | FaceEngine | None = None,
                   palette_threshold: float | None = None, style_threshold: float | None = None) -> ConsistencyReport:
    """Check a document's images against its characters' sheet and each other (see the module docstring).

    ``appearances``: character -> ids of the images it appears in, in reading order; ``images``: image id ->
    file (ids missing here were not rendered and are skipped; a file that cannot be read fails); ``sheet``:
    character -> reference files (unreadable ones are skipped and noted). The images are taken in
    `reading_order`, so ``images`` may come in any order (e.g. the order the renders finished).
    """
    t0 = time.perf_counter()
    files = _Files()
    images = {iid: images[iid] for iid in reading_order(appearances, images)}
    order = {iid: i for i, iid in enumerate(images)}
    pal_thr = PALETTE_THRESHOLD if palette_threshold is None else float(palette_threshold)
    sty_thr = STYLE_THRESHOLD if style_threshold is None else float(style_threshold)
    reasons: dict[str, list[str]] = {}
    readable = {}
    for iid, path in images.items():
        try:
            files.bgr(Path(path))
            readable[iid] = Path(path)
        except (OSError, ValueError) as e:  # a missing or undecodable render is redrawn
            reasons[iid] = [f"cannot read the image: {type(e).__name__}: {str(e)[:120]}"]
    characters = _check_faces(appearances, readable, sheet, engine, files)
    styles = _check_styles(readable, files, pal_thr, sty_thr)
    for ch in characters:
        for iid, why in _face_reasons(ch).items():
            reasons.setdefault(iid, []).append(why)
    for st in styles:
        if not st.passed:
            reasons.setdefault(st.id, []).append(_style_reason(st, pal_thr, sty_thr))
    failing = sorted(reasons, key=lambda i: order.get(i, len(order)))
    return ConsistencyReport(round=round, characters=characters, styles=styles, palette_threshold=pal_thr,
                             style_threshold=sty_thr, failing=failing,
                             reasons={i: "; ".join(reasons[i]) for i in failing},
                             seconds=_round(time.perf_counter() - t0))


def reading_order(appearances: Mapping[str, Sequence[str]], images: Mapping[str, Path]) -> list[str]:
    """The image ids in an order that keeps every character's appearances in their order (a topological merge
    of the lists); ties, and images no character appears in, keep their order in ``images``."""
    rank = {iid: k for k, iid in enumerate(images)}
    after: dict[str, set[str]] = {i: set() for i in images}
    waiting = dict.fromkeys(images, 0)
    for ids in appearances.values():
        seq = [i for i in dict.fromkeys(ids) if i in rank]
        for a, b in zip(seq, seq[1:]):
            if b not in after[a]:
                after[a].add(b)
                waiting[b] += 1
    ready, out = sorted((i for i in images if not waiting[i]), key=rank.__getitem__), []
    while ready:
        out.append(ready.pop(0))
        for j in after[out[-1]]:
            waiting[j] -= 1
            if not waiting[j]:
                ready = sorted([*ready, j], key=rank.__getitem__)
    return out + [i for i in images if i not in out]  # lists that contradict each other: the rest as given


def _round(x: float, nd: int = 3) -> float:
    return float(np.round(x, nd))


# ----------------------------------------------------------------------------------------------- faces

def _resolve(engine: str | FaceEngine | None) -> FaceEngine:
    try:
        return engine if engine is not None and not isinstance(engine, str) else face_engine(engine)
    except Exception as e:  # noqa: BLE001 - FaceEngineUnavailable, an unknown name, a model that fails to load
        raise _EngineFailed(f"face engine unavailable: {type(e).__name__}: {e}") from e


def _check_faces(appearances: Mapping[str, Sequence[str]], images: Mapping[str, Path],
                 sheet: Mapping[str, Sequence[Path]], engine: str | FaceEngine | None,
                 files: _Files) -> list[CharacterConsistency]:
    cast = {name: [i for i in images if i in ids] for name, ids in appearances.items()}  # reading order
    notes: dict[str, list[str]] = {name: [] for name in cast}
    try:
        eng = _resolve(engine)
        templates = {name: _template(eng, _refs(sheet, name), files, notes[name]) for name in cast}
        chosen = _assign(eng, cast, images, templates, files)
    except _EngineFailed as e:
        return [_unverified(name, ids, bool(_refs(sheet, name)), str(e)) for name, ids in cast.items()]
    return [_character(eng, name, ids, templates[name], chosen, appearances[name], notes[name])
            for name, ids in cast.items()]


def _refs(sheet: Mapping[str, Sequence[Path]], name: str) -> Sequence[Path]:
    """The character's reference files (names compare case-insensitively, as on the CharacterSheet)."""
    return next((refs for key, refs in sheet.items() if key.lower() == name.lower()), ())


def _template(engine: FaceEngine, refs: Sequence[Path], files: _Files, notes: list[str]) -> np.ndarray | None:
    """Mean unit embedding of the largest face of each reference (None: no reference shows a face)."""
    embs = []
    for ref in map(Path, refs):
        try:
            found = files.faces(engine, ref)
        except (OSError, ValueError) as e:
            notes.append(f"reference {ref.name} unreadable ({type(e).__name__})")
            continue
        if found.embeddings:
            embs.append(found.embeddings[0])
        else:
            notes.append(f"no face in reference {ref.name}")
    if not embs:
        return None
    mean = np.mean(np.stack(embs), axis=0).astype(np.float32)
    out: np.ndarray = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


def _assign(engine: FaceEngine, cast: Mapping[str, list[str]], images: Mapping[str, Path],
            templates: Mapping[str, np.ndarray | None], files: _Files) -> dict[tuple[str, str], np.ndarray | None]:
    """(character, image id) -> the embedding of the character's face there (None: no face left for it)."""
    chosen: dict[tuple[str, str], np.ndarray | None] = {}
    target: dict[str, np.ndarray | None] = dict(templates)
    for iid in images:
        here = [n for n, ids in cast.items() if iid in ids]
        if not here:
            continue
        found = files.faces(engine, Path(images[iid]))
        picks = _pick_faces(engine, [target[n] for n in here], found.embeddings)
        for name, k in zip(here, picks):
            emb = found.embeddings[k] if k is not None else None
            chosen[(name, iid)] = emb
            if target[name] is None and emb is not None:
                target[name] = emb  # the first appearance with a face anchors a character without a sheet
    return chosen


def _pick_faces(engine: FaceEngine, targets: Sequence[np.ndarray | None], embs: Sequence[np.ndarray]) -> list[int | None]:
    """Face index per character: Hungarian on similarity for those with a target, then largest free faces."""
    picks: list[int | None] = [None] * len(targets)
    with_target = [i for i, t in enumerate(targets) if t is not None]
    if with_target and embs:
        from scipy.optimize import linear_sum_assignment

        sims = np.array([[engine.similarity(targets[i], e) for e in embs] for i in with_target])  # type: ignore[arg-type]
        rows, cols = linear_sum_assignment(1.0 - sims)
        for r, c in zip(rows, cols):
            picks[with_target[int(r)]] = int(c)
    free = iter(k for k in range(len(embs)) if k not in picks)  # detect() lists faces largest first
    for i, t in enumerate(targets):
        if t is None:
            picks[i] = next(free, None)
    return picks


def _character(engine: FaceEngine, name: str, ids: list[str], template: np.ndarray | None,
               chosen: Mapping[tuple[str, str], np.ndarray | None], asked: Sequence[str],
               ref_notes: list[str]) -> CharacterConsistency:
    labels = ([SHEET] if template is not None else []) + ids
    embs = ([template] if template is not None else []) + [chosen.get((name, i)) for i in ids]
    thr = float(engine.same_threshold)
    matrix = _matrix(engine, embs)
    pairs = [PairScore(a=labels[i], b=labels[j], similarity=matrix[i][j],
                       passed=matrix[i][j] is not None and matrix[i][j] >= thr)  # type: ignore[operator]
             for i in range(len(labels)) for j in range(i + 1, len(labels))]
    if template is None and ids and all(e is None for e in embs):
        # no reference and no face drawn anywhere (an offline renderer draws no people): nothing to hold the
        # images to, so the identity is unverified rather than every image failed and remade in vain
        return CharacterConsistency(name=name, images=ids, labels=labels, matrix=matrix, pairs=pairs, threshold=thr,
                                    verified=False, note="; ".join([*ref_notes, "no reference and no face in any "
                                                                    "appearance: identity across images not verified"]))
    failing, notes = (_against_sheet if template is not None else _against_each_other)(ids, matrix, thr)
    notes = ref_notes + notes
    skipped = [i for i in asked if i not in ids]
    if skipped:
        notes.append(f"not rendered, not checked: {', '.join(skipped)}")
    return CharacterConsistency(name=name, images=ids, labels=labels, matrix=matrix, pairs=pairs, threshold=thr,
                                failing=failing, note="; ".join(notes))


def _matrix(engine: FaceEngine, embs: Sequence[np.ndarray | None]) -> list[list[float | None]]:
    n = len(embs)
    m: list[list[float | None]] = [[None] * n for _ in range(n)]
    for i, a in enumerate(embs):
        for j in range(i, n):
            b = embs[j]
            if a is not None and b is not None:
                m[i][j] = m[j][i] = 1.0 if i == j else _round(engine.similarity(a, b))
    return m


def _against_sheet(ids: list[str], m: list[list[float | None]], thr: float) -> tuple[list[str], list[str]]:
    failing = [i for k, i in enumerate(ids, 1) if m[0][k] is None or m[0][k] < thr]  # type: ignore[operator]
    note = (f"{len(ids) - len(failing)} of {len(ids)} appearance(s) match the sheet (>= {thr:.2f})"
            if ids else "no rendered appearance to check")
    return failing, [note]


def _against_each_other(ids: list[str], m: list[list[float | None]], thr: float) -> tuple[list[str], list[str]]:
    has_face = [m[k][k] is not None for k in range(len(ids))]
    anchor = next((ids[k] for k in range(len(ids)) if has_face[k]), None)
    notes = [f"no usable references: {anchor} anchors the character" if anchor else "no face found in any appearance"]
    low = []
    for k, iid in enumerate(ids):
        mean = _mean_to_others(m, k)
        if not has_face[k] or (mean is not None and mean < thr):
            low.append(iid)
    if anchor is not None and all(iid in low for k, iid in enumerate(ids) if has_face[k]):
        low.remove(anchor)  # nobody agrees with anybody: keep the anchor, redraw the rest to match it
    if sum(has_face) < 2:
        notes.append("one appearance with a face: nothing to compare")
    return low, notes


def _mean_to_others(m: list[list[float | None]], k: int) -> float | None:
    vals = [v for j, v in enumerate(m[k]) if j != k and v is not None]
    return float(np.mean(vals)) if vals and m[k][k] is not None else None


def _unverified(name: str, ids: list[str], has_sheet: bool, why: str) -> CharacterConsistency:
    return CharacterConsistency(name=name, images=ids, labels=([SHEET] if has_sheet else []) + ids, verified=False,
                                note=f"faces not verified ({why[:300]}); no image fails for it")


def _face_reasons(ch: CharacterConsistency) -> dict[str, str]:
    out: dict[str, str] = {}
    has_sheet = bool(ch.labels) and ch.labels[0] == SHEET
    for iid in ch.failing:
        k = ch.labels.index(iid)
        if ch.matrix[k][k] is None:
            out[iid] = f"{ch.name}'s face: no face found for {ch.name}"
        elif has_sheet:
            out[iid] = f"{ch.name}'s face: similarity {ch.matrix[0][k]:.2f} to the sheet < {ch.threshold:.2f}"
        else:
            mean = _mean_to_others(ch.matrix, k)
            out[iid] = (f"{ch.name}'s face: mean similarity {mean:.2f} to the other appearances "
                        f"< {ch.threshold:.2f}")
    return out


# ----------------------------------------------------------------------------------------------- palette/style

def _check_styles(images: Mapping[str, Path], files: _Files, pal_thr: float, sty_thr: float) -> list[StyleDistance]:
    looks = {iid: image_look(files.bgr(Path(p))) for iid, p in images.items()}
    out = []
    for iid, look in looks.items():
        others = [lk for j, lk in looks.items() if j != iid]
        pd, sd = (_round(palette_distance(look, others), 2), _round(style_distance(look, others))) if others \
            else (0.0, 0.0)
        out.append(StyleDistance(id=iid, palette=list(look.hex), palette_distance=pd, style_distance=sd,
                                 passed=pd <= pal_thr and sd <= sty_thr))
    return out


def _style_reason(st: StyleDistance, pal_thr: float, sty_thr: float) -> str:
    parts = []
    if st.palette_distance > pal_thr:
        parts.append(f"palette: Delta E {st.palette_distance:.1f} from the document's palette > {pal_thr:.1f}")
    if st.style_distance > sty_thr:
        parts.append(f"style: distance {st.style_distance:.2f} from the other images > {sty_thr:.2f}")
    return "; ".join(parts)

