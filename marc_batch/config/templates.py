"""Text templates that turn records into the strings the encoder reads."""

from pydantic import BaseModel, ConfigDict, Field, field_validator

from marc_batch.data.templates import Template
from marc_batch.errors import TemplateError


class TemplatesConfig(BaseModel):
    """Item, user and behaviour templates plus the user-history budget.

    Templates use ``{field}`` placeholders only; anything else (attribute
    access, indexing, conversions, format specs) is rejected when the config
    loads. A user's ``{history}`` is their training-split behaviours, newest
    first, each rendered with ``behaviour``, kept while both budgets allow.
    """

    model_config = ConfigDict(extra="forbid")

    item: str = "Movie: {title} ({year}). Genres: {genres}."
    user: str = (
        "User: age {age}, gender {gender}, occupation {occupation}. "
        "Recently rated, newest first: {history}."
    )
    behaviour: str = "{title} ({rating}/5)"
    history_separator: str = "; "
    history_max_items: int = Field(50, ge=0)
    history_max_chars: int = Field(2_000, ge=0)

    @field_validator("item", "user", "behaviour")
    @classmethod
    def _parses(cls, source: str) -> str:
        try:
            Template(source)
        except TemplateError as exc:
            raise ValueError(str(exc)) from None
        return source
