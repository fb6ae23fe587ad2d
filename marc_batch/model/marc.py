"""MARC composed: the encoder that is published and the objective that exists only in training.

``MarcEncoder`` (backbone + compression heads) turns texts into z; it is what
the artifact stores and what the batch service runs. ``MarcObjective``
(matching net + information constraint + decoupling) turns z into the loss
``BCE + lambda_info * L_info + lambda_dec * L_dec`` and is dropped after
training, so the backbone is left a representation learner.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from marc_batch.config import ModelConfig
from marc_batch.encode.batching import batches_of
from marc_batch.entities import Entity
from marc_batch.model.backbone import Backbone
from marc_batch.model.heads import HEAD_ORDER, CompressionHeads
from marc_batch.model.information import build_estimator, normalized_hsic
from marc_batch.model.matching import DCNMatching, DotMatching


class MarcEncoder(nn.Module):
    """Texts -> k floats: backbone state of ``config.layer``, pooled, then compressed."""

    def __init__(self, backbone: Backbone, config: ModelConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = config
        self.heads = CompressionHeads(
            backbone.hidden_size,
            config.k,
            kind=config.head,
            hidden=config.head_hidden,
            dropout=config.dropout,
            shared=config.shared_head,
        )
        self.max_length: dict[Entity, int] = {
            "user": config.train.user_max_length,
            "item": config.train.item_max_length,
        }

    @property
    def layer(self) -> int:
        """The absolute index (0 = embeddings, num_layers = final) of the compressed state."""
        return self.config.layer % (self.backbone.num_layers + 1)

    def state(
        self, hidden_states: tuple[torch.Tensor, ...], mask: torch.Tensor, start: int = 0
    ) -> torch.Tensor:
        """The pooled state h of ``self.layer`` from a forward that began at ``start``."""
        if self.layer < start:
            raise ValueError(f"layer {self.layer} lies below the first computed layer {start}")
        return self.backbone.pooled((hidden_states[self.layer - start],), mask)[:, 0]

    @torch.no_grad()
    def encode(self, texts: list[str], entity: Entity, batch_tokens: int = 16_384) -> np.ndarray:
        """Embed texts from scratch (full forward); float32 array of shape (len(texts), k)."""
        self.eval()
        tokenizer = self.backbone.tokenizer
        lengths = [
            min(len(ids), self.max_length[entity])
            for ids in tokenizer(texts, truncation=True, max_length=self.max_length[entity])[
                "input_ids"
            ]
        ]
        device = next(self.parameters()).device
        out = np.zeros((len(texts), self.config.k), dtype=np.float32)
        for batch in batches_of(lengths, batch_tokens):
            tokens = self.backbone.tokenize([texts[i] for i in batch], self.max_length[entity])
            tokens = {name: value.to(device) for name, value in tokens.items()}
            hidden = self.backbone(tokens["input_ids"], tokens["attention_mask"])
            h = self.state(hidden, tokens["attention_mask"])
            out[batch] = self.heads(h, entity).float().cpu().numpy()
        return out


@dataclass
class LossTerms:
    total: torch.Tensor
    bce: torch.Tensor
    info: torch.Tensor
    dec: torch.Tensor


class MarcObjective(nn.Module):
    """The training-only modules: matching net t, information estimator, decoupling."""

    def __init__(self, dim_h: int, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        if config.matching == "dcn":
            self.matching: nn.Module = DCNMatching(
                config.k, config.cross_layers, config.matching_hidden, config.dropout
            )
        else:
            self.matching = DotMatching(config.k)
        self.estimators = nn.ModuleDict(
            {
                entity: build_estimator(config.estimator, dim_h, config.k, config.info_temperature)
                for entity in HEAD_ORDER
            }
        )

    def score(self, z_u: torch.Tensor, z_i: torch.Tensor) -> torch.Tensor:
        return self.matching(z_u, z_i)[0]

    def forward(
        self,
        states: dict[Entity, tuple[torch.Tensor, torch.Tensor]],
        user_rows: torch.Tensor,
        item_rows: torch.Tensor,
        labels: torch.Tensor,
    ) -> LossTerms:
        """``states[entity]`` holds (h, z) of the distinct entities of the batch; ``*_rows``
        index them per pair. The constraint sees each entity once, so InfoNCE never has
        duplicate positives."""
        z_u = states["user"][1][user_rows]
        z_i = states["item"][1][item_rows]
        logits, hidden = self.matching(z_u, z_i)
        bce = F.binary_cross_entropy_with_logits(logits, labels.float())
        zero = bce.new_zeros(())
        info = zero
        if self.config.lambda_info > 0:
            info = sum(
                (
                    self.estimators[entity](h.detach() if self.config.info_detach_h else h, z)
                    for entity, (h, z) in states.items()
                ),
                start=zero,
            ) / len(states)
        dec = zero
        if self.config.lambda_dec > 0 and hidden is not None:
            dec = normalized_hsic(torch.cat([z_u, z_i], dim=-1), hidden)
        total = bce + self.config.lambda_info * info + self.config.lambda_dec * dec
        return LossTerms(total=total, bce=bce, info=info, dec=dec)
