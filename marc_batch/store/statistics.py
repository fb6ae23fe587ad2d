"""Snapshot statistics: what a snapshot holds, and how far its vectors moved from its parent's.

Recorded with every snapshot a refresh, backfill or compaction writes
(:mod:`marc_batch.store.attachments`) and shown by ``snapshots diff``:

- per entity: live rows, coverage (embedded / rows in, when the run
  counted them), the vector norm's mean, std, min and max, and each
  dimension's mean and std;
- against the parent, per entity: for ids whose ``text_hash`` did not
  change, the cosine between the old and the new vector (min, mean, and how
  many fall below 0.9999). Under the same model this is 1.0: anything else
  is nondeterminism or corruption;
- for a fixed-seed sample of items both snapshots hold with the same text,
  the overlap of their exact 10 nearest neighbours in each snapshot, and
  the sampled items whose neighbourhoods moved most.

Nothing holds a whole catalogue: moments are summed one data file at a
time, the two snapshots are joined one shard at a time (an id stays in its
shard, a stable hash of the id, from version to version), and the exact
neighbour search scans one slice of one file at a time for all sampled
queries at once. The same pass feeds an alignment :class:`Fitter` when the
model changed.
"""

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marc_batch.encode.shards import shard_of
from marc_batch.entities import ENTITIES, Entity
from marc_batch.store.alignment import Fitter
from marc_batch.store.manifest import Manifest
from marc_batch.store.reader import embedding_matrix, live_pieces, merged_table
from marc_batch.store.store import Store

SAME = 0.9999  # a cosine below this, for an unchanged text, is a vector that moved
SAMPLE = 200  # items whose neighbourhoods are compared
NEIGHBOURS = 10
MOVED = 5  # sampled items listed as the ones that moved most
SEED = "marc-batch-neighbours-0"
SLICE_ROWS = 8192  # rows scored against every sampled query at once
PAIRED = ("id", "text_hash", "embedding")


def _matrix(table: pa.Table, k: int) -> np.ndarray:
    return embedding_matrix(table.combine_chunks(), k).astype(np.float64)


