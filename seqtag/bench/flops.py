"""How much arithmetic the tagger does per token, and how fast this machine multiplies matrices.

The ratio of the two (useful FLOP/s over GEMM FLOP/s) is the benchmark's roofline fraction.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.benchmark import Timer

__all__ = ["flops_per_token", "measure_gemm_flops", "measure_peak_gemm", "median_seconds"]


def flops_per_token(
    embedding_dim: int,
    hidden_size: int,
    num_tags: int,
    num_layers: int = 1,
    bidirectional: bool = True,
    gates: int = 4,
) -> dict[str, int]:
    """Useful floating-point operations per real token of the tagger (a multiply-add = 2 FLOPs).

    Per layer, per direction, per token, the forward pass computes the gate pre-activations
    ``W_ih x_t + W_hh h_{t-1}``: ``gates * H`` outputs (4 for an LSTM, 3 for a GRU), each a dot
    product over ``in + H`` inputs, so ``2 * gates * H * (in + H)`` FLOPs, with ``in = E`` for
    the first layer and ``D * H`` above it (``D`` = 2 directions or 1). The output layer adds
    ``2 * (D * H) * C``. The element-wise cell math (sigmoids, tanhs, products: ~10 H per step)
    and the embedding lookup (no arithmetic) are left out: they are memory-bound, not GEMMs.

    The backward pass costs about twice the forward (one GEMM for the gradient with respect to
    the inputs, one for the weights, each as large as the forward GEMM), so a training step is
    ``train = 3 * forward``.

    Returns:
        ``{"forward": F, "train": 3 * F}`` in FLOPs per token.
    """
    for name, value in (("embedding_dim", embedding_dim), ("hidden_size", hidden_size),
                        ("num_tags", num_tags), ("num_layers", num_layers), ("gates", gates)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    d = 2 if bidirectional else 1
    forward = 0
    for layer in range(num_layers):
        inputs = embedding_dim if layer == 0 else d * hidden_size
        forward += d * 2 * gates * hidden_size * (inputs + hidden_size)
    forward += 2 * d * hidden_size * num_tags
    return {"forward": forward, "train": 3 * forward}


def median_seconds(fn: Callable[[], object], min_time: float) -> float:
    """Median seconds per call of ``fn``: :meth:`torch.utils.benchmark.Timer.blocked_autorange`.

    The Timer runs ``fn`` in blocks for at least ``min_time`` seconds, at this process's current
    number of torch threads, and synchronises CUDA around each block.
    """
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return float(timer.blocked_autorange(min_run_time=min_time).median)


def measure_gemm_flops(
    embedding_dim: int,
    hidden_size: int,
    num_tags: int,
    batch_size: int,
    seq_len: int,
    bidirectional: bool = True,
    device: str | torch.device = "cpu",
    min_time: float = 0.3,
) -> float:
    """The machine's dense matmul FLOP/s at the tagger's own GEMM shapes (float32).

    Times, with plain :func:`torch.mm` on random data, the GEMMs one forward pass of a
    ``(B, T)`` batch needs: per direction the input projection ``(B*T, E) @ (E, 4H)`` and ``T``
    recurrent products ``(B, H) @ (H, 4H)``, then the output layer ``(B*T, D*H) @ (D*H, C)``.
    This is the ceiling for the real model, whose cell adds element-wise work between GEMMs.
    """
    dev = torch.device(device)
    d = 2 if bidirectional else 1
    b, t, e, h, c = batch_size, seq_len, embedding_dim, hidden_size, num_tags
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(b * t, e, generator=gen).to(dev)
    w_ih = torch.randn(e, 4 * h, generator=gen).to(dev)
    state = torch.randn(b, h, generator=gen).to(dev)
    w_hh = torch.randn(h, 4 * h, generator=gen).to(dev)
    y = torch.randn(b * t, d * h, generator=gen).to(dev)
    w_out = torch.randn(d * h, c, generator=gen).to(dev)
    out_ih = torch.empty(b * t, 4 * h, device=dev)
    out_hh = torch.empty(b, 4 * h, device=dev)
    out_y = torch.empty(b * t, c, device=dev)

    def gemms() -> None:
        for _ in range(d):
            torch.mm(x, w_ih, out=out_ih)
            for _ in range(t):
                torch.mm(state, w_hh, out=out_hh)
        torch.mm(y, w_out, out=out_y)

    flops = d * (2 * b * t * e * 4 * h + t * 2 * b * h * 4 * h) + 2 * b * t * d * h * c
    return flops / median_seconds(gemms, min_time)


def measure_peak_gemm(device: str | torch.device = "cpu", n: int | None = None, min_time: float = 0.3) -> float:
    """FLOP/s of one large square float32 matmul ``(n, n) @ (n, n)`` (1024 on CPU, 8192 on CUDA)."""
    dev = torch.device(device)
    n = n or (8192 if dev.type == "cuda" else 1024)
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    out = torch.empty(n, n, device=dev)
    return 2 * n**3 / median_seconds(lambda: torch.mm(a, b, out=out), min_time)
