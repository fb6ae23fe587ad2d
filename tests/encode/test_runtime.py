import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from marc_batch.encode.batching import plan_batches
from marc_batch.encode.runtime import EncoderRuntime
from marc_batch.encode.stats import EncodeStats
from marc_batch.errors import EncodeError
from tests.encode.conftest import TinyEmbedder, texts

CPU = torch.device("cpu")


def one_by_one(embedder: TinyEmbedder, corpus: list[str]) -> np.ndarray:
    rows = []
    for text in corpus:
        encoded = embedder.tokenizer([text], truncation=True, max_length=64, return_tensors="pt")
        with torch.inference_mode():
            rows.append(embedder.embed(encoded["input_ids"], encoded["attention_mask"])[0].numpy())
    return np.stack(rows)


@pytest.mark.parametrize(
    ("budget", "window", "first"), [(48, 7, 256), (512, 64, 5), (100_000, 4096, 256)]
)
def test_output_does_not_depend_on_batching(
    embedder: TinyEmbedder, budget: int, window: int, first: int
) -> None:
    corpus = texts(60)
    runtime = EncoderRuntime(embedder, CPU, 64, budget, window=window, first_window=first)
    embeddings, stats = runtime.encode(corpus)
    np.testing.assert_allclose(embeddings, one_by_one(embedder, corpus), rtol=1e-4, atol=1e-5)
    assert stats.texts == 60 and stats.batches >= 1
    assert stats.tokens == sum(
        len(embedder.tokenizer(t, truncation=True, max_length=64)["input_ids"]) for t in corpus
    )


def test_windows_start_small_and_double_up_to_the_window(embedder: TinyEmbedder) -> None:
    runtime = EncoderRuntime(embedder, CPU, 64, 512, window=1000, first_window=100)
    ranges = list(runtime._windows(2500))
    assert [stop - start for start, stop in ranges] == [100, 200, 400, 800, 1000]
    assert ranges[0][0] == 0 and ranges[-1][1] == 2500
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


def test_runtimes_sharing_a_tokenizer_on_threads_each_get_their_own_lengths(
    embedder: TinyEmbedder,
) -> None:
    """Two runtimes of one model, different lengths, at once: a shared fast tokenizer would
    fail with "Already borrowed" or truncate one side at the other's length."""
    corpus = texts(300, seed=3)
    runtimes = [EncoderRuntime(embedder, CPU, length, 256, threads=3) for length in (8, 64)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda r: r.encode(corpus * 4)[1], runtimes))
    for runtime, stats in zip(runtimes, results, strict=True):
        expected = embedder.tokenizer(corpus, truncation=True, max_length=runtime.max_length)
        assert stats.tokens == 4 * sum(len(row) for row in expected["input_ids"])


class OutOfMemoryAbove(TinyEmbedder):
    """Raises CUDA's out-of-memory error for batches above a token limit, as a small GPU would."""

    def __init__(self, base: TinyEmbedder, limit: int) -> None:
        torch.nn.Module.__init__(self)
        self.tokenizer, self.model, self.head, self.limit = (
            base.tokenizer,
            base.model,
            base.head,
            limit,
        )

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if input_ids.numel() > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return super().embed(input_ids, attention_mask)


def test_out_of_memory_halves_the_budget_and_retries(embedder: TinyEmbedder) -> None:
    corpus = texts(80, seed=1)
    runtime = EncoderRuntime(
        OutOfMemoryAbove(embedder, limit=200), CPU, 64, token_budget=2048, window=40
    )
    embeddings, stats = runtime.encode(corpus)
    np.testing.assert_allclose(embeddings, one_by_one(embedder, corpus), rtol=1e-4, atol=1e-5)
    assert stats.oom_retries > 0
    assert runtime.token_budget < 2048


def test_a_single_text_that_cannot_fit_is_a_clear_error(embedder: TinyEmbedder) -> None:
    runtime = EncoderRuntime(OutOfMemoryAbove(embedder, limit=3), CPU, 64, token_budget=64)
    with pytest.raises(EncodeError, match="does not fit in device memory"):
        runtime.encode(["the movie star"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=200), st.integers(16, 2048))
def test_batches_cover_every_text_once_within_budget(lengths: list[int], budget: int) -> None:
    array = np.array(lengths)
    batches = plan_batches(array, budget)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * array[batch].max() <= budget


def test_a_small_input_is_not_padded_to_its_longest_text() -> None:
    lengths = np.array([40] * 20 + [28] * 20 + [12] * 160)
    batches = plan_batches(lengths, token_budget=16_384)
    padded = sum(len(batch) * lengths[batch].max() for batch in batches)
    assert len(batches) == 3 and 1 - lengths.sum() / padded < 0.05
    # A few long texts ahead of many short ones: the short ones still get their own batch.
    skewed = np.array([60] * 3 + [14] * 200)
    assert [len(b) for b in plan_batches(skewed, 16_384)] == [16, 187]


def test_length_bucketing_cuts_padding(embedder: TinyEmbedder) -> None:
    corpus = texts(200, seed=2)
    bucketed = EncoderRuntime(embedder, CPU, 64, token_budget=640, window=200).encode(corpus)[1]
    unsorted = EncoderRuntime(embedder, CPU, 64, token_budget=640, window=1)
    # A window of one text cannot sort, so every batch is a single text: no padding but many calls.
    assert unsorted.encode(corpus)[1].batches == 200
    assert bucketed.padding_ratio < 0.2 and bucketed.batches < 30


def test_stats_add_up_and_derive_rates() -> None:
    total = EncodeStats(texts=2, tokens=10, padded_tokens=20, seconds=1.0) + EncodeStats(
        texts=2, tokens=30, padded_tokens=30, seconds=1.0
    )
    assert (total.texts, total.tokens_per_second) == (4, 20.0)
    assert total.padding_ratio == pytest.approx(0.2)