def _slices(pieces: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """At most ``SLICE_ROWS`` rows at a time of each piece (and no empty ones)."""
    for piece in pieces:
        for start in range(0, piece.num_rows, SLICE_ROWS):
            yield piece.slice(start, SLICE_ROWS)


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def entity_summary(store: Store, manifest: Manifest, entity: Entity) -> dict:
    """Rows, coverage, norm and per-dimension moments of one entity's live vectors."""
    k, n = manifest.k, 0
    total, squares = np.zeros(k), np.zeros(k)
    norm_sum, norm_squares, low, high = 0.0, 0.0, np.inf, -np.inf
    for part in _slices(live_pieces(store, manifest, entity, ["embedding"])):
        matrix = _matrix(part, k)
        norms = np.linalg.norm(matrix, axis=1)
        n += len(norms)
        total += matrix.sum(axis=0)
        squares += (matrix**2).sum(axis=0)
        norm_sum, norm_squares = norm_sum + norms.sum(), norm_squares + (norms**2).sum()
        low, high = min(low, float(norms.min())), max(high, float(norms.max()))
    counted = manifest.conservation.get(entity)
    coverage = counted.embedded / counted.rows_in if counted and counted.rows_in else None
    if n == 0:
        return {"rows": 0, "coverage": coverage, "norm": None, "dim_mean": [], "dim_std": []}
    mean = total / n
    return {
        "rows": n,
        "coverage": coverage,
        "norm": {
            "mean": norm_sum / n,
            "std": float(np.sqrt(max(norm_squares / n - (norm_sum / n) ** 2, 0.0))),
            "min": low,
            "max": high,
        },
        "dim_mean": mean.tolist(),
        "dim_std": np.sqrt(np.maximum(squares / n - mean**2, 0.0)).tolist(),
    }


class _Sample:
    """The ``SAMPLE`` shared items with the smallest seeded hash: the same ones in any order."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, np.int64)
        self.ids = np.zeros(0, object)
        self.new: list[np.ndarray] = []
        self.old: list[np.ndarray] = []

    def offer(self, ids: pa.Array, new: np.ndarray, old: np.ndarray) -> None:
        salted = pc.binary_join_element_wise(SEED, ids, ":")
        keys = np.concatenate([self.keys, shard_of(salted, 2**31 - 1).astype(np.int64)])
        every = np.concatenate([self.ids, np.asarray(ids.to_pylist(), object)])
        new_all = np.concatenate([*self.new, new]) if self.new else new
        old_all = np.concatenate([*self.old, old]) if self.old else old
        keep = np.lexsort((every, keys))[:SAMPLE]
        self.keys, self.ids = keys[keep], every[keep]
        self.new, self.old = [new_all[keep]], [old_all[keep]]


def _pairs(store: Store, new: Manifest, old: Manifest, entity: Entity):
    """(ids, new vectors, old vectors) of the ids both hold with the same text, in slices.

    One shard of each snapshot is read at a time; vectors are taken from it
    ``SLICE_ROWS`` rows at a time, so memory is one shard's rows plus one slice.
    """
    shards = {f.shard for m in (new, old) for f in m.data_files(entity)}
    for shard in sorted(shards):
        after = merged_table(store, new, entity, PAIRED, shard=shard)
        before = merged_table(store, old, entity, PAIRED, shard=shard)
        positions = pc.index_in(after["id"], value_set=before["id"])
        mine = np.flatnonzero(positions.is_valid().to_numpy(zero_copy_only=False))
        theirs = positions.drop_null().to_numpy()
        same = pc.equal(after["text_hash"].take(mine), before["text_hash"].take(theirs))
        kept = same.to_numpy(zero_copy_only=False)
        mine, theirs = mine[kept], theirs[kept]
        for start in range(0, len(mine), SLICE_ROWS):
            ours = after.take(mine[start : start + SLICE_ROWS])
            parent = before.take(theirs[start : start + SLICE_ROWS])
            yield ours["id"].combine_chunks(), _matrix(ours, new.k), _matrix(parent, old.k)


def _cosines(store: Store, new: Manifest, old: Manifest, fitter: Fitter | None, sample: _Sample):
    result = {}
    for entity in ENTITIES:
        count, total, below, low = 0, 0.0, 0, None
        for ids, after, before in _pairs(store, new, old, entity):
            if fitter is not None:
                fitter.add(after, before)
            if entity is Entity.ITEM:
                sample.offer(ids, after, before)
            if new.k == old.k:
                cosine = np.einsum("ij,ij->i", _unit(after), _unit(before))
                total, below = total + float(cosine.sum()), below + int((cosine < SAME).sum())
                low = float(cosine.min()) if low is None else min(low, float(cosine.min()))
            count += len(ids)
        result[str(entity)] = {
            "unchanged_text": count,
            "cosine_min": low,
            "cosine_mean": total / count if count and low is not None else None,
            "below_0_9999": below if low is not None else None,
        }
    return result


def nearest(store: Store, manifest: Manifest, ids: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """[len(ids), NEIGHBOURS] ids of each query's exact cosine neighbours (itself excluded).

    One slice of one file at a time is scored against every query; a row
    holds ``""`` where the catalogue has fewer items than neighbours asked.
    """
    wanted = pa.array(ids.tolist(), pa.string())
    queries = _unit(queries)
    best = np.full((len(ids), NEIGHBOURS), -np.inf)
    best_ids = np.full((len(ids), NEIGHBOURS), "", object)
    for part in _slices(live_pieces(store, manifest, Entity.ITEM, ["embedding"])):
        scores = queries @ _unit(_matrix(part, manifest.k)).T
        itself = pc.index_in(wanted, value_set=part["id"])
        rows = np.flatnonzero(itself.is_valid().to_numpy(zero_copy_only=False))
        scores[rows, itself.drop_null().to_numpy()] = -np.inf
        scores = np.hstack([best, scores])
        labels = np.asarray(part["id"].to_pylist(), object)
        top = np.argpartition(-scores, NEIGHBOURS - 1, axis=1)[:, :NEIGHBOURS]
        from_best = np.take_along_axis(best_ids, np.minimum(top, NEIGHBOURS - 1), axis=1)
        from_part = labels[np.maximum(top - NEIGHBOURS, 0)]
        best_ids = np.where(top < NEIGHBOURS, from_best, from_part)
        best = np.take_along_axis(scores, top, axis=1)
    return best_ids


def _overlap(store: Store, new: Manifest, old: Manifest, sample: _Sample) -> dict | None:
    if not len(sample.ids):
        return None
    after = nearest(store, new, sample.ids, sample.new[0])
    before = nearest(store, old, sample.ids, sample.old[0])
    overlaps = []
    for mine, theirs in zip(after, before, strict=True):
        listed = max(len(set(mine) - {""}), len(set(theirs) - {""}))
        shared = len((set(mine) & set(theirs)) - {""})
        overlaps.append(shared / listed if listed else 1.0)
    order = np.lexsort((sample.ids, np.asarray(overlaps)))[:MOVED]
    return {
        "k": NEIGHBOURS,
        "sampled": len(sample.ids),
        "overlap_mean": float(np.mean(overlaps)),
        "overlap_min": float(np.min(overlaps)),
        "moved_most": [{"id": sample.ids[i], "overlap": overlaps[i]} for i in order],
    }


def compare(store: Store, new: Manifest, old: Manifest, fitter: Fitter | None = None) -> dict:
    """How ``new`` moved from ``old``: cosines of unchanged texts, neighbour overlap@10.

    ``fitter``, if given, is fed every (new, old) pair of unchanged text.
    """
    sample = _Sample()
    cosines = _cosines(store, new, old, fitter, sample)
    return {
        "from_version": old.version,
        "from_model": old.model.version,
        "same_model": new.model.version == old.model.version,
        "cosine": cosines,
        "neighbours": _overlap(store, new, old, sample),
    }


def statistics(
    store: Store, manifest: Manifest, parent: Manifest | None, fitter: Fitter | None = None
) -> dict:
    """The statistics recorded with ``manifest``: its own figures and, with a parent, the drift."""
    return {
        "version": manifest.version,
        "model": manifest.model.version,
        "entities": {str(e): entity_summary(store, manifest, e) for e in ENTITIES},
        "parent": None if parent is None else compare(store, manifest, parent, fitter),
    }


def summary_lines(figures: dict) -> list[str]:
    """The statistics in a few lines for people: the CLI's diff and the flow run's artifact."""
    lines = []
    for entity, own in figures["entities"].items():
        coverage = "" if own["coverage"] is None else f", coverage {own['coverage']:.1%}"
        norm, shape = own["norm"], ""
        if norm is not None:
            low, high = norm["min"], norm["max"]
            shape = f", norm {norm['mean']:.4f} ± {norm['std']:.4f} [{low:.4f}, {high:.4f}]"
        lines.append(f"{entity}: {own['rows']} rows{coverage}{shape}")
    parent = figures["parent"]
    if parent is None:
        return lines
    model = "same model" if parent["same_model"] else f"model {parent['from_model']!r}"
    lines.append(f"against version {parent['from_version']} ({model}):")
    for entity, cosine in parent["cosine"].items():
        if cosine["cosine_min"] is None:
            lines.append(f"  {entity}: {cosine['unchanged_text']} unchanged texts")
            continue
        lines.append(
            f"  {entity}: cosine of {cosine['unchanged_text']} unchanged texts min "
            f"{cosine['cosine_min']:.6f}, mean {cosine['cosine_mean']:.6f}, "
            f"{cosine['below_0_9999']} below {SAME}"
        )
    neighbours = parent["neighbours"]
    if neighbours is not None:
        moved = ", ".join(f"{m['id']} ({m['overlap']:.1f})" for m in neighbours["moved_most"])
        lines.append(
            f"  neighbour overlap@{neighbours['k']} on {neighbours['sampled']} items: mean "
            f"{neighbours['overlap_mean']:.3f}, min {neighbours['overlap_min']:.3f}; "
            f"moved most: {moved}"
        )
    fitted = figures.get("alignment")
    if fitted is not None:
        lines.append(
            f"  alignment {fitted['from_model_version']!r} -> {fitted['to_model_version']!r} on "
            f"{fitted['fitted_on']} ids, residual {fitted['residual']['procrustes']:.4f} "
            f"(procrustes), {fitted['residual']['ridge']:.4f} (ridge)"
        )
    return lines
