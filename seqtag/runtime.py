"""Where code runs and how it is made repeatable: device, seeding, CPU threads, the machine.

:func:`machine` is the one description of "where this ran" that every results file carries
(:func:`seqtag.io.save_results`).
"""

from __future__ import annotations

import os
import platform
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

__all__ = [
    "resolve_device",
    "seed_everything",
    "in_colab",
    "cpu_threads",
    "cpu_name",
    "machine",
    "transfer_options",
]


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


def transfer_options(device: torch.device) -> dict[str, bool]:
    """How batches should travel to ``device``: ``{"pin_memory": ..., "non_blocking": ...}``.

    For CUDA both are ``True``: the DataLoader puts each batch in page-locked (pinned) host memory,
    and ``batch.to(device, non_blocking=True)`` then copies it while the GPU is still busy with the
    previous step, without making Python wait. On the CPU there is nothing to copy (and pinning
    needs a GPU), so both are ``False``.
    """
    cuda = torch.device(device).type == "cuda"
    return {"pin_memory": cuda, "non_blocking": cuda}


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
    return "google.colab" in sys.modules


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, then restore the previous number.

    ``None`` leaves the setting alone. The previous value is restored even when the block raises.
    """
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"cpu_threads needs an int >= 1 or None, got {n!r}")
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_name() -> str:
    """The CPU's model name, with its x86 family and model numbers where ``/proc/cpuinfo`` gives them
    (``"AMD EPYC (family 26, model 2)"``): cloud machines often report a bare brand (``"AMD EPYC"``)
    that two CPU generations of very different speed share, and timings only compare on the same
    chip. Without ``/proc/cpuinfo``: :func:`platform.processor`.
    """
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block is enough
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name")
    if not name:
        return platform.processor() or platform.machine() or "unknown"
    if fields.get("cpu family") and fields.get("model"):
        return f"{name} (family {fields['cpu family']}, model {fields['model']})"
    return name


def machine(device: str | torch.device | None = None) -> dict[str, Any]:
    """Where a measurement was taken, as a JSON-able dict.

    Keys: ``date`` (UTC), ``python``, ``platform``, ``torch``, ``cpu`` (model name), ``cpu_count``,
    ``torch_threads``, ``load_average`` (1, 5, 15 minutes; ``None`` where unknown), ``device``,
    and ``gpu``/``cuda``/``cudnn`` (``None`` without CUDA).

    Args:
        device: the device the run used; ``None`` describes ``cuda:0`` when CUDA is available.
    """
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu") if device is None else resolve_device(device)
    info: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "device": str(dev),
        "gpu": None,
        "cuda": None,
        "cudnn": None,
    }
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info
