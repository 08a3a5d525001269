"""Where code runs and how it is made repeatable: device choice and seeding."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything", "in_colab"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device request into a :class:`torch.device`.

    Args:
        device: ``"auto"`` picks ``cuda`` when a CUDA device is available, else ``cpu``;
            anything else (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``) is taken as asked.

    Raises:
        ValueError: the string is not a device name PyTorch knows.
        RuntimeError: CUDA was asked for but this machine has no CUDA device.
    """
    if isinstance(device, torch.device):
        resolved = device
    elif not isinstance(device, str):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    elif device.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device.strip())
        except RuntimeError as exc:
            raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda[:N]'") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {str(resolved)!r} was asked for but no CUDA device is available here; "
            "use device='auto' or 'cpu'"
        )
    return resolved


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and CUDA) random generators with ``seed``.

    This makes CPU runs repeatable. GPU kernels (cuDNN RNNs among them) may still be
    non-deterministic; see the book's determinism notes.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA too


def in_colab() -> bool:
    """True when running inside Google Colab."""
    import sys

    return "google.colab" in sys.modules
