"""BAHE user encoding: each distinct behaviour through the lower layers once, users above.

A user text is mostly behaviours ("Toy Story (1995) (5/5)") that many other
users share, so running every user text through every layer repeats the same
work per user. Here the layers below ``split`` (frozen: LoRA adapts only layers
at or above it) encode each distinct behaviour text alone and pool it to one
vector; the layers from ``split`` up read one sequence per user: the profile's
own token states at the split, then one position per behaviour vector, newest
first. Their pooled output is the user's h, which the compression heads read
as they read a text's. A behaviour vector depends only on its text and the
base backbone, so it is keyed by a hash of the text (:func:`behaviour_keys`)
and can be stored and reused by every user and every run.

Positions: a sequence slot sits where it would if every behaviour were one
token (profile tokens 0 .. P-1, behaviour j at P + j). Decoders get that from
the position ids the model builds; encoders add their position embeddings only
at the embedding layer, which a behaviour vector never passes, so the slot's
position embedding is added to it here (:meth:`Backbone.absolute_positions`).
"""

from collections import ChainMap
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from torch.nn.utils.rnn import pad_sequence

from marc_batch.config.model import BaheConfig
from marc_batch.data.templates import text_hash
from marc_batch.encode.batching import batches_of
from marc_batch.errors import ConfigError
from marc_batch.model.backbone import Backbone, pool
from marc_batch.model.marc import MarcEncoder

# Behaviour vectors are keyed by their text alone; the model version is the store's part.
_KEY_VERSION = "behaviour"


@dataclass(frozen=True)
class UserBehaviours:
    """One user as BAHE reads them: the profile text and the behaviour texts, newest first."""

    profile: str
    behaviours: tuple[str, ...]


def behaviour_keys(texts: Sequence[str]) -> list[str]:
    """The key each behaviour's vector is stored under: a hash of its text."""
    column = pa.chunked_array([pa.array(list(texts), pa.string())])
    return text_hash(column, _KEY_VERSION).to_pylist()


def users_from_table(table: pa.Table) -> list[UserBehaviours]:
    """Rows of ``texts.user_behaviour_texts`` (profile, behaviours) as :class:`UserBehaviours`."""
    return [
        UserBehaviours(profile, tuple(behaviours))
        for profile, behaviours in zip(
            table["profile"].to_pylist(), table["behaviours"].to_pylist(), strict=True
        )
    ]


@contextmanager
def _evaluating(backbone: Backbone) -> Iterator[None]:
    """Frozen layers must give the same vector every time: no dropout, no gradients."""
    training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        backbone.train(training)


