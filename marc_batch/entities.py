"""The two kinds of thing the service embeds, and the one place their names are spelled.

Stores, manifests, models and reports call an entity by its value (``item``,
``user``); ingestion reads it from a source table of its own (``items``,
``users``), which is :attr:`Entity.table`. Being a ``StrEnum``, an entity is
its value wherever a string is expected (a path, a JSON key, a column).
"""

from enum import StrEnum


class Entity(StrEnum):
    ITEM = "item"
    USER = "user"

    @property
    def table(self) -> str:
        """The source table this entity's records are ingested from."""
        return _TABLES[self]


_TABLES = {Entity.ITEM: "items", Entity.USER: "users"}
ENTITIES: tuple[Entity, ...] = tuple(Entity)
