"""Registered encoders loaded once per process, ready to embed one entity's texts.

A refresh runs many shard tasks; on a Dask or Ray worker each task lands in
a long-lived process, so loading (and hash-verifying) the artifact once per
process, not once per shard, is what keeps the GPU busy. A lock makes
concurrent tasks on a thread pool share one load.
"""

import threading
from pathlib import Path

import torch

from marc_batch.config import Config
from marc_batch.device import resolve_device
from marc_batch.encode.marc import EntityEmbedder, prepare
from marc_batch.encode.runtime import EncoderRuntime
from marc_batch.entities import Entity
from marc_batch.model.marc import MarcEncoder
from marc_batch.model.registry import Registry
from marc_batch.tracing import traced

_lock = threading.Lock()
_loaded: dict[tuple[str, str, str], MarcEncoder] = {}


def loaded_encoder(config: Config, version: str) -> tuple[MarcEncoder, torch.device]:
    """The encoder ``version`` on the configured device; only the latest one stays cached."""
    device = resolve_device(config.encode.device)
    if config.encode.threads:
        torch.set_num_threads(config.encode.threads)
    key = (str(Path(config.model.registry).resolve()), version, str(device))
    with _lock:
        if key not in _loaded:
            _loaded.clear()
            encoder, _ = Registry(Path(config.model.registry)).load(version)
            _loaded[key] = prepare(encoder, device)
        return _loaded[key], device


@traced("load_encoder")
def entity_runtime(config: Config, version: str, entity: Entity) -> EncoderRuntime:
    """A runtime that embeds ``entity`` texts with ``version``, cut to its trained length."""
    encoder, device = loaded_encoder(config, version)
    embedder = EntityEmbedder(encoder, entity)
    return EncoderRuntime(
        embedder,
        device,
        max_length=min(config.encode.max_length, embedder.max_length),
        token_budget=config.encode.token_budget,
    )
