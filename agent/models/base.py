"""The base of every pydantic model in pixloop, and the reference to a stored image."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

_compact: ContextVar[bool] = ContextVar("pixloop_compact_dumps", default=False)


@contextmanager
def compact_dumps() -> Iterator[None]:
    """Within this block a plain `model_dump()` of a pixloop model leaves out fields at their defaults.

    The checkpointer encodes graph state inside it: LangGraph stores pydantic models as `model_dump()`
    and revives them with the class, which fills the defaults back in, so checkpoints hold only what
    differs from the defaults."""
    token = _compact.set(True)
    try:
        yield
    finally:
        _compact.reset(token)


class Model(BaseModel):
    """Strict about unknown fields, so a typo in a brief or plan is an error that names it."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        if not kwargs and _compact.get():
            kwargs = {"exclude_defaults": True}
        return super().model_dump(**kwargs)


IMAGE_EXTENSIONS = ("png", "jpg", "webp", "gif", "bin")


class ImageRef(Model):
    """A content-addressed image in the run's artifact store; path is relative to the store root.

    The path is always `images/<first two hex digits>/<sha256>.<extension>`: a reference read back from a
    checkpoint, or sent by a LangGraph client, cannot point anywhere else."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    path: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    mime: str = "image/png"
    bytes: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _path_is_the_stores_layout(self) -> ImageRef:
        stem, _, ext = self.path.rpartition(".")
        if stem != f"images/{self.sha256[:2]}/{self.sha256}" or ext not in IMAGE_EXTENSIONS:
            raise ValueError(f"image path {self.path!r} is not the store's path for its hash "
                             f"(images/{self.sha256[:2]}/{self.sha256}.<ext>)")
        return self
