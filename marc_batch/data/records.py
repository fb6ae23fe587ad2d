"""The record schemas: what a valid item, user and interaction is.

These pydantic models are the specification. Ingestion does not call them
per row (that would be a Python loop over millions of rows); the vectorised
validator in :mod:`marc_batch.data.validate` implements the same rules, and a
property test checks that both agree. Their JSON Schemas are published in
``schemas/``.
"""

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or whitespace only")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]
Finite = Annotated[float, AfterValidator(_finite)]


class ItemRecord(BaseModel):
    """A catalogue item. Columns beyond these are free attributes that templates may use."""

    model_config = ConfigDict(extra="allow")

    id: NonBlank = Field(description="Stable catalogue id; unique after de-duplication.")
    title: NonBlank
    updated_at: datetime | None = Field(
        None, description="Newest row wins when an id appears twice."
    )


class UserRecord(BaseModel):
    """A user profile. Every column beyond ``id`` is a free attribute (age, occupation, ...)."""

    model_config = ConfigDict(extra="allow")

    id: NonBlank
    updated_at: datetime | None = None


class InteractionRecord(BaseModel):
    """One rating event; ``user_id`` and ``item_id`` must name accepted users and items."""

    model_config = ConfigDict(extra="allow")

    user_id: NonBlank
    item_id: NonBlank
    rating: Finite
    timestamp: datetime


class Reason(StrEnum):
    """Why a row was quarantined. The first rule a row breaks, in this order, is reported."""

    MALFORMED_ROW = "MALFORMED_ROW"
    INVALID_UTF8 = "INVALID_UTF8"
    NULL_ID = "NULL_ID"
    BAD_TYPE = "BAD_TYPE"
    NON_FINITE = "NON_FINITE"
    EMPTY_TEXT = "EMPTY_TEXT"
    TEXT_TOO_LONG = "TEXT_TOO_LONG"
    UNKNOWN_USER = "UNKNOWN_USER"
    UNKNOWN_ITEM = "UNKNOWN_ITEM"
    DUPLICATE_ID = "DUPLICATE_ID"


class QuarantineEntry(BaseModel):
    """One row of a quarantine file: the source row, why it was refused, and its values."""

    entity: str
    source_row: int | None = Field(
        description="0-based row in the parsed source; None if unparsable."
    )
    reason: Reason
    detail: str
    record: str = Field(description="The row's original values as JSON (bytes shown escaped).")
