"""Maps between the vector spaces of two model versions, fitted on the ids both embedded.

A new model version puts every vector in a new space; a ranking model
trained on the previous space cannot read it. Where both versions embedded
the same texts, a linear map from the new space to the previous one can be
fitted and published with the snapshot, so readers can ask for the new
vectors in the old space. Two maps are fitted from the same sums:

- ``procrustes``: the orthogonal (or, when ``k`` differs, semi-orthogonal)
  ``R`` minimising ``||X R - Y||``: ``R = U V^T`` for ``X^T Y = U S V^T``.
  It preserves norms and angles, so cosine neighbourhoods survive it; it is
  the default.
- ``ridge``: the least-squares map with an L2 penalty, ``(X^T X + l I)^-1
  X^T Y``, which can also rescale and shear when the spaces differ by more
  than a rotation.

Both need only ``X^T X``, ``X^T Y`` and ``||Y||^2``, so :class:`Fitter`
accumulates them chunk by chunk and a catalogue of any size is fitted in
memory of a few ``k x k`` matrices. Weights are stored as safetensors,
the description as JSON; nothing is ever unpickled.
"""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from marc_batch.errors import CorruptFile, StoreError

Kind = Literal["procrustes", "ridge"]
KINDS: tuple[Kind, ...] = ("procrustes", "ridge")
DEFAULT_RIDGE = 1e-3


@dataclass(frozen=True)
class AlignmentMap:
    """``x @ weights`` maps vectors of ``from_model`` into the space of ``to_model``."""

    weights: np.ndarray
    kind: Kind
    from_model: str
    to_model: str
    fitted_on: int = 0
    residual: float = float("nan")

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x`` ([n, k_from] or [k_from]) in the target space, as float32."""
        vectors = np.asarray(x, dtype=np.float64)
        if vectors.shape[-1] != self.weights.shape[0]:
            raise StoreError(
                f"the {self.from_model!r} -> {self.to_model!r} map takes {self.weights.shape[0]}"
                f"-dim vectors, got {vectors.shape[-1]}"
            )
        return (vectors @ self.weights).astype(np.float32)

    def then(self, other: "AlignmentMap") -> "AlignmentMap":
        """This map followed by ``other``: one map from this one's source to ``other``'s target."""
        if other.from_model != self.to_model:
            raise StoreError(
                f"cannot chain a map into {self.to_model!r} with one from {other.from_model!r}"
            )
        return AlignmentMap(
            self.weights @ other.weights,
            self.kind if self.kind == other.kind else "ridge",
            self.from_model,
            other.to_model,
            min(self.fitted_on, other.fitted_on),
            float("nan"),
        )


def identity(model: str, k: int) -> AlignmentMap:
    """The map of a space onto itself."""
    return AlignmentMap(np.eye(k), "procrustes", model, model)


@dataclass
class Fitter:
    """Sums over pairs of (new, old) vectors of the same ids, added chunk by chunk."""

    k_new: int
    k_old: int
    xtx: np.ndarray = field(init=False)
    xty: np.ndarray = field(init=False)
    yy: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.xtx = np.zeros((self.k_new, self.k_new))
        self.xty = np.zeros((self.k_new, self.k_old))

    def add(self, new: np.ndarray, old: np.ndarray) -> "Fitter":
        """Add rows ``new[i]`` and ``old[i]``, the same id in the two spaces."""
        x, y = np.asarray(new, np.float64), np.asarray(old, np.float64)
        if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
            raise StoreError(
                f"fitting needs two [n, k] matrices of equal n, got {x.shape}, {y.shape}"
            )
        if (x.shape[1], y.shape[1]) != (self.k_new, self.k_old):
            raise StoreError(
                f"expected widths ({self.k_new}, {self.k_old}), got ({x.shape[1]}, {y.shape[1]})"
            )
        self.xtx += x.T @ x
        self.xty += x.T @ y
        self.yy += float(np.einsum("ij,ij->", y, y))
        self.n += x.shape[0]
        return self

    def weights(self, kind: Kind, ridge: float = DEFAULT_RIDGE) -> np.ndarray:
        if self.n == 0:
            raise StoreError("no shared ids to fit an alignment map on")
        if kind == "procrustes":
            u, _, vt = np.linalg.svd(self.xty, full_matrices=False)
            return u @ vt
        scale = np.trace(self.xtx) / self.k_new or 1.0
        return np.linalg.solve(self.xtx + ridge * scale * np.eye(self.k_new), self.xty)

    def residual(self, weights: np.ndarray) -> float:
        """``||X W - Y|| / ||Y||`` over the pairs added, from the sums alone."""
        squared = np.trace(weights.T @ self.xtx @ weights) - 2 * np.trace(weights.T @ self.xty)
        return float(np.sqrt(max(squared + self.yy, 0.0) / self.yy)) if self.yy > 0 else 0.0

    def fit(self, from_model: str, to_model: str, kind: Kind = "procrustes") -> AlignmentMap:
        weights = self.weights(kind)
        return AlignmentMap(weights, kind, from_model, to_model, self.n, self.residual(weights))


def fit(
    new: np.ndarray,
    old: np.ndarray,
    from_model: str = "new",
    to_model: str = "old",
    kind: Kind = "procrustes",
) -> AlignmentMap:
    """The map taking ``new[i]`` closest to ``old[i]`` (rows are the same ids in both spaces)."""
    new, old = np.asarray(new), np.asarray(old)
    return Fitter(new.shape[-1], old.shape[-1]).add(new, old).fit(from_model, to_model, kind)


@dataclass(frozen=True)
class Published:
    """The two files of a published alignment: weights (safetensors) and description (JSON)."""

    weights: bytes
    metadata: bytes


def dump(maps: dict[Kind, AlignmentMap], **described: object) -> Published:
    """Serialise maps fitted together (same models, same pairs); ``described`` goes in the JSON."""
    first = maps["procrustes"]
    weights = save_tensors({kind: np.ascontiguousarray(m.weights) for kind, m in maps.items()})
    metadata = {
        "from_model_version": first.from_model,
        "to_model_version": first.to_model,
        "k_from": int(first.weights.shape[0]),
        "k_to": int(first.weights.shape[1]),
        "fitted_on": first.fitted_on,
        "residual": {kind: m.residual for kind, m in maps.items()},
        "default": "procrustes",
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        **described,
    }
    return Published(weights, json.dumps(metadata, indent=2, sort_keys=True).encode() + b"\n")


def load(published: Published, origin: str, kind: Kind | None = None) -> AlignmentMap:
    """The map of ``kind`` (default: the published default) from checked bytes; one-line errors."""
    try:
        metadata = json.loads(published.metadata)
        tensors = load_tensors(published.weights)
        chosen = kind or metadata["default"]
        if metadata["weights_sha256"] != hashlib.sha256(published.weights).hexdigest():
            raise CorruptFile(f"{origin}: weights differ from the ones its metadata describes")
        weights = tensors[chosen]
        shape = (metadata["k_from"], metadata["k_to"])
        from_model, to_model = metadata["from_model_version"], metadata["to_model_version"]
        fitted_on, residual = int(metadata["fitted_on"]), float(metadata["residual"][chosen])
    except (ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise CorruptFile(
            f"{origin}: unreadable alignment map: {' '.join(str(exc).split())}"
        ) from None
    if weights.shape != shape or not np.isfinite(weights).all():
        raise CorruptFile(f"{origin}: {chosen} weights of shape {weights.shape}, expected {shape}")
    return AlignmentMap(
        weights.astype(np.float64), chosen, from_model, to_model, fitted_on, residual
    )
