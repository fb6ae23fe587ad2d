"""The frozen forward pass, run once: token states entering the first adapted layer, and
every layer's pooled state.

LoRA adapts only the top layers, so everything below them is a constant of
the training run; caching it (in the spirit of BAHE) makes each training step
cost only the adapted layers. The pooled states of every layer also feed the
PCA baselines and the layer probe without another pass.
"""

from dataclasses import dataclass

import numpy as np
import torch
from rich.progress import Progress

from marc_batch.encode.batching import batches_of
from marc_batch.model.backbone import Backbone


@dataclass
class TextCache:
    """Per text: token ids and the states entering layer ``start``; plus pooled states."""

    start: int
    input_ids: list[torch.Tensor]
    states: list[torch.Tensor]
    pooled: np.ndarray  # (texts, layers + 1, hidden), float32

    def __len__(self) -> int:
        return len(self.input_ids)


@torch.no_grad()
def build_cache(
    backbone: Backbone,
    texts: list[str],
    max_length: int,
    start: int,
    batch_tokens: int,
    progress: Progress | None = None,
    label: str = "texts",
) -> TextCache:
    """Run the frozen backbone over ``texts`` once (length-bucketed batches)."""
    backbone.eval()
    device = next(backbone.parameters()).device
    ids = backbone.tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    input_ids = [torch.tensor(row, dtype=torch.long) for row in ids]
    states: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    pooled = np.zeros((len(texts), backbone.num_layers + 1, backbone.hidden_size), np.float32)
    batches = batches_of([len(row) for row in ids], batch_tokens)
    task = progress.add_task(f"frozen pass: {label}", total=len(texts)) if progress else None
    for batch in batches:
        tokens, mask = pad([input_ids[i] for i in batch], backbone.tokenizer.pad_token_id)
        hidden = backbone(tokens.to(device), mask.to(device))
        pooled[batch] = backbone.pooled(hidden, mask.to(device)).float().cpu().numpy()
        for row, index in enumerate(batch):
            states[index] = hidden[start][row, : len(input_ids[index])].float().cpu().clone()
        if progress is not None and task is not None:
            progress.advance(task, len(batch))
    return TextCache(start=start, input_ids=input_ids, states=states, pooled=pooled)


def pad(rows: list[torch.Tensor], value: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-d or 2-d tensors to one length; returns (batch, mask)."""
    length = max(row.shape[0] for row in rows)
    out = rows[0].new_full((len(rows), length, *rows[0].shape[1:]), value)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for index, row in enumerate(rows):
        out[index, : row.shape[0]] = row
        mask[index, : row.shape[0]] = 1
    return out, mask


def tail_forward(
    backbone: Backbone, cache: TextCache, rows: list[int]
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Hidden states of layers ``cache.start`` .. final for ``rows``, from the cache."""
    device = next(backbone.parameters()).device
    tokens, mask = pad([cache.input_ids[i] for i in rows], backbone.tokenizer.pad_token_id)
    states, _ = pad([cache.states[i] for i in rows], 0.0)
    mask = mask.to(device)
    hidden = backbone(tokens.to(device), mask, start=cache.start, states=states.to(device))
    return hidden, mask


@torch.no_grad()
def all_layer_states(backbone: Backbone, cache: TextCache, batch_tokens: int) -> np.ndarray:
    """Pooled states of every layer for a (possibly adapted) backbone: frozen ones come from
    the cache, adapted ones from a forward over the top layers only."""
    backbone.eval()
    pooled = cache.pooled.copy()
    for batch in batches_of([len(row) for row in cache.input_ids], batch_tokens):
        hidden, mask = tail_forward(backbone, cache, batch)
        pooled[batch, cache.start :] = backbone.pooled(hidden, mask).float().cpu().numpy()
    return pooled
