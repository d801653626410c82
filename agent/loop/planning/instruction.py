"""Reading an edit instruction: what kind of edit it asks for, what it protects, what it names, and its colour.

The reading is typed once, here (`read_instruction` -> `(EditKind, EditKeep | None, target)`), so nothing later
decides on strings. Rules, first match wins:

1. **insert**: with object references, an adding verb and an object that is no person and no background
   ("add the bottle on the table", "put our bottle on the counter") -> the object's head noun is the target;
2. **background**: the instruction names the background ("background", "backdrop", "scenery", "setting",
   "surroundings", "behind her") or moves the subject somewhere ("put her on a beach", "place the product on a
   marble counter"); what it keeps is the subject, or the product / the text when it says so;
3. **clothing**: a garment ("change her jacket to red", "make his shirt blue") -> the garment is the target;
4. **restyle**: the whole image's look ("make it warmer", "golden hour lighting", "black and white");
5. anything else is a **region** edit: with no mask, the whole image may change.

`named_colour` gives the colour an instruction names ("red" -> "#c62828"), for clothing, region and restyle edits.
"""

from __future__ import annotations

import re

from agent.models.edit import EditKeep, EditKind

_PRONOUN = r"(?:him|her|them|me|us|it|the\s+(?:man|woman|person|people|girl|boy|child|kid|couple|model|subject|" \
           r"family|dog|cat|product|bottle|car))"
BACKGROUND_PATTERNS: tuple[str, ...] = (
    r"\bback[\s-]?grounds?\b", r"\bbackdrops?\b", r"\bscenery\b", r"\bsurroundings\b", r"\bbehind\s+(?:him|her|them|"
    r"me|us|it|the\s+\w+)\b", r"\b(?:setting|scene|location)\s+(?:to|with|for)\b", r"\bnew\s+(?:setting|scene|location)\b",
    rf"\b(?:put|place|move|set|transport|take|show)\s+{_PRONOUN}\s+(?:on|in|at|into|onto|in\s+front\s+of|"
    r"against|under|by|near|beside|to)\b",
    r"\bremove\s+the\s+(?:background|backdrop)\b",
)
"""An instruction that matches one of these changes the background around a kept subject."""

GARMENTS: tuple[str, ...] = (
    "t-shirt", "tshirt", "shirt", "jacket", "coat", "overcoat", "raincoat", "dress", "gown", "sweater", "jumper",
    "pullover", "hoodie", "sweatshirt", "blouse", "suit", "blazer", "tuxedo", "tie", "bowtie", "trousers", "pants",
    "jeans", "shorts", "skirt", "outfit", "clothes", "clothing", "uniform", "vest", "waistcoat", "cardigan", "scarf",
    "top", "polo", "tank top", "turtleneck", "robe", "kimono", "apron", "parka", "windbreaker", "costume", "attire",
)
"""Garment nouns; `top` counts only after a possessive ("her top"), since "on top of" is no garment."""
_POSSESSIVE = r"(?:his|her|their|my|your|our|its|the\s+\w+'s)"

INSERT_VERBS: tuple[str, ...] = ("add", "insert", "place", "put", "include", "drop", "paste", "position", "show")
_DETERMINERS = {"the", "a", "an", "this", "that", "these", "those", "my", "our", "your", "their", "his", "her",
                "its", "some", "one", "two", "three", "reference", "referenced"}
_PREPOSITIONS = r"(?:\s+(?:on|in|at|to|into|onto|next|beside|near|behind|under|over|above|below|from|with|by|" \
                r"between|inside|against|so|and|where|that)\b|\s*[,.;!]|\s*$)"
_NOT_OBJECTS = {"background", "backdrop", "scenery", "setting", "scene", "him", "her", "them", "me", "us", "it",
                "man", "woman", "person", "people", "girl", "boy", "child", "kid", "couple", "model", "subject",
                "light", "lighting", "colour", "color", "contrast", "warmth", "glow", "filter", "effect", "style"}
"""Words an adding verb can name that are no object to insert ("add a new background", "put her on a beach")."""

RESTYLE_PATTERNS: tuple[str, ...] = (
    r"\bwarm(?:er)?\b", r"\bcool(?:er)?\b", r"\bgolden\s+hour\b", r"\blight(?:ing)?\b", r"\brelight\b",
    r"\bblack[\s-]+and[\s-]+white\b", r"\bb\s*&\s*w\b", r"\bmonochrome\b", r"\bgr[ae]yscale\b", r"\bsepia\b",
    r"\bvintage\b", r"\bretro\b", r"\bfilm\s+(?:look|grain|stock)\b", r"\bcinematic\b", r"\bcolou?r\s+grad",
    r"\bgrade\b", r"\bbright(?:er|en)?\b", r"\bdark(?:er|en)\b", r"\bexposure\b", r"\bcontrast\b",
    r"\bsaturat", r"\bdesaturat", r"\bvibrant\b", r"\bmood(?:y)?\b", r"\btone\b", r"\bnight[\s-]?time\b",
    r"\b(?:as|like)\s+an?\s+(?:painting|watercolou?r|sketch|drawing|illustration|cartoon|anime)\b",
    r"\b(?:style|stylise|stylize|restyle)\b", r"\bpastel\b", r"\bmatte\b", r"\bhdr\b", r"\bsunset\s+light",
)
"""The whole image's look: light, colour grade, monochrome, a painted style."""

