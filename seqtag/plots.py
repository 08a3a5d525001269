"""Figures the chapters share: padded batches, packed time steps, curves, confusion matrices.

Every function takes an optional ``ax`` and returns the matplotlib ``Axes`` it drew on; each
figure has a title and axis labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from torch import Tensor

__all__ = ["plot_padded_batch", "plot_packed", "plot_curves", "plot_confusion"]


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def plot_padded_batch(
    ids: Tensor,
    lengths: Tensor | Sequence[int],
    tokens: Sequence[Sequence[str]] | None = None,
    title: str = "A padded mini-batch",
    ax: Axes | None = None,
) -> Axes:
    """Heat map of a ``(B, T)`` padded id batch; padded cells are grey and marked ``pad``.

    Args:
        ids: ``(B, T)`` integer ids.
        lengths: ``(B,)`` real lengths.
        tokens: optional ``B`` lists of words to write in the real cells (else the ids).
    """
    ids = torch.as_tensor(ids).cpu()
    lens = torch.as_tensor(lengths).cpu()
    b, t = ids.shape
    mask = (torch.arange(t)[None, :] < lens[:, None]).numpy()
    ax = _axes(ax, (max(4.0, 1.1 * t), 0.6 * b + 1.2))
    shown = np.ma.masked_array(ids.numpy().astype(float), mask=~mask)
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("#d9d9d9")
    ax.imshow(shown, cmap=cmap, aspect="auto", vmin=0, vmax=max(1, int(ids.max())))
    for i in range(b):
        for j in range(t):
            if mask[i, j]:
                label = tokens[i][j] if tokens is not None else str(int(ids[i, j]))
                ax.text(j, i, label, ha="center", va="center", color="white", fontsize=9)
            else:
                ax.text(j, i, "pad", ha="center", va="center", color="#666666", fontsize=8)
    ax.set_xticks(range(t))
    ax.set_yticks(range(b), [f"sent {i} (len {int(lens[i])})" for i in range(b)])
    ax.set_xlabel("time step t")
    ax.set_ylabel("sentence in batch")
    ax.set_title(title)
    return ax


def plot_packed(
    batch_sizes: Tensor,
    sorted_indices: Tensor | None = None,
    title: str = "What a PackedSequence feeds the RNN at each time step",
    ax: Axes | None = None,
) -> Axes:
    """Draw ``PackedSequence.batch_sizes`` as columns of processed sentences per time step.

    Column ``t`` holds ``batch_sizes[t]`` cells: the sentences (in sorted order, longest first)
    that are still running at step ``t``. Each cell is labelled with its row in ``data``.
    """
    sizes = [int(s) for s in torch.as_tensor(batch_sizes)]
    b = sizes[0]
    ax = _axes(ax, (max(4.0, 0.9 * len(sizes)), 0.55 * b + 1.4))
    grid = np.full((b, len(sizes)), np.nan)
    row = 0
    for t, n in enumerate(sizes):
        for k in range(n):
            grid[k, t] = row
            ax.text(t, k, str(row), ha="center", va="center", color="white", fontsize=8)
            row += 1
    cmap = plt.get_cmap("plasma").copy()
    cmap.set_bad("#eeeeee")
    ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto", vmin=0, vmax=max(row, 1))
    order = sorted_indices.tolist() if sorted_indices is not None else list(range(b))
    ax.set_yticks(range(b), [f"sentence {i}" for i in order])
    ax.set_xticks(range(len(sizes)), [f"t={t}\n({n})" for t, n in enumerate(sizes)])
    ax.set_xlabel("time step (batch_sizes[t] sentences run at step t)")
    ax.set_ylabel("sentence, longest first")
    ax.set_title(title)
    return ax


def plot_curves(
    history: dict[str, Sequence[float]],
    keys: Sequence[str] | None = None,
    xlabel: str = "epoch",
    ylabel: str = "value",
    title: str = "Training curves",
    ax: Axes | None = None,
) -> Axes:
    """Line plot of several named series (e.g. ``{"train_loss": [...], "dev_acc": [...]}``)."""
    ax = _axes(ax, (6.0, 3.5))
    for key in keys or list(history):
        values = list(history[key])
        ax.plot(range(1, len(values) + 1), values, marker="o", label=key)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def plot_confusion(
    matrix: Tensor | np.ndarray,
    labels: Sequence[str],
    normalize: bool = True,
    title: str = "Confusion matrix (rows: gold, columns: predicted)",
    ax: Axes | None = None,
) -> Axes:
    """Confusion matrix ``(C, C)``, rows = gold tags, columns = predicted; row-normalised by default."""
    m = np.asarray(torch.as_tensor(matrix).cpu(), dtype=float)
    if normalize:
        m = m / np.clip(m.sum(1, keepdims=True), 1, None)
    ax = _axes(ax, (0.45 * len(labels) + 2.5, 0.45 * len(labels) + 2.0))
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted tag")
    ax.set_ylabel("gold tag")
    ax.set_title(title)
    return ax
