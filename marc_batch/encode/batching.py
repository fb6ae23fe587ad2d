"""Token-budget batching with length bucketing.

A batch costs (texts x longest text) padded tokens, so a fixed batch size
either wastes compute on padding or overflows memory on long texts. Texts
are therefore sorted by length within a window (a bounded look-ahead, so
streaming still works) and packed greedily while the padded size stays
within the budget. The output order is restored by the caller from the
indices each batch carries.
"""

import numpy as np

MIN_BATCH_TEXTS = 16
MAX_TEXT_PADDING = 0.25


def plan_batches(lengths: np.ndarray, token_budget: int) -> list[np.ndarray]:
    """Split positions ``0..len(lengths)`` into batches of at most ``token_budget`` padded tokens.

    Longest first, so an out-of-memory error shows up on the first batch
    rather than hours in. A text longer than the budget gets a batch of its own.
    Past ``MIN_BATCH_TEXTS`` texts, a batch also closes before a text that it
    would pad by more than ``MAX_TEXT_PADDING`` of the batch's length: a small
    input (one shard) would otherwise fit in one batch padded to its longest text.
    """
    order = np.argsort(-lengths, kind="stable")
    sizes = np.maximum(lengths[order].astype(np.int64), 1)
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = int(sizes[start])
        size = max(1, token_budget // longest)
        short = np.flatnonzero(sizes[start : start + size] < (1 - MAX_TEXT_PADDING) * longest)
        short = short[short >= MIN_BATCH_TEXTS]
        if len(short):
            size = int(short[0])
        batches.append(order[start : start + size])
        start += size
    return batches


def batches_of(lengths: list[int], token_budget: int) -> list[list[int]]:
    """``plan_batches`` for callers holding Python lists (positions as plain ints)."""
    return [batch.tolist() for batch in plan_batches(np.asarray(lengths), token_budget)]
