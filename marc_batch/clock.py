"""The one clock of the service: timezone-aware UTC, so stored times never depend on the host."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
