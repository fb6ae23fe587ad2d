"""FAISS indexes over published embeddings: chosen by size, recall-gated, memory-mappable."""

from marc_batch.index.build import BuiltIndex, IndexReport, build_index
from marc_batch.index.ids import IdMap
from marc_batch.index.io import read_index, write_index

__all__ = ["BuiltIndex", "IdMap", "IndexReport", "build_index", "read_index", "write_index"]
