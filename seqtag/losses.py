"""Losses that never see padding (trick 3 of the article).

The mask convention is the package's: ``mask`` is bool ``(B, T)``, ``True`` on real tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:  # only for annotations: batching sits left of losses
    from seqtag.batching import Batch

__all__ = ["masked_cross_entropy", "masked_nll", "sequence_loss", "scores_loss", "crf_nll", "Reduction"]

Reduction = Literal["token_mean", "sentence_mean", "sum", "none"]


def _check(scores: Tensor, targets: Tensor, mask: Tensor) -> None:
    if scores.dim() != 3:
        raise ValueError(f"scores must be (B, T, C), got shape {tuple(scores.shape)}")
    if targets.shape != scores.shape[:2] or mask.shape != scores.shape[:2]:
        raise ValueError(
            f"targets {tuple(targets.shape)} and mask {tuple(mask.shape)} must both be (B, T) = "
            f"{tuple(scores.shape[:2])}"
        )
    if targets.is_floating_point():
        raise ValueError(f"targets must be integer class ids, got {targets.dtype}; use .long()")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool (True = real token), got {mask.dtype}")


def _reduce(per_token: Tensor, mask: Tensor, reduction: Reduction) -> Tensor:
    """Reduce ``(B, T)`` per-token losses that are already zero on padding."""
    if reduction == "none":
        return per_token
    if reduction == "sum":
        return per_token.sum()
    if reduction == "token_mean":
        # An all-padding batch has no tokens: return a zero that still has a graph, not 0/0 = NaN.
        return per_token.sum() / mask.sum().clamp(min=1)
    if reduction == "sentence_mean":
        per_sentence = per_token.sum(1) / mask.sum(1).clamp(min=1)
        has_tokens = mask.any(1)
        return per_sentence[has_tokens].sum() / has_tokens.sum().clamp(min=1)
    raise ValueError(f"unknown reduction {reduction!r}: use token_mean, sentence_mean, sum or none")


def masked_cross_entropy(
    logits: Tensor, targets: Tensor, mask: Tensor, reduction: Reduction = "token_mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy over real tokens only.

    Args:
        logits: ``(B, T, C)`` unnormalised scores (any float dtype, any device).
        targets: ``(B, T)`` int64 class ids; values at padded positions are ignored (any value).
        mask: ``(B, T)`` bool, ``True`` on real tokens.
        reduction: ``"token_mean"`` (mean over all real tokens of the batch: every word weighs the
            same), ``"sentence_mean"`` (mean over sentences of each sentence's mean: every sentence
            weighs the same), ``"sum"``, or ``"none"`` (``(B, T)`` with zeros on padding).
        label_smoothing: ``s`` in ``[0, 1)``: each token's loss is ``(1 - s)`` times its
            cross-entropy plus ``s`` times the mean of ``-log p`` over the classes ``1..C-1`` (the
            real tags: class 0 is ``<pad>``, which no decoder picks, so it gets no share).

    Returns:
        A scalar (or ``(B, T)`` for ``"none"``). A batch without any real token gives ``0``, not NaN.
        Padded positions may hold any value, NaN and inf included: the loss stays finite, their
        gradients are exactly zero and the real positions' gradients are unchanged.
    """
    _check(logits, targets, mask)
    safe_targets = targets.masked_fill(~mask, 0)
    # Fill the padded rows with a finite value BEFORE log_softmax: masking only the result is not
    # enough, because log_softmax's backward multiplies the (zero) upstream gradient by exp(NaN or
    # inf) at a padded row, and 0 * NaN = NaN. masked_fill's own backward gives the pads exact zeros.
    safe_logits = logits.masked_fill(~mask.unsqueeze(2), 0.0)
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if label_smoothing and logits.size(2) < 2:
        raise ValueError(f"label_smoothing needs real classes 1..C-1 beside <pad> = 0, got C = {logits.size(2)}")
    if not label_smoothing:
        per_token = F.cross_entropy(safe_logits.transpose(1, 2), safe_targets, reduction="none")
    else:
        log_probs = F.log_softmax(safe_logits, dim=2)
        nll = -log_probs.gather(2, safe_targets.unsqueeze(2)).squeeze(2)
        per_token = (1.0 - label_smoothing) * nll - label_smoothing * log_probs[:, :, 1:].mean(2)
    return _reduce(per_token.masked_fill(~mask, 0.0), mask, reduction)


def masked_nll(
    log_probs: Tensor, targets: Tensor, mask: Tensor, reduction: Reduction = "token_mean"
) -> Tensor:
    """Like :func:`masked_cross_entropy` but on log-probabilities ``(B, T, C)`` (after log_softmax)."""
    _check(log_probs, targets, mask)
    safe_targets = targets.masked_fill(~mask, 0)
    picked = log_probs.gather(2, safe_targets.unsqueeze(2)).squeeze(2)
    return _reduce((-picked).masked_fill(~mask, 0.0), mask, reduction)


