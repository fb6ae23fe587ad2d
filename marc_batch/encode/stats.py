"""Throughput and padding figures, per shard and per run."""

from pydantic import BaseModel


class EncodeStats(BaseModel):
    """Counts accumulate; rates are derived so that merged stats stay consistent."""

    texts: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    batches: int = 0
    oom_retries: int = 0
    seconds: float = 0.0

    @property
    def texts_per_second(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def padding_ratio(self) -> float:
        """Share of processed tokens that were padding."""
        return 1.0 - self.tokens / self.padded_tokens if self.padded_tokens else 0.0

    def __add__(self, other: "EncodeStats") -> "EncodeStats":
        return EncodeStats(
            **{name: getattr(self, name) + getattr(other, name) for name in type(self).model_fields}
        )

    def summary(self) -> dict[str, float]:
        return {
            **self.model_dump(),
            "texts_per_second": round(self.texts_per_second, 1),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "padding_ratio": round(self.padding_ratio, 4),
        }
