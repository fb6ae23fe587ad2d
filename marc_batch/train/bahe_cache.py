"""The frozen pass of BAHE users, run once: behaviours below the split, users up to LoRA.

Training a BAHE model adapts the same top layers as a text model, so the
user side can be cached the same way (:class:`TextCache`): each distinct
behaviour runs through the frozen layers below ``split`` once, for every user
and every epoch; each user's sequence (profile tokens, then behaviour
vectors) runs through the frozen layers from ``split`` to the first adapted
one once; the trainer's steps then cost only the adapted layers, exactly as
for text users. The cache's ``input_ids`` are padding ids of the sequence's
length: the layers above the embedding never read ids, only the shape.
"""

from collections.abc import Sequence

import numpy as np
import torch
from rich.progress import Progress

from marc_batch.config.model import BaheConfig
from marc_batch.encode.batching import batches_of
from marc_batch.errors import ConfigError
from marc_batch.model.backbone import Backbone
from marc_batch.model.bahe import BaheUserEncoder, UserBehaviours
from marc_batch.train.cache import TextCache


@torch.no_grad()
def build_bahe_cache(
    backbone: Backbone,
    users: Sequence[UserBehaviours],
    config: BaheConfig,
    max_length: int,
    start: int,
    batch_tokens: int,
    progress: Progress | None = None,
) -> tuple[TextCache, BaheUserEncoder]:
    """The states entering layer ``start`` of every user's BAHE sequence, and the encoder used.

    ``pooled`` holds the layers from the split up; below it no user sequence
    exists, so those layers are NaN (the text path's baselines read a text cache).
    """
    bahe = BaheUserEncoder(backbone, config, max_length)
    if start < bahe.split:
        raise ConfigError(
            f"model.bahe.split_layer: layer {bahe.split} lies above the first LoRA-adapted "
            f"layer {start}; behaviour vectors must come from frozen layers"
        )
    backbone.eval()
    vectors = bahe.encode_behaviours(bahe.needed(users), batch_tokens)
    pad_id = backbone.tokenizer.pad_token_id
    states: list[torch.Tensor] = [torch.empty(0)] * len(users)
    input_ids: list[torch.Tensor] = [torch.empty(0)] * len(users)
    pooled = np.full(
        (len(users), backbone.num_layers + 1, backbone.hidden_size), np.nan, np.float32
    )
    task = progress.add_task("frozen pass: BAHE users", total=len(users)) if progress else None
    for batch in batches_of(bahe.sequence_lengths(users), batch_tokens):
        hidden, mask = bahe.forward([users[i] for i in batch], vectors, batch_tokens)
        pooled[batch, bahe.split :] = backbone.pooled(hidden, mask).float().cpu().numpy()
        entering = hidden[start - bahe.split]
        for row, index in enumerate(batch):
            length = int(mask[row].sum())
            states[index] = entering[row, :length].float().cpu().clone()
            input_ids[index] = torch.full((length,), pad_id, dtype=torch.long)
        if progress is not None and task is not None:
            progress.advance(task, len(batch))
    return TextCache(start=start, input_ids=input_ids, states=states, pooled=pooled), bahe
