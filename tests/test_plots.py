"""Tests for seqtag.plots: every figure has a title and axis labels, and shows what it claims."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

from seqtag.plots import plot_confusion, plot_curves, plot_packed, plot_padded_batch  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


def _labelled(ax: plt.Axes) -> None:
    assert ax.get_title(), "figure has no title"
    assert ax.get_xlabel() and ax.get_ylabel(), "figure lacks an axis label"


def _texts(ax: plt.Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_padded_batch_marks_every_padded_cell() -> None:
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0], [7, 0, 0, 0]])
    lengths = [4, 2, 1]
    ax = plot_padded_batch(ids, lengths, title="t")
    _labelled(ax)
    texts = _texts(ax)
    n_pad = ids.numel() - sum(lengths)
    assert texts.count("pad") == n_pad
    assert [t for t in texts if t != "pad"] == ["1", "2", "3", "4", "5", "6", "7"]


def test_padded_batch_writes_tokens_and_validates() -> None:
    ids = torch.tensor([[1, 2], [3, 0]])
    ax = plot_padded_batch(ids, torch.tensor([2, 1]), tokens=[["a", "b"], ["c"]])
    assert [t for t in _texts(ax) if t != "pad"] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="one word per real position"):
        plot_padded_batch(ids, [2, 1], tokens=[["a"], ["c"]])
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        plot_padded_batch(torch.tensor([1, 2]), [2])
    with pytest.raises(ValueError, match="lengths"):
        plot_padded_batch(ids, [3, 1])


def test_packed_shows_one_cell_per_data_row() -> None:
    x = torch.tensor([[1, 2, 3], [4, 0, 0], [5, 6, 0]])
    packed = pack_padded_sequence(x, [3, 1, 2], batch_first=True, enforce_sorted=False)
    ax = plot_packed(packed.batch_sizes, packed.sorted_indices)
    _labelled(ax)
    texts = _texts(ax)
    assert len(texts) == int(packed.batch_sizes.sum()) == packed.data.numel()
    assert texts == [str(i) for i in range(len(texts))]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == [f"sentence {i}" for i in packed.sorted_indices.tolist()]


def test_packed_labels_and_validation() -> None:
    x = torch.tensor([[1, 2], [3, 0]])
    packed = pack_padded_sequence(x, [2, 1], batch_first=True)
    words = ["a", "c", "b"]
    ax = plot_packed(packed.batch_sizes, labels=words)
    assert _texts(ax) == words
    with pytest.raises(ValueError, match="labels"):
        plot_packed(packed.batch_sizes, labels=["a"])
    with pytest.raises(ValueError, match="non-increasing"):
        plot_packed(torch.tensor([1, 2]))


def test_curves_one_line_per_series() -> None:
    history = {"train_loss": [3.0, 2.0, 1.0], "dev_acc": [0.1, 0.5]}
    ax = plot_curves(history, title="c", ylabel="v")
    _labelled(ax)
    assert [line.get_label() for line in ax.get_lines()] == list(history)
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [3, 2]


def test_confusion_rows_are_normalised() -> None:
    m = np.array([[3, 1], [0, 4]])
    ax = plot_confusion(m, ["A", "B"])
    _labelled(ax)
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(shown.sum(1), [1.0, 1.0])


def test_ablation_bars_one_per_variant_and_tagset() -> None:
    from seqtag.plots import plot_ablation

    table = [{"variant": v, "upos_test": a, "upos_test_std": 0.01, "xpos_test": a - 0.02, "xpos_test_std": 0.0}
             for v, a in [("baseline", 0.90), ("all", 0.95)]]
    ax = plot_ablation(table, title="t")
    _labelled(ax)
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [88.0, 90.0, 93.0, 95.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["baseline", "all"]


# --- the comparisons of chapters 9-11 -------------------------------------------------------------


def test_model_bars_one_bar_per_tagset_and_model_with_errors() -> None:
    from seqtag.plots import plot_model_bars

    runs = {f"{t}_{m}": {"tagset": t, "model": m, "test_accuracy": a, "se": 0.002}
            for (t, m), a in {("upos", "softmax"): 0.93, ("upos", "crf"): 0.94,
                              ("xpos", "softmax"): 0.92, ("xpos", "crf"): 0.91}.items()}
    ax = plot_model_bars(runs, "test_accuracy", "test accuracy (%)", "CRF vs softmax", percent=True, errors="se")
    _labelled(ax)
    heights = sorted(round(p.get_height(), 4) for p in ax.patches)
    assert heights == [91.0, 92.0, 93.0, 94.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["UPOS", "XPOS"]
    assert len(ax.containers) >= 2 and ax.get_legend() is not None


def test_transition_scores_heat_map_checks_its_shape() -> None:
    from seqtag.plots import plot_transition_scores

    ax = plot_transition_scores(["DT", "NN"], [[0.0, 1.0], [-2.0, 0.5]])
    _labelled(ax)
    assert ax.images[0].get_array().shape == (2, 2) and ax.images[0].get_clim() == (-2.0, 2.0)
    with pytest.raises(ValueError, match="2 x 2"):
        plot_transition_scores(["DT", "NN"], [[0.0, 1.0]])


def test_ddp_speed_bar_is_the_median_of_the_runs() -> None:
    from seqtag.plots import plot_ddp_speed

    runs = {"1x1#1": {"config": "1x1", "tokens_per_second": 100.0},
            "1x1#2": {"config": "1x1", "tokens_per_second": 300.0},
            "2x1#1": {"config": "2x1", "tokens_per_second": 150.0}}
    ax = plot_ddp_speed(runs)
    _labelled(ax)
    assert [p.get_width() for p in ax.patches] == [200.0, 150.0]
    assert sorted(x for line in ax.lines for x in line.get_xdata()) == [100.0, 150.0, 300.0]
