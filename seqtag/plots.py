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


def _ink(cmap: object, value: float) -> str:
    """Black or white text, whichever reads better on ``cmap(value)`` (value in [0, 1])."""
    r, g, b, _ = cmap(value)  # type: ignore[operator]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


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
        ids: ``(B, T)`` integer ids (any device).
        lengths: ``(B,)`` real lengths, each in ``[0, T]``.
        tokens: optional ``B`` lists of words to write in the real cells (else the ids).
        title: the figure's title.
        ax: draw here instead of a new figure.

    Raises:
        ValueError: ``ids`` is not 2-D, or ``lengths``/``tokens`` do not match it.
    """
    ids = torch.as_tensor(ids).detach().cpu()
    lens = torch.as_tensor(lengths).detach().cpu()
    if ids.dim() != 2:
        raise ValueError(f"ids must be (B, T), got shape {tuple(ids.shape)}")
    b, t = ids.shape
    if lens.shape != (b,) or bool((lens < 0).any()) or bool((lens > t).any()):
        raise ValueError(f"lengths must be (B,) = ({b},) values in [0, {t}], got {lens.tolist()}")
    if tokens is not None and [len(s) for s in tokens] != lens.tolist():
        raise ValueError(
            f"tokens must hold one word per real position: lengths {lens.tolist()}, "
            f"got {[len(s) for s in tokens]}"
        )
    mask = (torch.arange(t)[None, :] < lens[:, None]).numpy()
    ax = _axes(ax, (max(4.0, 1.1 * t), 0.6 * b + 1.2))
    shown = np.ma.masked_array(ids.numpy().astype(float), mask=~mask)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#d9d9d9")
    vmax = max(1, int(ids.max()))
    ax.imshow(shown, cmap=cmap, aspect="auto", vmin=0, vmax=vmax)
    for i in range(b):
        for j in range(t):
            if mask[i, j]:
                label = tokens[i][j] if tokens is not None else str(int(ids[i, j]))
                color = _ink(cmap, int(ids[i, j]) / vmax)
                ax.text(j, i, label, ha="center", va="center", color=color, fontsize=9)
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
    labels: Sequence[str] | None = None,
) -> Axes:
    """Draw ``PackedSequence.batch_sizes`` as columns of processed sentences per time step.

    Column ``t`` holds ``batch_sizes[t]`` cells: the sentences (in sorted order, longest first)
    that are still running at step ``t``. Each cell is labelled with its row in ``data``, or with
    ``labels[row]`` (e.g. the word that row holds) when given. Empty cells are steps a sentence
    does not have: the RNN never computes them.

    Args:
        batch_sizes: ``(T,)`` int64, non-increasing, as in a ``PackedSequence``.
        sorted_indices: ``(B,)`` the batch row of each sorted sentence (``None`` = already sorted).
        labels: optional text per row of ``PackedSequence.data`` (``sum(batch_sizes)`` entries).

    Raises:
        ValueError: ``batch_sizes`` is empty or increasing, or ``labels`` has the wrong length.
    """
    sizes = [int(s) for s in torch.as_tensor(batch_sizes).cpu()]
    if not sizes or any(a < b for a, b in zip(sizes, sizes[1:], strict=False)) or sizes[-1] < 1:
        raise ValueError(f"batch_sizes must be non-empty, positive and non-increasing, got {sizes}")
    if labels is not None and len(labels) != sum(sizes):
        raise ValueError(f"labels must have sum(batch_sizes) = {sum(sizes)} entries, got {len(labels)}")
    b = sizes[0]
    ax = _axes(ax, (max(4.0, 0.9 * len(sizes)), 0.55 * b + 1.4))
    grid = np.full((b, len(sizes)), np.nan)
    cmap = plt.get_cmap("plasma").with_extremes(bad="#eeeeee")
    total = sum(sizes)
    row = 0
    for t, n in enumerate(sizes):
        for k in range(n):
            grid[k, t] = row
            text = str(row) if labels is None else str(labels[row])
            color = _ink(cmap, row / max(total, 1))
            ax.text(t, k, text, ha="center", va="center", color=color, fontsize=8)
            row += 1
    ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto", vmin=0, vmax=max(total, 1))
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


# --- speed (chapter 6, seqtag.bench) -------------------------------------------------------------

__all__ += ["plot_throughput", "plot_padding"]


def plot_throughput(report: dict, key: str = "train_tokens_per_s", ax: Axes | None = None) -> Axes:
    """Tokens/s against batch size, one line per strategy, from a :func:`seqtag.bench.run_benchmark` report.

    Log axes; ``per_sentence`` is a horizontal dashed line; strategies wrong for a BiLSTM are
    dotted. ``key`` is ``"train_tokens_per_s"`` or ``"infer_tokens_per_s"``.
    """
    from matplotlib.ticker import NullLocator

    ax = _axes(ax, (6.5, 4))
    rows = report["results"]
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        mine = sorted((r for r in rows if r["strategy"] == strategy), key=lambda r: r["batch_size"])
        if strategy == "per_sentence":
            ax.axhline(mine[0][key], color="black", linestyle="--", label="per_sentence (batch 1)")
            continue
        style = ":" if not mine[0]["correct"] else "-"
        ax.plot([r["batch_size"] for r in mine], [r[key] for r in mine], style, marker="o", label=strategy)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    sizes = sorted({r["batch_size"] for r in rows if r["strategy"] != "per_sentence"})
    ax.set_xticks(sizes, [str(b) for b in sizes])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("batch size (sentences)")
    ax.set_ylabel("real tokens per second")
    what = "training (forward + backward + Adam)" if key.startswith("train") else "inference"
    ax.set_title(f"{what} on {report['device']}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax


def plot_padding(pad_by_batch_size: dict, ax: Axes | None = None, pool_factor: int | None = None) -> Axes:
    """Padding fraction of one epoch against batch size, random vs bucketed batches.

    Args:
        pad_by_batch_size: ``{batch_size: {"random": r, "bucketed": b}}`` (keys may be strings,
            as in the benchmark report's ``pad_fraction_by_batch_size``), fractions in [0, 1].
        pool_factor: the bucket sampler's pool (in batches) the bucketed fractions are for,
            named in the title.
    """
    from matplotlib.ticker import NullLocator

    ax = _axes(ax, (6.5, 3.5))
    sizes = sorted(pad_by_batch_size, key=int)
    for scheme in ("random", "bucketed"):
        ax.plot([int(b) for b in sizes], [100 * pad_by_batch_size[b][scheme] for b in sizes],
                marker="o", label=f"{scheme} batches")
    ax.set_xscale("log", base=2)
    ax.set_xticks([int(b) for b in sizes], [str(b) for b in sizes])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylim(0, 100)
    ax.set_xlabel("batch size (sentences)")
    ax.set_ylabel("padded positions (% of B x T)")
    pool = "" if pool_factor is None else f", bucket pool of {pool_factor} batches"
    ax.set_title(f"How much of each batch is padding (one epoch{pool})")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


# --- the ablation (chapter 7, seqtag.experiments.ablation) ---------------------------------------

__all__ += ["plot_ablation"]


def plot_ablation(table: Sequence[dict], score: str = "test", ax: Axes | None = None,
                  title: str = "Accuracy of each extension") -> Axes:
    """Grouped bars: ``{tagset}_{score}`` (UPOS, XPOS) of each variant of an ablation table
    (:func:`seqtag.experiments.ablation_results.aggregate`), the standard deviation over seeds as
    error bars (zero for a single seed). Returns the ``Axes``."""
    ax = _axes(ax, (9, 3.8))
    names = [row["variant"] for row in table]
    tagsets = [t for t in ("upos", "xpos") if f"{t}_{score}" in table[0]]
    x = np.arange(len(names))
    width = 0.8 / max(len(tagsets), 1)
    for i, tagset in enumerate(tagsets):
        means = [100 * row[f"{tagset}_{score}"] for row in table]
        stds = [100 * row[f"{tagset}_{score}_std"] for row in table]
        ax.bar(x + (i - (len(tagsets) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=tagset.upper())
    low = min(100 * row[f"{t}_{score}"] for row in table for t in tagsets)
    ax.set_ylim(max(0.0, low - 5), 100)
    ax.set_xticks(x, names, rotation=20)
    ax.set_xlabel("variant (baseline, one extension, all together)")
    ax.set_ylabel(f"{score} accuracy (%)")
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return ax


# --- the comparisons of chapters 9-11 (seqtag.experiments) ---------------------------------------

__all__ += ["plot_model_bars", "plot_transition_scores", "plot_ddp_speed"]


def plot_model_bars(runs: dict[str, dict], key: str, ylabel: str, title: str, percent: bool = False,
                    errors: str | None = None, ax: Axes | None = None) -> Axes:
    """Grouped bars of ``runs[f"{tagset}_{model}"][key]``: one group per tag set, one bar per model.

    Args:
        runs: ``{"upos_softmax": {...}, "upos_crf": {...}, ...}`` (``seqtag.experiments.crf_vs_softmax``).
        key: the value to draw (``"test_accuracy"``, ``"unseen_bigrams"``...).
        percent: draw ``100 * value``.
        errors: a key holding each bar's error (e.g. a standard error), drawn as error bars.
    """
    ax = _axes(ax, (6.5, 3.5))
    tagsets = sorted({r["tagset"] for r in runs.values()}, key=["upos", "xpos"].index)
    models = list(dict.fromkeys(r["model"] for r in runs.values()))
    scale = 100.0 if percent else 1.0
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(tagsets))
    for i, model in enumerate(models):
        rows = [runs[f"{t}_{model}"] for t in tagsets]
        yerr = [scale * r[errors] for r in rows] if errors else None
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, [scale * r[key] for r in rows], width,
                      yerr=yerr, capsize=3, label=model)
        ax.bar_label(bars, fmt="%.2f" if percent else "%g", padding=2, fontsize=8)
    if percent:
        low = min(scale * r[key] for r in runs.values())
        ax.set_ylim(max(0.0, low - 3), min(100.0, max(scale * r[key] for r in runs.values()) + 1.5))
    ax.set_xticks(x, [t.upper() for t in tagsets])
    ax.set_xlabel("tag set")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_transition_scores(tags: Sequence[str], scores: Sequence[Sequence[float]],
                           title: str = "Learned CRF transition scores", ax: Axes | None = None) -> Axes:
    """Heat map of a CRF's transition scores ``scores[i][j]`` (tag ``j`` right after tag ``i``)."""
    ax = _axes(ax, (6.0, 5.0))
    m = np.asarray(scores, dtype=float)
    if m.shape != (len(tags), len(tags)):
        raise ValueError(f"scores must be {len(tags)} x {len(tags)} for {len(tags)} tags, got {m.shape}")
    bound = float(np.abs(m).max()) or 1.0
    image = ax.imshow(m, cmap="RdBu", vmin=-bound, vmax=bound)
    ax.set_xticks(range(len(tags)), tags, rotation=90)
    ax.set_yticks(range(len(tags)), tags)
    ax.set_xlabel("next tag")
    ax.set_ylabel("previous tag")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax)
    return ax


def plot_ddp_speed(runs: dict[str, dict], title: str = "Training speed", ax: Axes | None = None) -> Axes:
    """Horizontal bars: the median tokens/s of each configuration, a dot per run
    (``runs`` of :func:`seqtag.experiments.ddp_speed.run`, keyed ``"<config>#<round>"``)."""
    ax = _axes(ax, (6.5, 3.0))
    configs = list(dict.fromkeys(r["config"] for r in runs.values()))
    labels = {"1x1": "1 process x 1 thread", "1x2": "1 process x 2 threads", "2x1": "2 processes x 1 thread"}
    for i, name in enumerate(configs):
        rates = sorted(r["tokens_per_second"] for r in runs.values() if r["config"] == name)
        ax.barh(i, float(np.median(rates)), color="C0", alpha=0.6)
        ax.plot(rates, [i] * len(rates), "o", color="black", markersize=4)
    ax.set_yticks(range(len(configs)), [labels.get(c, c) for c in configs])
    ax.set_xlabel("training tokens per second (bar: median; dots: runs)")
    ax.set_ylabel("configuration")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return ax
