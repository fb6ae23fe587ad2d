"""What each source table must satisfy: its key, required fields, texts, times and references.

One :class:`EntitySpec` per table mirrors its record model in
:mod:`marc_batch.data.records`; the vectorised validator applies it.
"""

from dataclasses import dataclass, field

from marc_batch.data.records import Reason
from marc_batch.entities import Entity


@dataclass(frozen=True)
class EntitySpec:
    """The validation rules of one entity, mirroring its record model."""

    name: str
    key: tuple[str, ...]
    required: tuple[str, ...]
    nonblank_text: tuple[str, ...] = ()
    timestamps: dict[str, bool] = field(default_factory=dict)  # column -> required
    numbers: tuple[str, ...] = ()
    recency: str | None = None
    references: dict[str, tuple[Entity, Reason]] = field(default_factory=dict)


ITEMS = EntitySpec(
    "items",
    key=("id",),
    required=("id", "title"),
    nonblank_text=("title",),
    timestamps={"updated_at": False},
    recency="updated_at",
)
USERS = EntitySpec(
    "users", key=("id",), required=("id",), timestamps={"updated_at": False}, recency="updated_at"
)
INTERACTIONS = EntitySpec(
    "interactions",
    key=("user_id", "item_id"),
    required=("user_id", "item_id", "rating", "timestamp"),
    timestamps={"timestamp": True},
    numbers=("rating",),
    recency="timestamp",
    references={
        "user_id": (Entity.USER, Reason.UNKNOWN_USER),
        "item_id": (Entity.ITEM, Reason.UNKNOWN_ITEM),
    },
)