def sequence_loss(
    model: nn.Module, batch: Batch, reduction: Reduction = "token_mean", label_smoothing: float = 0.0
) -> Tensor:
    """The training loss of a tagger on a labelled batch (what :mod:`seqtag.train` minimises).

    Runs ``model(batch.words, batch.lengths, batch.chars)`` -> ``(B, T, C)`` scores and returns
    :func:`scores_loss` of them. A tagger with a second output layer (``model.aux_output``, joint
    tagging) adds the masked cross-entropy of its scores against ``batch.aux_tags``. To get the loss *and* the decoded tags from one forward pass
    (evaluation), call the model once and use :func:`scores_loss` and ``model.decode``.

    Args:
        model: a :class:`seqtag.models.Tagger` (or any module with the same ``forward``).
        batch: a :class:`seqtag.batching.Batch` with ``tags``, already on the model's device
            (``lengths`` stays on the CPU).
        reduction: see :func:`masked_cross_entropy`.
        label_smoothing: smooth both output layers' targets this much (see
            :func:`masked_cross_entropy`; ``TrainConfig.label_smoothing``).

    Raises:
        ValueError: the batch has no tags (unlabelled text cannot be trained on), or label smoothing
            with a CRF (its loss scores whole sequences, not one tag per word).
    """
    if batch.tags is None:
        raise ValueError("sequence_loss needs a labelled batch: batch.tags is None (build the dataset with tags)")
    if getattr(model, "aux_output", None) is None:
        return scores_loss(model, model(batch.words, batch.lengths, batch.chars), batch, reduction, label_smoothing)
    # joint tagging: both output layers from one encoder pass, the two losses summed
    if batch.aux_tags is None:
        raise ValueError("this tagger learns a second tag set: the batch needs aux_tags (build the dataset with them)")
    scores, aux_scores = model.forward_heads(batch.words, batch.lengths, batch.chars)
    main_loss = scores_loss(model, scores, batch, reduction, label_smoothing)  # first: it refuses what it cannot score
    return main_loss + masked_cross_entropy(aux_scores, batch.aux_tags, batch.mask, reduction, label_smoothing)


def scores_loss(
    model: nn.Module, scores: Tensor, batch: Batch, reduction: Reduction = "token_mean", label_smoothing: float = 0.0
) -> Tensor:
    """The loss of ``scores`` ``(B, T, C)`` (the model's output on ``batch``) against ``batch.tags``.

    A model with a CRF (``model.crf`` not ``None``: :class:`seqtag.models.Tagger` with
    ``config.crf``) gets its negative log-likelihood (:func:`crf_nll`), any other the
    :func:`masked_cross_entropy` (with ``label_smoothing``), both over ``batch.mask`` (bool
    ``(B, T)``, on the scores' device).

    Raises:
        ValueError: the batch has no tags, or label smoothing with a CRF.
    """
    if batch.tags is None:
        raise ValueError("a loss needs a labelled batch: batch.tags is None (build the dataset with tags)")
    crf = getattr(model, "crf", None)
    if crf is not None:
        if label_smoothing:
            raise ValueError("label_smoothing works on per-word cross-entropy: a CRF tagger's loss cannot use it")
        return crf_nll(crf, scores, batch.tags, batch.mask, reduction)
    return masked_cross_entropy(scores, batch.tags, batch.mask, reduction, label_smoothing)


def crf_nll(
    crf: nn.Module, logits: Tensor, targets: Tensor, mask: Tensor, reduction: Reduction = "token_mean"
) -> Tensor:
    """Negative log-likelihood of whole tag sequences under a :class:`seqtag.crf.CRF`.

    Args:
        crf: the CRF layer (``batch_first``).
        logits: ``(B, T, C)`` emission scores; targets ``(B, T)`` int64; mask ``(B, T)`` bool.
        reduction: ``"token_mean"`` (summed NLL / real tokens: on the scale of the per-token
            cross-entropy), ``"sentence_mean"`` (mean over sentences of NLL / length), ``"sum"``,
            or ``"none"``: ``(B,)`` one NLL per *sentence* (a CRF does not split over tokens).
    """
    _check(logits, targets, mask)
    if reduction == "token_mean":
        return -crf(logits, targets, mask, reduction="token_mean")
    if reduction == "sum":
        return -crf(logits, targets, mask, reduction="sum")
    nll = -crf(logits, targets, mask, reduction="none")  # (B,)
    if reduction == "none":
        return nll
    if reduction == "sentence_mean":
        return (nll / mask.sum(1)).mean()
    raise ValueError(f"unknown reduction {reduction!r}: use token_mean, sentence_mean, sum or none")
