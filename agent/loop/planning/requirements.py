"""The brief as a list of requirements, each with the critic that verifies it (or none).

Required text is verified by OCR, a reference person's identity by the face critic, each reference object
(a product) by the reference critic, each on its own line, the canvas by the spec critic. The prompt's own
words are split into content phrases (objects and scene: "red bicycle", "marble counter"), style phrases
("elegant minimal poster") and counts ("three cats"); only the VLM judge can check those, so without one they
are `unverified`, and the report says so instead of letting `passed` claim them.

The split is deliberately simple and offline: quoted text and the words that carry it ("a sign that says")
are removed, the rest is cut at commas, conjunctions, prepositions and participles, and each piece loses its
articles. It errs towards listing a phrase as unverified rather than hiding it.
"""

from __future__ import annotations

import re

from agent.loop.planning.reading import QUOTE_PATTERNS
from agent.models import Brief, Plan, Requirement

CARRIER = re.compile(
    r"(?:\b(?:with|and|on|in|featuring)\s+)?(?:\b(?:a|an|the)\s+)?"
    r"\b(?:sign|poster|banner|label|caption|headline|plaque|title|tagline|slogan|text|words?|lettering|board)\s+"
    r"(?:that\s+|which\s+)?(?:says|said|reads|read|reading|saying)\b"
    r"|\b(?:that|which)\s+(?:says|reads)\b|\bsaying\b|\bwith\s+the\s+(?:text|words?)\b"
    r"|\b(?:the\s+)?(?:text|words?)\b",
    re.IGNORECASE)
"""The words that only carry required text (OCR verifies the text itself)."""

SPLIT = re.compile(
    r"[,;:.!?()\[\]]|(?<=\s)(?:in\s+front\s+of|on\s+top\s+of|next\s+to|and|or|with|on|in|at|of|under|over|"
    r"behind|beside|near|against|from|into|onto|to|for|by|while|where|whose)(?=\s)|(?<=\s)(?!(?:"
    r"lighting|painting|drawing|clothing|building|ceiling|railing|frosting|packaging|wedding|morning|evening|"
    r"spring|string|ring|king|thing|wing|swing|sling|ping|pudding|stuffing|icing|topping|dumpling|sibling|"
    r"earring|ceiling|awning|setting|bedding|flooring|siding|tiling|housing|shading|rendering)\b)[a-z]+ing(?=\s)",
    re.IGNORECASE)
LEADING = re.compile(r"^(?:(?:a|an|the|some|this|that|these|those|its|their|his|her|our|my|your)\s+)+",
                     re.IGNORECASE)
EDIT_VERBS = re.compile(r"^(?:(?:please\s+)?(?:put|place|make|change|replace|turn|add|give|set|swap|move|remove|"
                        r"recolou?r|paint|dress|show|keep|edit)\s+(?:(?:him|her|them|it|me|us|this|that)\s+)?)",
                        re.IGNORECASE)
"""An edit instruction's verb (and the pronoun after it): what to do, not content to find in the image."""
PRONOUNS = {"him", "her", "them", "it", "me", "us", "he", "she", "they", "this", "that"}
NUMBER_WORDS = {"two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "dozen",
                "several", "many", "pair", "couple"}
STYLE_WORDS = {
    "elegant", "minimal", "minimalist", "bold", "busy", "subtle", "tone-on-tone", "flat", "clean", "vintage", "retro",
    "modern", "classic", "editorial", "grunge", "noisy", "textured", "texture", "gradient", "pastel", "neon", "muted",
    "understated", "faint", "loud", "punchy", "airy", "light", "thin", "delicate", "fine", "hairline", "serif",
    "abstract", "pattern", "patterned", "solid", "glossy", "matte", "cinematic", "photorealistic", "realistic",
    "watercolor", "watercolour", "sketch", "cartoon", "illustrated", "minimalistic", "playful", "luxury", "premium",
    "warm", "cool", "dark", "bright", "moody", "soft", "sharp", "high-contrast", "low-contrast", "lighting", "style",
    "look", "mood", "colors", "colours", "palette", "background", "studio",
}
FORMAT_WORDS = {
    "poster", "flyer", "banner", "thumbnail", "ad", "advert", "advertisement", "cover", "image", "photo",
    "photograph", "picture", "illustration", "shot", "render", "design", "graphic", "card", "post", "story", "reel",
    "wallpaper", "portrait", "landscape", "square", "widescreen", "ultrawide", "cinemascope", "1k", "2k", "4k", "uhd",
    "hd", "version", "one", "product", "profile", "avatar",
}
POSITION_WORDS = {"corner", "top", "bottom", "left", "right", "centre", "center", "middle", "side", "edge",
                  "foreground", "upper", "lower"}
