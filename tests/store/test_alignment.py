"""Alignment maps: the fit recovers a known rotation; published files round-trip or are refused."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from marc_batch.errors import CorruptFile, StoreError
from marc_batch.store import alignment


def _unit(rows: int, k: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, k))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_procrustes_recovers_a_known_rotation_from_chunked_sums() -> None:
    old = _unit(500, 16, 0)
    rotation = ortho_group.rvs(16, random_state=3)
    new = (old @ rotation.T).astype(np.float32)  # new space = old space rotated
    fitter = alignment.Fitter(16, 16)
    for start in range(0, 500, 64):  # chunked: the sums, not the rows, are kept
        fitter.add(new[start : start + 64], old[start : start + 64])
    mapped = fitter.fit("b", "a")
    assert mapped.fitted_on == 500 and mapped.residual < 1e-5
    assert np.allclose(mapped.weights, rotation, atol=1e-5)
    assert np.allclose(mapped.apply(new), old, atol=1e-5)
    assert np.allclose(alignment.fit(new, old).weights, mapped.weights)


def test_ridge_recovers_a_scaled_shear_that_procrustes_cannot() -> None:
    old = _unit(400, 8, 1)
    shear = np.random.default_rng(2).normal(size=(8, 8)) + 3 * np.eye(8)
    new = old @ np.linalg.inv(shear)
    ridge = alignment.fit(new, old, kind="ridge")
    procrustes = alignment.fit(new, old)
    # The penalty (relative to the inputs' scale) costs a little; a rotation cannot shear at all.
    assert ridge.residual < 0.05 and procrustes.residual > 10 * ridge.residual
    assert np.abs(ridge.apply(new) - old).mean() < 0.02


def test_a_map_between_widths_and_a_chain_of_maps() -> None:
    old = _unit(300, 6, 4)
    lift = np.linalg.qr(np.random.default_rng(5).normal(size=(10, 6)))[0]  # 10 x 6, orthonormal
    new = old @ lift.T  # 10-dim vectors holding the 6-dim ones
    down = alignment.fit(new, old, "wide", "narrow")
    assert down.weights.shape == (10, 6) and np.allclose(down.apply(new), old, atol=1e-5)
    twice = alignment.identity("wide", 10).then(down)
    assert np.allclose(twice.apply(new), old, atol=1e-5)
    with pytest.raises(StoreError, match="cannot chain"):
        down.then(down)
    with pytest.raises(StoreError, match="takes 10-dim vectors"):
        down.apply(old)


def test_published_maps_round_trip_and_tampering_is_refused() -> None:
    old = _unit(200, 8, 6)
    new = old @ ortho_group.rvs(8, random_state=7).T
    fitter = alignment.Fitter(8, 8).add(new, old)
    maps = {kind: fitter.fit("m2", "m1", kind) for kind in alignment.KINDS}
    published = alignment.dump(maps, from_version=2, to_version=1)
    loaded = alignment.load(published, "align.json")
    assert loaded.kind == "procrustes" and loaded.from_model == "m2" and loaded.to_model == "m1"
    assert np.array_equal(loaded.weights, maps["procrustes"].weights)
    assert np.array_equal(alignment.load(published, "x", "ridge").weights, maps["ridge"].weights)

    flipped = bytearray(published.weights)
    flipped[-3] ^= 0x40
    tampered = alignment.Published(bytes(flipped), published.metadata)
    with pytest.raises(CorruptFile, match=r"^align\.json: weights differ") as refused:
        alignment.load(tampered, "align.json")
    assert "\n" not in str(refused.value)
    garbage = alignment.Published(b"\x00" * 16, published.metadata)
    with pytest.raises(CorruptFile, match="unreadable alignment map"):
        alignment.load(garbage, "align.json")