KEEP_PATTERNS: tuple[tuple[str, EditKeep], ...] = (
    (r"\b(?:keep|preserve|protect|leave|don'?t\s+(?:touch|change))\b[^.;]*\b(?:text|words|lettering|title|caption|"
     r"logo|headline)\b", "text"),
    (r"\b(?:text|words|lettering|headline|caption)\b[^.;]*\b(?:untouched|unchanged|as\s+(?:it|they)\s+(?:is|are))\b",
     "text"),
    (r"\b(?:product|bottle|packshot|package|packaging|item)\b", "product"),
    (r"\b(?:keep|preserve|protect)\b[^.;]*\b(?:person|people|everyone|him|her|them|man|woman)\b", "person"),
)
"""What a background edit protects when the instruction says so; the subject otherwise."""

COLOURS: dict[str, str] = {
    "red": "#c62828", "crimson": "#b71c1c", "scarlet": "#d32f2f", "burgundy": "#7b1e2b", "maroon": "#6d1b1b",
    "wine": "#722f37", "pink": "#ec407a", "hot pink": "#e91e63", "magenta": "#c2185b", "rose": "#e57373",
    "orange": "#ef6c00", "coral": "#ff7f50", "peach": "#ffb085", "yellow": "#fbc02d", "mustard": "#c9a227",
    "gold": "#c9a227", "golden": "#c9a227", "beige": "#d8c3a5", "cream": "#f3e9d2", "ivory": "#f5f0e1",
    "tan": "#c19a6b", "khaki": "#b5a272", "camel": "#b98a54", "brown": "#6d4c41", "chocolate": "#4e342e",
    "green": "#2e7d32", "olive": "#6b7a2a", "lime": "#9ccc65", "mint": "#98d8b0", "emerald": "#1b7a4b",
    "forest green": "#1b5e20", "sage": "#9caf88", "teal": "#00796b", "turquoise": "#26a69a", "cyan": "#00acc1",
    "blue": "#1565c0", "navy": "#1a237e", "navy blue": "#1a237e", "royal blue": "#2747c2", "sky blue": "#64b5f6",
    "baby blue": "#90caf9", "cobalt": "#0047ab", "denim": "#3b5b92", "indigo": "#3949ab", "purple": "#6a1b9a",
    "violet": "#7e57c2", "lavender": "#b39ddb", "lilac": "#c8a2c8", "plum": "#6a2c5a", "white": "#f5f5f5",
    "black": "#1a1a1a", "grey": "#757575", "gray": "#757575", "charcoal": "#36454f", "silver": "#bdbdbd",
}
"""Colour names and the hex a designer would pick for each."""
_SHADES = {"light": 0.45, "pale": 0.55, "pastel": 0.55, "dark": -0.45, "deep": -0.35}
_NOT_A_COLOUR = re.compile(r"\bblack[\s-]+and[\s-]+white\b|\bb\s*&\s*w\b|\bwhite\s+balance\b|\bgolden\s+hour\b",
                           re.IGNORECASE)


def _matches(patterns: tuple[str, ...], text: str) -> bool:
    return any(re.search(p, text) for p in patterns)


def _garment(text: str) -> str | None:
    for g in sorted(GARMENTS, key=len, reverse=True):
        pattern = rf"\b{_POSSESSIVE}\s+(?:\w+\s+)?{re.escape(g)}\b" if g == "top" else rf"\b{re.escape(g)}s?\b"
        if re.search(pattern, text):
            return g
    return None


def _inserted_object(text: str) -> str | None:
    """The head noun of the object an adding verb names: 'add the red bottle on the table' -> 'bottle'."""
    verbs = "|".join(INSERT_VERBS)
    m = re.search(rf"\b(?:{verbs})\s+((?:[\w'-]+\s+){{0,5}}?[\w'-]+){_PREPOSITIONS}", text)
    if m is None:
        return None
    words = [w for w in m.group(1).split() if w not in _DETERMINERS]
    return words[-1] if words and words[-1] not in _NOT_OBJECTS else None


def read_instruction(instruction: str, has_references: bool = False) -> tuple[EditKind, EditKeep | None, str | None]:
    """What an edit instruction asks for: (kind, what it keeps, what it names). See the module's rules."""
    text = " ".join(instruction.lower().replace("’", "'").split())
    if has_references:
        target = _inserted_object(text)
        if target is not None:
            return "insert", None, target
    if _matches(BACKGROUND_PATTERNS, text):
        keep: EditKeep = next((k for p, k in KEEP_PATTERNS if re.search(p, text)), "subject")
        return "background", keep, "background"
    garment = _garment(text)
    if garment is not None:
        return "clothing", None, garment
    if _matches(RESTYLE_PATTERNS, text):
        return "restyle", None, None
    return "region", None, None


def _shade(hex_colour: str, amount: float) -> str:
    """The colour mixed toward white (amount > 0) or black (amount < 0)."""
    rgb = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]
    target = 255 if amount > 0 else 0
    mixed = [round(c + (target - c) * abs(amount)) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def named_colour(instruction: str) -> str | None:
    """The hex of the first colour the instruction names ("make his shirt dark blue" -> a dark blue), else None.
    "black and white", "golden hour" and "white balance" name no colour."""
    text = _NOT_A_COLOUR.sub(" ", instruction.lower())
    best: tuple[int, str] | None = None
    for name in sorted(COLOURS, key=len, reverse=True):
        m = re.search(rf"\b{re.escape(name)}\b", text)
        if m is not None and (best is None or m.start() < best[0]):
            shade = re.search(rf"\b({'|'.join(_SHADES)})[\s-]+{re.escape(name)}\b", text)
            hex_colour = COLOURS[name] if shade is None else _shade(COLOURS[name], _SHADES[shade.group(1)])
            best = (m.start() if shade is None else shade.start(), hex_colour)
    return best[1] if best else None


__all__ = ["BACKGROUND_PATTERNS", "COLOURS", "GARMENTS", "INSERT_VERBS", "KEEP_PATTERNS", "RESTYLE_PATTERNS",
           "named_colour", "read_instruction"]
