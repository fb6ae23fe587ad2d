"""Registered encoders loaded once per process, ready to embed one entity's texts.

A refresh runs many shard tasks; on a Dask or Ray worker each task lands in
a long-lived process, so loading (and hash-verifying) the artifact once per
process, not once per shard, is what keeps the GPU busy. A lock makes
concurrent tasks on a thread pool share one load.

A BAHE model's user path runs partial forwards, which slice the model's layer
list for the call: on a model that item tasks are running at the same time
that would cut their forward short. The user path therefore gets a module
tree of its own over the same weight tensors (no second copy of the weights),
and a lock, so its partial forwards run one at a time.
"""

import copy
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from marc_batch.config import Config
from marc_batch.device import resolve_device
from marc_batch.encode.marc import EntityEmbedder, prepare
from marc_batch.encode.runtime import EncoderRuntime
from marc_batch.entities import Entity
from marc_batch.errors import ConfigError
from marc_batch.model.bahe import BaheUserEncoder
from marc_batch.model.marc import MarcEncoder
from marc_batch.model.registry import Registry
from marc_batch.tracing import traced

_lock = threading.Lock()
_loaded: dict[tuple[str, str, str, bool], MarcEncoder] = {}
_bahe: dict[tuple[str, str, str, bool], "BaheRunner"] = {}


@dataclass
class BaheRunner:
    """The BAHE user path of a loaded model; hold ``lock`` while running it."""

    marc: MarcEncoder
    bahe: BaheUserEncoder
    lock: threading.Lock


def _sharing_weights(encoder: MarcEncoder) -> MarcEncoder:
    """A copy of the module tree whose parameters and buffers are the original's tensors."""
    tensors = [*encoder.parameters(), *encoder.buffers()]
    return copy.deepcopy(encoder, {id(tensor): tensor for tensor in tensors})


def _key(config: Config, version: str) -> tuple[tuple[str, str, str, bool], torch.device]:
    """What a loaded encoder is cached under: a compiled one is not the same as a plain one."""
    device = resolve_device(config.encode.device)
    registry = str(Path(config.model.registry).resolve())
    return (registry, version, str(device), config.encode.compile), device


def loaded_encoder(config: Config, version: str) -> tuple[MarcEncoder, torch.device]:
    """The encoder ``version`` on the configured device; only the latest one stays cached."""
    key, device = _key(config, version)
    if config.encode.threads:
        torch.set_num_threads(config.encode.threads)
    with _lock:
        if key not in _loaded:
            _loaded.clear()
            _bahe.clear()
            encoder, _ = Registry(Path(config.model.registry)).load(version)
            _loaded[key] = prepare(encoder, device, config.encode.compile)
            if encoder.config.user_encoder == "bahe":
                users = _sharing_weights(_loaded[key])
                _bahe[key] = BaheRunner(users, BaheUserEncoder.of(users), threading.Lock())
        return _loaded[key], device


def loaded_bahe(config: Config, version: str) -> BaheRunner:
    """The BAHE user path of ``version`` (a BAHE model), loaded with it once per process."""
    loaded_encoder(config, version)
    key, _ = _key(config, version)
    with _lock:
        if key not in _bahe:
            raise ConfigError(f"model {version} does not encode users with BAHE")
        return _bahe[key]


@traced("load_encoder")
def entity_runtime(config: Config, version: str, entity: Entity) -> EncoderRuntime:
    """A runtime that embeds ``entity`` texts with ``version``, cut to its trained length.

    ``encode.threads`` bounds the tokenising threads as well as torch's: a
    worker given one core must not tokenise on every core of its machine,
    or two such workers run no faster than one.
    """
    encoder, device = loaded_encoder(config, version)
    embedder = EntityEmbedder(encoder, entity)
    threads = {"threads": config.encode.threads} if config.encode.threads else {}
    return EncoderRuntime(
        embedder,
        device,
        max_length=min(config.encode.max_length, embedder.max_length),
        token_budget=config.encode.token_budget,
        **threads,
    )
