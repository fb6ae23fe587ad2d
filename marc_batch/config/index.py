"""FAISS index publishing: which index, and the recall it must prove before it is published."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class IndexConfig(BaseModel):
    """Index choice by size, and the recall gate.

    Up to ``flat_max_rows`` vectors the exact Flat index is used (recall 1 by
    construction). Above it, an IVF index with an HNSW coarse quantizer and
    ``ann`` lists; ``nprobe`` doubles until recall@``recall_k`` against exact
    search on ``tuning_queries`` held-out queries reaches ``recall_target``,
    or the run fails rather than publish a worse index.
    """

    model_config = ConfigDict(extra="forbid")

    users: bool = Field(False, description="Also publish an index of user embeddings.")
    recall_target: float = Field(0.95, gt=0.0, le=1.0)
    recall_k: int = Field(10, ge=1, le=1000)
    flat_max_rows: int = Field(
        100_000, ge=1, description="Up to this many vectors the exact Flat index is used."
    )
    ann: Literal["ivf-flat", "ivf-sq8"] = Field(
        "ivf-flat", description="Lists of exact vectors, or 8-bit scalar-quantized (4x smaller)."
    )
    tuning_queries: int = Field(1_000, ge=10)
    max_nprobe: int = Field(512, ge=1, description="Upper bound on lists probed per query.")
    hnsw_m: int = Field(32, ge=4, le=128, description="Graph degree of the coarse quantizer.")
    train_points_per_list: int = Field(
        64, ge=39, le=1024, description="k-means sample size per list (FAISS warns below 39)."
    )
    seed: int = 0