class BaheUserEncoder:
    """Users as (profile, behaviours) -> the upper layers' hidden states over their sequence.

    It holds no weights of its own: the backbone (and its LoRA) is the one the
    :class:`MarcEncoder` holds, so the artifact and the training recipe are unchanged.
    """

    def __init__(self, backbone: Backbone, config: BaheConfig, max_length: int) -> None:
        layers = backbone.num_layers
        split = config.split_layer + layers if config.split_layer < 0 else config.split_layer
        if not 1 <= split < layers:
            raise ConfigError(
                f"model.bahe.split_layer {config.split_layer}: a {layers}-layer backbone "
                f"needs a layer in 1..{layers - 1} (or {1 - layers}..-1)"
            )
        self.backbone = backbone
        self.split = split
        self.pooling = (
            backbone.pooling if config.behaviour_pooling == "auto" else config.behaviour_pooling
        )
        self.behaviour_max_length = config.behaviour_max_length
        # Positions of one user's sequence: profile tokens plus behaviours, oldest cut first.
        self.max_length = max_length
        # Texts run through the lower layers so far: what a cache saves is visible here.
        self.behaviours_encoded = 0

    @classmethod
    def of(cls, marc: MarcEncoder) -> "BaheUserEncoder":
        """The BAHE user path of ``marc``: its backbone, its settings, its user length."""
        return cls(marc.backbone, marc.config.bahe, marc.max_length["user"])

    def _check_frozen(self) -> None:
        if self.backbone.first_adapted < self.split:
            raise ConfigError(
                f"model.bahe.split_layer: layer {self.split} lies above the first LoRA-adapted "
                f"layer {self.backbone.first_adapted}; behaviour vectors must come from "
                "frozen layers"
            )

    def _lower(
        self, texts: list[str], max_length: int, batch_tokens: int
    ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """(rows, states entering layer ``split``, mask) per length-bucketed batch of texts."""
        self._check_frozen()
        if not texts:
            return
        tokenizer = self.backbone.tokenizer
        ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        device = next(self.backbone.parameters()).device
        with _evaluating(self.backbone):
            for batch in batches_of([len(row) for row in ids], batch_tokens):
                tokens = tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="pt")
                mask = tokens["attention_mask"].to(device)
                hidden = self.backbone(tokens["input_ids"].to(device), mask, stop=self.split)
                yield batch, hidden[-1], mask

    def encode_behaviours(
        self, texts: Iterable[str], batch_tokens: int = 16_384
    ) -> dict[str, torch.Tensor]:
        """One pooled vector per distinct text, keyed by :func:`behaviour_keys`.

        Each text runs alone (padding is masked), so its vector does not depend on
        which texts share its batch.
        """
        distinct = list(dict.fromkeys(texts))
        vectors: list[torch.Tensor] = [torch.empty(0)] * len(distinct)
        for batch, states, mask in self._lower(distinct, self.behaviour_max_length, batch_tokens):
            pooled = pool(states, mask, self.pooling)
            for row, index in enumerate(batch):
                vectors[index] = pooled[row].clone()
        self.behaviours_encoded += len(distinct)
        return dict(zip(behaviour_keys(distinct), vectors, strict=True))

    def _profile_states(self, profiles: list[str], batch_tokens: int) -> dict[str, torch.Tensor]:
        """Per distinct profile text, its token states entering layer ``split``."""
        distinct = list(dict.fromkeys(profiles))
        states: dict[str, torch.Tensor] = {}
        for batch, hidden, mask in self._lower(distinct, self.max_length, batch_tokens):
            for row, index in enumerate(batch):
                states[distinct[index]] = hidden[row, : int(mask[row].sum())].clone()
        return states

    def _plan(self, users: Sequence[UserBehaviours]) -> list[tuple[int, tuple[str, ...]]]:
        """Per user, the profile's token count and the newest behaviours that fit beside it.

        Each distinct profile is tokenised once: profiles repeat across users
        (age, gender, occupation), so this is a handful of texts, not one per user.
        """
        if not users:
            return []
        profiles = list(dict.fromkeys(user.profile for user in users))
        ids = self.backbone.tokenizer(profiles, truncation=True, max_length=self.max_length)
        rows = ids["input_ids"]
        lengths = {profile: len(row) for profile, row in zip(profiles, rows, strict=True)}
        return [
            (lengths[user.profile], user.behaviours[: self.max_length - lengths[user.profile]])
            for user in users
        ]

    def sequence_lengths(self, users: Sequence[UserBehaviours]) -> list[int]:
        """Positions each user's sequence takes in the upper layers (for batching)."""
        return [length + len(kept) for length, kept in self._plan(users)]

    def needed(self, users: Sequence[UserBehaviours], known: Container[str] = ()) -> list[str]:
        """The distinct behaviour texts these users' sequences hold whose key is not ``known``."""
        texts = list(dict.fromkeys(text for _, kept in self._plan(users) for text in kept))
        keys = behaviour_keys(texts)
        return [text for text, key in zip(texts, keys, strict=True) if key not in known]

    def forward(
        self,
        users: Sequence[UserBehaviours],
        vectors: Mapping[str, torch.Tensor],
        batch_tokens: int = 16_384,
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Hidden states of layers ``split`` .. final over each user's sequence, and its mask.

        ``vectors`` must hold every behaviour the sequences keep (see :meth:`needed`).
        Gradients flow into the upper layers only; profile states and behaviour vectors
        are constants of the frozen layers.
        """
        profiles = self._profile_states([user.profile for user in users], batch_tokens)
        plan = self._plan(users)
        # Every kept behaviour's key in one vectorised call, then each user's slice of them.
        keys = behaviour_keys([text for _, kept in plan for text in kept])
        ends = np.cumsum([len(kept) for _, kept in plan])
        rows = [
            self._sequence(profiles[user.profile], kept, keys[end - len(kept) : end], vectors)
            for user, (_, kept), end in zip(users, plan, ends, strict=True)
        ]
        states = pad_sequence(rows, batch_first=True)
        lengths = torch.tensor([len(row) for row in rows], device=states.device)
        mask = (torch.arange(states.shape[1], device=states.device) < lengths[:, None]).long()
        # The embedding layer is skipped: these ids only give the model its shapes.
        ids = torch.full_like(mask, self.backbone.tokenizer.pad_token_id)
        hidden = self.backbone(ids, mask, start=self.split, states=states)
        return hidden, mask

    def _sequence(
        self,
        profile: torch.Tensor,
        kept: tuple[str, ...],
        keys: list[str],
        vectors: Mapping[str, torch.Tensor],
    ) -> torch.Tensor:
        missing = [text for text, key in zip(kept, keys, strict=True) if key not in vectors]
        if missing:
            raise KeyError(f"no vector for {len(missing)} behaviour(s), e.g. {missing[0]!r}")
        if not keys:
            return profile
        slots = torch.stack([vectors[key] for key in keys]).to(profile)
        positions = self.backbone.absolute_positions(len(profile), len(keys))
        if positions is not None:
            slots = slots + positions.to(slots)
        return torch.cat([profile, slots])


@torch.no_grad()
def encode_users(
    marc: MarcEncoder,
    bahe: BaheUserEncoder,
    users: Sequence[UserBehaviours],
    known: Mapping[str, torch.Tensor],
    batch_tokens: int = 16_384,
) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """z for ``users`` (float32, (users, k)) and the behaviour vectors computed for them.

    Behaviours whose key is in ``known`` are not encoded again; each other distinct
    behaviour runs through the lower layers once, however many users hold it. The
    second result holds exactly those new vectors, for a cache to store.
    """
    marc.eval()
    computed = bahe.encode_behaviours(bahe.needed(users, known), batch_tokens)
    vectors = ChainMap(computed, known)
    out = np.zeros((len(users), marc.config.k), dtype=np.float32)
    for batch in batches_of(bahe.sequence_lengths(users), batch_tokens):
        hidden, mask = bahe.forward([users[i] for i in batch], vectors, batch_tokens)
        h = marc.state(hidden, mask, start=bahe.split)
        out[batch] = marc.heads(h, "user").float().cpu().numpy()
    return out, computed
