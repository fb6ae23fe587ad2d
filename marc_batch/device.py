"""Which torch device a setting names: one rule for training and encoding alike."""

import torch

from marc_batch.errors import ConfigError


def resolve_device(name: str, setting: str = "encode.device") -> torch.device:
    """'auto' means CUDA when present; asking for CUDA without one is a user error.

    ``setting`` names the config field in that error, so the user knows what to change.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if torch.device(name).type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{setting} is {name!r} but no CUDA device is available")
    return torch.device(name)
