"""The repairs: chapter 4's walk-through of ``BieberLSTM``, the fixed class, and a fixed loss.

Chapter 4 runs the article's class as printed and repairs it one bug at a time, in the order the
class hits them on the article's batch (:data:`WALKTHROUGH`). Each repair is a textual patch
stored with its bug in the registry: :func:`source_before` gives the class as it stands just
before a bug is met, :func:`apply_fix` applies one patch and prints the diff, and
:func:`fixed_article_source` applies them all.

Trick 3's loss gets two repairs: :func:`article_loss_fixed` is the article's formula with its
two errors fixed (what the repaired class computes), and :func:`masked_nll_fixed` is the loss the
bug index recommends, safe for **any** value at a padded position, NaN and inf included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqtag.article.code import ARTICLE_BIEBER_LSTM, TAGS, define
from seqtag.article.registry import REGISTRY, get
from seqtag.notebook import diff_lines

__all__ = [
    "WALKTHROUGH",
    "source_before",
    "apply_fix",
    "fixed_article_source",
    "build_before",
    "article_loss_fixed",
    "masked_nll_fixed",
]

#: Chapter 4's order: the bugs ``BieberLSTM`` hits one after another on the article's batch.
#: Each one's patch (or, for ``float_ids_into_embedding`` and ``float_labels_as_index``, the
#: fix to the inputs) is applied before the next one is shown.
WALKTHROUGH: list[str] = [
    "stray_self_lstm",
    "missing_super_init",
    "nb_lstm_layers",
    "hparams",
    "size_unpack_2d",
    "float_ids_into_embedding",
    "lowercase_x",
    "data_index_0dim",
    "float_labels_as_index",
    "nb_tags_minus_one",
    "random_init_hidden",
    "unsorted_lengths",
    "no_total_length_view",
]


def _patch(source: str, bug_id: str) -> str:
    bug = get(bug_id)
    if not bug.patches:
        raise ValueError(f"bug {bug_id!r} is fixed outside the class source (see its fix: {bug.fix})")
    for old, new in bug.patches:
        if old not in source:
            raise ValueError(
                f"bug {bug_id!r}: the text to replace is not in this source (fixed already?): {old.strip()!r}"
            )
        source = source.replace(old, new)
    return source


def source_before(bug_id: str) -> str:
    """:data:`ARTICLE_BIEBER_LSTM` with the patches of every walk-through bug before ``bug_id``.

    Raises:
        ValueError: ``bug_id`` is not in :data:`WALKTHROUGH`.
    """
    get(bug_id)
    src = ARTICLE_BIEBER_LSTM
    for earlier in WALKTHROUGH:
        if earlier == bug_id:
            return src
        if REGISTRY[earlier].patches:
            src = _patch(src, earlier)
    raise ValueError(f"{bug_id!r} is not part of chapter 4's walk-through: {WALKTHROUGH}")


def build_before(bug_id: str, **kwargs: object) -> nn.Module:
    """A ``BieberLSTM(nb_layers=1, **kwargs)`` built from :func:`source_before` ``(bug_id)``."""
    return define(source_before(bug_id))(nb_layers=1, **kwargs)


def apply_fix(source: str, bug_id: str, show: bool = True) -> str:
    """Apply ``bug_id``'s patch to a ``BieberLSTM`` source, print the diff, return the new source.

    The diff is unified, without context lines; each ``@@ -a,b +c,d @@`` header starts a
    separate hunk (line numbers of the old and the new source).
    """
    new = _patch(source, bug_id)
    if show:  # one write, so that a notebook stores it as one output
        print("\n".join([f"fix {bug_id}:", *diff_lines(source, new)]) + "\n", end="", flush=True)
    return new


def fixed_article_source() -> str:
    """:data:`ARTICLE_BIEBER_LSTM` with every walk-through patch applied."""
    src = ARTICLE_BIEBER_LSTM
    for bug_id in WALKTHROUGH:
        if REGISTRY[bug_id].patches:
            src = _patch(src, bug_id)
    return src


def article_loss_fixed(Y_hat: Tensor, Y: Tensor) -> Tensor:
    """The article's masked loss with ``.item()`` and integer labels, as the repaired class has it.

    Args:
        Y_hat: ``(B, T, C)`` (or ``(B * T, C)``) log-probabilities, float.
        Y: ``(B, T)`` int64 tag ids, ``0`` (``<PAD>``) at padded positions.

    Returns:
        The mean negative log-likelihood over the real tokens. It still **multiplies** by the mask,
        so a NaN or inf at a padded position gives NaN, and a batch without a real token gives
        ``0 / 0`` = NaN: use :func:`masked_nll_fixed`.
    """
    Y = Y.view(-1)
    Y_hat = Y_hat.view(-1, Y_hat.shape[-1])
    tag_pad_token = TAGS["<PAD>"]
    mask = (Y > tag_pad_token).float()  # noqa: SIM300 - the article's line
    nb_tokens = int(torch.sum(mask).item())
    Y_hat = Y_hat[range(Y_hat.shape[0]), Y] * mask
    return -torch.sum(Y_hat) / nb_tokens


def masked_nll_fixed(logits: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
    """The loss the bug index recommends: mean cross-entropy over the real tokens only.

    It **selects** the real positions before ``log_softmax``, so whatever a padded position holds
    (garbage, NaN, inf) never enters the computation: the loss is the same, its gradient with
    respect to ``logits`` is exactly zero at every padded position and finite everywhere.
    (Multiplying by the mask lets NaN through, ``NaN * 0 = NaN``; so does masking *after*
    ``log_softmax``, ``ignore_index`` included, whose backward multiplies the pads' NaN by 0.)

    Args:
        logits: ``(B, T, C)`` unnormalised scores, float, any device.
        tags: ``(B, T)`` int64 tag ids, same device; values at padded positions are ignored.
        mask: ``(B, T)`` bool, same device, ``True`` on real tokens.

    Returns:
        A scalar: the mean over real tokens, ``0`` (with a graph) for a batch without any.
    """
    if logits.dim() != 3 or tags.shape != logits.shape[:2] or mask.shape != logits.shape[:2]:
        raise ValueError(
            f"need logits (B, T, C) with tags and mask (B, T); got {tuple(logits.shape)}, "
            f"{tuple(tags.shape)}, {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool (True = real token), got {mask.dtype}")
    total = F.cross_entropy(logits[mask], tags[mask], reduction="sum")
    return total / mask.sum().clamp(min=1)
