"""A registered MARC encoder as the runtime sees it: one tokenizer, one entity's head.

On CUDA the weights are cast to bfloat16 once, so the forward runs natively in
half precision (not autocast over float32 weights); on CPU they stay float32.
"""

import torch

from marc_batch.entities import Entity
from marc_batch.errors import ConfigError
from marc_batch.model.marc import MarcEncoder


class EntityEmbedder:
    """``embed`` runs the backbone, pools the configured layer and applies ``entity``'s head."""

    def __init__(self, encoder: MarcEncoder, entity: Entity) -> None:
        self.encoder = encoder
        self.entity = entity
        self.tokenizer = encoder.backbone.tokenizer

    @property
    def max_length(self) -> int:
        """The length the encoder was trained with for this entity."""
        return self.encoder.max_length[self.entity]

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder.backbone(input_ids, attention_mask)
        return self.encoder.heads(self.encoder.state(hidden, attention_mask), self.entity)


def prepare(encoder: MarcEncoder, device: torch.device, compile: bool = False) -> MarcEncoder:
    """Move the encoder to ``device`` for inference, in bfloat16 on CUDA.

    ``compile`` (CUDA only) compiles the backbone in place with dynamic shapes, so
    batches of every length share one graph: on an H100 the Qwen2-1.5B shape's forward
    ran 1.4x faster once compiled, after about two minutes of compiling on the first
    batch (benchmarks/GPU.md), which pays on a nightly refresh, not on a small backfill.
    """
    if compile and device.type != "cuda":
        raise ConfigError(f"encode.compile needs a CUDA device; this run encodes on {device}")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    encoder = encoder.to(device=device, dtype=dtype).eval()
    if compile:
        encoder.backbone.model.compile(dynamic=True)
    return encoder
