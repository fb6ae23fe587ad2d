"""Run texts through an embedding model with the device kept busy.

Tokenisation, length bucketing and padding happen on a background thread
(fast tokenizers release the GIL), one window ahead of the model, so the
device never waits on Python. A window is tokenised in slices on a few
threads, each with its own copy of the tokenizer (a fast tokenizer shared
across threads fails with "Already borrowed"): a small model on a GPU
otherwise outruns one tokenising thread. Windows start small and double up to
``window``: the device waits only for the first one to be tokenised, which
on an H100 was most of a small input's time when the first window was the
whole input (benchmarks/GPU.md). On CUDA the padded batches are pinned and
copied without blocking. An out-of-memory error halves the token budget
for the rest of the run and retries the failed batch in halves; results
are written back by position, so the output does not depend on batching.
"""

import contextlib
import copy
import gc
import os
import queue
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from marc_batch.encode.batching import plan_batches
from marc_batch.encode.stats import EncodeStats
from marc_batch.errors import EncodeError


class Embedder(Protocol):
    """What the runtime needs from a model: its tokenizer and a batched forward to ``z``."""

    tokenizer: PreTrainedTokenizerBase

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor: ...


@dataclass
class Batch:
    positions: np.ndarray
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    tokens: int


def pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists into (ids, mask) tensors."""
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


_free: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_free_lock = threading.Lock()


@contextlib.contextmanager
def borrowed(tokenizer: PreTrainedTokenizerBase, count: int) -> Iterator[list]:
    """``count`` copies of ``tokenizer`` for this caller alone, kept for reuse afterwards.

    Copies, never the tokenizer itself: other runtimes of the same model may be
    tokenising with it on their own threads.
    """
    with _free_lock:
        free = _free.setdefault(tokenizer, [])
        taken = [free.pop() for _ in range(min(count, len(free)))]
    taken += [copy.deepcopy(tokenizer) for _ in range(count - len(taken))]
    try:
        yield taken
    finally:
        with _free_lock:
            _free[tokenizer].extend(taken)


class EncoderRuntime:
    """Encodes sequences of texts into a float32 matrix, in input order."""

    def __init__(
        self,
        embedder: Embedder,
        device: torch.device,
        max_length: int,
        token_budget: int,
        window: int = 4096,
        first_window: int = 256,
        threads: int = min(8, os.cpu_count() or 1),
    ) -> None:
        self.embedder = embedder
        self.device = device
        self.max_length = max_length
        self.token_budget = token_budget
        self.window = window
        self.first_window = min(first_window, window)
        self.threads = max(1, threads)
        pad_id = embedder.tokenizer.pad_token_id
        self.pad_id = 0 if pad_id is None else pad_id

    def _windows(self, count: int) -> Iterator[tuple[int, int]]:
        """``[start, stop)`` over ``count`` texts, sized ``first_window`` doubling to ``window``."""
        start, size = 0, self.first_window
        while start < count:
            yield start, min(start + size, count)
            start, size = start + size, min(2 * size, self.window)

    def _tokenize(
        self, pool: ThreadPoolExecutor, copies: list, chunk: list[str]
    ) -> list[list[int]]:
        """Token ids of ``chunk``: one contiguous slice per thread and tokenizer copy, in order."""
        step = -(-len(chunk) // len(copies))
        slices = [chunk[i : i + step] for i in range(0, len(chunk), step)]

        def run(tokenizer: PreTrainedTokenizerBase, part: list[str]) -> list[list[int]]:
            return tokenizer(part, truncation=True, max_length=self.max_length, padding=False)[
                "input_ids"
            ]

        return [row for part in pool.map(run, copies, slices) for row in part]

    def _batches(self, texts: Sequence[str]) -> Iterator[Batch]:
        """Tokenise and bucket one window at a time; each batch's positions index ``texts``."""
        with (
            borrowed(self.embedder.tokenizer, self.threads) as copies,
            ThreadPoolExecutor(self.threads, thread_name_prefix="tokenize") as pool,
        ):
            for start, stop in self._windows(len(texts)):
                yield from self._bucketed(
                    self._tokenize(pool, copies, list(texts[start:stop])), start
                )

    def _bucketed(self, ids: list[list[int]], start: int) -> Iterator[Batch]:
        """One tokenised window as length-bucketed, padded batches."""
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        for local in plan_batches(lengths, self.token_budget):
            input_ids, mask = pad([ids[i] for i in local], self.pad_id)
            if self.device.type == "cuda":
                input_ids, mask = input_ids.pin_memory(), mask.pin_memory()
            yield Batch(local + start, input_ids, mask, int(lengths[local].sum()))

    def _prefetched(self, texts: Sequence[str]) -> Iterator[Batch]:
        """Run ``_batches`` on a thread, a bounded queue ahead of the consumer."""
        ready: queue.Queue = queue.Queue(maxsize=8)
        done = object()

        def produce() -> None:
            try:
                for batch in self._batches(texts):
                    ready.put(batch)
                ready.put(done)
            except BaseException as exc:  # re-raised on the consumer's thread
                ready.put(exc)

        threading.Thread(target=produce, name="tokenize", daemon=True).start()
        while (item := ready.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _run(self, input_ids: torch.Tensor, mask: torch.Tensor, stats: EncodeStats) -> torch.Tensor:
        """Forward one batch; on out-of-memory, halve the budget and retry in halves.

        The retry runs after the exception is gone, not in an ``except`` block: while
        one is handled, its traceback keeps the failed forward's frames alive, and with
        them every activation it had allocated, so the halves would not fit either.
        """
        with contextlib.suppress(torch.OutOfMemoryError):
            with torch.inference_mode():
                out = self.embedder.embed(
                    input_ids.to(self.device, non_blocking=True),
                    mask.to(self.device, non_blocking=True),
                )
            return out.float().cpu()
        gc.collect()  # frames of the failed forward caught in reference cycles
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if len(input_ids) == 1:
            raise EncodeError(
                f"one text of {int(mask.sum())} tokens does not fit in device memory; "
                "lower encode.max_length"
            )
        stats.oom_retries += 1
        self.token_budget = max(1, self.token_budget // 2)
        half = len(input_ids) // 2
        return torch.cat(
            [
                self._run(input_ids[:half], mask[:half], stats),
                self._run(input_ids[half:], mask[half:], stats),
            ]
        )

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, EncodeStats]:
        """Embed ``texts``; row i of the result is the embedding of ``texts[i]``."""
        stats = EncodeStats()
        start = time.perf_counter()
        result: np.ndarray | None = None
        for batch in self._prefetched(texts):
            out = self._run(batch.input_ids, batch.attention_mask, stats).numpy()
            if result is None:
                result = np.empty((len(texts), out.shape[1]), dtype=np.float32)
            result[batch.positions] = out
            stats.texts += len(batch.positions)
            stats.tokens += batch.tokens
            stats.padded_tokens += batch.input_ids.numel()
            stats.batches += 1
        stats.seconds = time.perf_counter() - start
        if result is None:
            result = np.empty((0, 0), dtype=np.float32)
        return result, stats
