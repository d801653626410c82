"""What an edit asks for: the source photo, what may change (a mask, a region, or what to keep), and the plan's
reading of the instruction (`EditSpec`).

An edit is a brief with a `source`. At most one of `mask`, `region` and `keep` says where the change may happen;
with none of them the planner derives a mask from the instruction ("change the background" keeps the subject,
"change her jacket" edits the clothing). The mask convention is the one every critic and backend uses: an 8-bit
grey image the size of the source, white (255) where the image may change, black where it must stay as it was.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.models.base import ImageRef, Model

EditKeep = Literal["subject", "person", "product", "text"]
"""What `--keep` protects: the main subject (a person, else the most salient object), every person, the product
(the most salient object that is not a person), or the text."""
EDIT_KEEPS: tuple[str, ...] = EditKeep.__args__  # type: ignore[attr-defined]

EditKind = Literal["background", "clothing", "region", "insert", "restyle"]
"""What the edit changes: the background around a kept subject; a person's clothing; a given region (a mask or
a box); object references inserted into the scene; the whole image's look (relight, recolour) with its
layout and people kept."""

MaskOrigin = Literal["user", "region", "keep", "derived"]
"""Where the edit mask came from: the user's mask file, the user's box, the user's --keep, or the planner's
reading of the instruction."""


class EditSpec(Model):
    """The planner's reading of an edit: what changes, what is protected, and where the mask came from."""

    instruction: str
    kind: EditKind
    keep: EditKeep | None = Field(None, description="what the derived mask protects (None: a user mask or region)")
    mask_origin: MaskOrigin
    mask_share: float = Field(ge=0, le=1, description="share of the source the mask lets change")
    target: str | None = Field(None, description="what the instruction names, e.g. 'background', 'jacket'")
    method: str | None = Field(None, description="how a derived mask was made, e.g. 'grabcut seeded by 1 face'")
    preview: ImageRef | None = Field(None, description="the source with what may change tinted (for the report)")
    restart_from_source: bool = Field(True, description="a correction re-edits the source, never a failed edit "
                                                        "(chained edits compound their drift)")


__all__ = ["EDIT_KEEPS", "EditKeep", "EditKind", "EditSpec", "MaskOrigin"]
