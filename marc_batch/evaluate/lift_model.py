"""The ranking team's CTR model: DCN-V2 over id and side-feature embeddings, z optional.

The same architecture and hyper-parameters score every method; the only
difference between the id baseline and a method is whether its standardised
``[z_u, z_i]`` joins the input vector as dense features. The cross layers are
those of MARC's matching net (one definition of a DCN-V2 cross).
"""

import torch
from torch import nn

from marc_batch.config import LiftConfig
from marc_batch.entities import Entity
from marc_batch.evaluate.features import MISSING, SparseField
from marc_batch.model.matching import CrossLayer


class FieldEmbedding(nn.Module):
    """One sparse field: the mean of its codes' embeddings (one code for single-valued fields)."""

    def __init__(self, field: SparseField, dim: int) -> None:
        super().__init__()
        self.register_buffer("codes", torch.from_numpy(field.codes), persistent=False)
        self.table = nn.EmbeddingBag(field.vocabulary, dim, mode="mean", padding_idx=MISSING)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.table(self.codes[rows])


class LiftCTR(nn.Module):
    """Stacked DCN-V2: x0 = [field embeddings, z_u, z_i] -> cross layers -> MLP -> logit."""

    def __init__(
        self,
        fields: dict[Entity, list[SparseField]],
        dense: dict[Entity, torch.Tensor] | None,
        config: LiftConfig,
    ) -> None:
        super().__init__()
        self.fields = nn.ModuleDict(
            {
                entity: nn.ModuleList(
                    FieldEmbedding(f, config.embedding_dim) for f in entity_fields
                )
                for entity, entity_fields in fields.items()
            }
        )
        self.dense = dense
        dim = config.embedding_dim * sum(len(f) for f in fields.values())
        dim += sum(z.shape[1] for z in dense.values()) if dense else 0
        self.cross = nn.ModuleList(CrossLayer(dim) for _ in range(config.cross_layers))
        blocks: list[nn.Module] = []
        for width in config.hidden:
            blocks += [nn.Linear(dim, width), nn.ReLU(), nn.Dropout(config.dropout)]
            dim = width
        self.mlp = nn.Sequential(*blocks, nn.Linear(dim, 1))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        rows = {"user": users, "item": items}
        parts = [
            embedding(rows[entity])
            for entity, embeddings in self.fields.items()
            for embedding in embeddings
        ]
        if self.dense is not None:
            parts += [z[rows[entity]] for entity, z in self.dense.items()]
        x0 = torch.cat(parts, dim=-1)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        return self.mlp(x).squeeze(-1)