"""Where text or a subject goes: the plan's layout, not content to verify."""
CANVAS = re.compile(r"\b\d{1,2}\s*[:x×]\s*\d{1,2}\b|\b\d\s?k\b", re.IGNORECASE)
MAX_PHRASES = 12


def prompt_phrases(prompt: str) -> list[tuple[str, str]]:
    """(kind, phrase) for the prompt's own words: content, style and count phrases, in prompt order."""
    text = prompt
    for pattern in QUOTE_PATTERNS:
        text = re.sub(pattern, " ", text)
    text = CANVAS.sub(" ", CARRIER.sub(" ", text))
    out: list[tuple[str, str]] = []
    for chunk in SPLIT.split(f" {text} "):
        words = LEADING.sub("", EDIT_VERBS.sub("", " ".join(chunk.split()))).strip(" -'\"").split()
        words = [w for w in words if w.lower() not in ("that", "which", "who", "is", "are", "it", "very")]
        if all(w.lower() in PRONOUNS for w in words):
            continue
        if not words:
            continue
        lowered = [w.lower() for w in words]
        if all(w in POSITION_WORDS for w in lowered):
            continue
        if all(w in FORMAT_WORDS or w in STYLE_WORDS for w in lowered):
            if any(w in STYLE_WORDS for w in lowered):
                out.append(("style", " ".join(words)))
            continue  # only format words ("a poster"): the canvas covers it
        kind = "count" if lowered[0] in NUMBER_WORDS or lowered[0].isdigit() else "content"
        phrase = " ".join(w for w in words if w.lower() not in FORMAT_WORDS or kind == "count") or " ".join(words)
        out.append((kind, phrase))
    seen: set[str] = set()
    unique = [(k, p) for k, p in out if not (p.lower() in seen or seen.add(p.lower()))]  # type: ignore[func-returns-value]
    return unique[:MAX_PHRASES]


def requirements_for(brief: Brief, plan: Plan) -> list[Requirement]:
    """Every requirement of a brief, with the critic of the plan that verifies it (None: no critic does)."""
    checks = {name for name, spec in plan.checks.items() if spec.enabled}

    def by(critic: str) -> str | None:
        return critic if critic in checks else None

    reqs = [Requirement(text=e.content, kind="text", verified_by=by("ocr"), ref=e.id) for e in plan.text]
    for s in plan.subjects:
        if s.kind == "person":
            text = (f"{s.name} keeps their identity" if s.name and plan.edit is not None
                    else f"the person in {s.name or s.id + chr(39) + 's reference photo'}")
            reqs.append(Requirement(text=text, kind="identity", verified_by=by("face"), ref=s.id))
        else:
            reqs.append(Requirement(text=f"the object in {s.name or s.id + chr(39) + 's reference photo'}",
                                    kind="object", verified_by=by("reference"), ref=s.id))
    if plan.sketch is not None:
        reqs.append(Requirement(text=f"the sketch's layout ({len(plan.text)} text box(es), {len(plan.panels)} "
                                     "panel(s))", kind="layout", verified_by=by("structure")))
    if plan.edit is not None:
        reqs.append(Requirement(text=f"only the masked area changes ({plan.edit.mask_share:.0%} of the source)",
                                kind="preservation", verified_by=by("preservation")))
        reqs.append(Requirement(text=f"the source's size and aspect ({plan.width}x{plan.height})", kind="canvas",
                                verified_by=by("spec")))
    else:
        reqs.append(Requirement(text=f"{plan.aspect_ratio} {plan.size} ({plan.width}x{plan.height})",
                                kind="canvas", verified_by=by("spec")))
    judge = by("vlm")
    reqs += [Requirement(text=phrase, kind=kind, verified_by=judge)
             for kind, phrase in prompt_phrases(brief.prompt)]
    reqs += [Requirement(text=phrase, kind="style", verified_by=judge)  # the brief's style words are all style
             for _, phrase in prompt_phrases(brief.style) if brief.style.strip()]
    return reqs


__all__ = ["prompt_phrases", "requirements_for"]
