"""Scores of a tagger on labelled data: accuracy, OOV accuracy, per-tag scores, confusions.

:func:`evaluate` runs a model over a labelled loader and returns an :class:`Evaluation`;
:func:`top_confusions` and :func:`hardest_tags` summarise one for a report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from seqtag.batching import Batch
from seqtag.losses import scores_loss
from seqtag.models import AuxHead, Tagger
from seqtag.vocab import PAD_ID, UNK_ID, Vocab

__all__ = ["Evaluation", "evaluate", "evaluate_joint", "top_confusions", "hardest_tags"]


@dataclass
class Evaluation:
    """Scores of a tagger on labelled data.

    ``oov`` means "the word is ``<unk>`` for the model" (not in the training vocabulary after
    :func:`~seqtag.vocab.normalize_word` and ``min_freq``).

    Attributes:
        tokens, correct: real tokens and correctly tagged ones.
        oov_tokens, oov_correct: the same for out-of-vocabulary words.
        loss: mean per-token loss (:func:`~seqtag.losses.sequence_loss`).
        confusion: ``(C, C)`` int64 counts, rows = gold tag, columns = predicted, ``<pad>`` excluded.
        labels: the ``C`` tag names of the rows and columns.
        predictions: predicted tags per sentence, in the input order.
    """

    tokens: int
    correct: int
    oov_tokens: int
    oov_correct: int
    loss: float
    confusion: Tensor
    labels: list[str]
    predictions: list[list[str]]

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.tokens, 1)

    @property
    def oov_accuracy(self) -> float:
        return self.oov_correct / max(self.oov_tokens, 1)

    @property
    def iv_accuracy(self) -> float:
        return (self.correct - self.oov_correct) / max(self.tokens - self.oov_tokens, 1)

    @property
    def oov_rate(self) -> float:
        return self.oov_tokens / max(self.tokens, 1)

    def per_tag(self) -> dict[str, dict[str, float]]:
        """``{tag: {"precision", "recall", "f1", "support"}}`` from the confusion matrix."""
        m = self.confusion.double()
        tp, gold, pred = m.diag(), m.sum(1), m.sum(0)
        out = {}
        for i, tag in enumerate(self.labels):
            p = float(tp[i] / pred[i]) if pred[i] > 0 else 0.0
            r = float(tp[i] / gold[i]) if gold[i] > 0 else 0.0
            f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
            out[tag] = {"precision": p, "recall": r, "f1": f1, "support": int(gold[i])}
        return out

    def summary(self) -> dict[str, float | int]:
        """The headline numbers as a JSON-able dict."""
        return {
            "accuracy": self.accuracy,
            "tokens": self.tokens,
            "oov_accuracy": self.oov_accuracy,
            "oov_tokens": self.oov_tokens,
            "oov_rate": self.oov_rate,
            "iv_accuracy": self.iv_accuracy,
            "loss": self.loss,
        }


@torch.no_grad()
def evaluate(
    model: Tagger, loader: DataLoader, tags: Vocab, unknown_ids: Sequence[int] = (UNK_ID,), aux: bool = False
) -> Evaluation:
    """Evaluate ``model`` on a labelled loader.

    Args:
        model: a :class:`~seqtag.models.Tagger` (put in eval mode here).
        loader: yields :class:`~seqtag.batching.Batch` es with ``tags`` and ``index`` (CPU tensors;
            they are moved to the model's device, ``non_blocking`` from pinned memory).
        tags: the tag vocabulary the model was trained with (``len(tags) == model.config.num_tags``).
        unknown_ids: word ids counted as out-of-vocabulary (``<unk>`` and its signature classes).
        aux: score the second output layer of a jointly trained tagger (:class:`~seqtag.models.AuxHead`)
            against the batches' ``aux_tags``; ``tags`` is then the second tag set's vocabulary.

    One forward pass per batch gives both the loss and the decoded tags (argmax, or Viterbi on
    the same emissions with a CRF; a joint tagger's two layers as it decodes them, together with
    ``joint_decoding``: :meth:`~seqtag.models.Tagger.decode_heads`). Every count stays on the
    model's device until the end, where one transfer brings them back: no host-device
    synchronisation per batch.
    """
    scorer: Tagger | AuxHead = AuxHead(model) if aux else model
    return _evaluate(model, loader, [(scorer, tags, aux)], unknown_ids)[0]


@torch.no_grad()
def evaluate_joint(
    model: Tagger, loader: DataLoader, tags: Vocab, aux_tags: Vocab, unknown_ids: Sequence[int] = (UNK_ID,)
) -> tuple[Evaluation, Evaluation]:
    """Both tag sets of a jointly trained tagger, from one encoder pass per batch.

    The same two :class:`Evaluation` s as ``evaluate(model, loader, tags, unknown_ids)`` and
    ``evaluate(model, loader, aux_tags, unknown_ids, aux=True)``, with half the encoder work
    (:meth:`~seqtag.models.Tagger.forward_heads`): what training runs on dev after every epoch.
    ``aux_tags`` is the second tag set's vocabulary; the batches need ``aux_tags``.
    """
    if model.aux_output is None:
        raise ValueError("evaluate_joint needs a tagger with a second output layer (train it with aux_tagset)")
    return tuple(_evaluate(model, loader, [(model, tags, False), (AuxHead(model), aux_tags, True)], unknown_ids))  # type: ignore[return-value]


class _Tally:
    """One output layer's counts over an evaluation, kept on the device until :meth:`finish`."""

    def __init__(self, scorer: Tagger | AuxHead, tags: Vocab, aux: bool, device: torch.device) -> None:
        if scorer.config.num_tags != len(tags):
            raise ValueError(
                f"the model has num_tags={scorer.config.num_tags} but the tag vocabulary has {len(tags)} "
                "entries: pass the vocabulary the model was trained with"
            )
        self.scorer, self.tags, self.aux, c = scorer, tags, aux, len(tags)
        self.confusion = torch.zeros(c * c, dtype=torch.int64, device=device)
        self.oov_counts = torch.zeros(2, dtype=torch.int64, device=device)  # OOV tokens, OOV correct
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.rows: list[Tensor] = []  # each batch's (B, T) predictions, flattened, still on the device

    def add(self, scores: Tensor, pred: Tensor, batch: Batch, unknown: Tensor) -> None:
        """Count one batch's ``(B, T, C)`` scores (for the loss) and ``(B, T)`` predicted ids
        against its tags (its ``aux_tags`` for the second layer)."""
        if self.aux:
            batch = replace(batch, tags=batch.aux_tags)
        self.loss_sum += scores_loss(self.scorer, scores, batch, reduction="sum").double()
        mask, gold, c = batch.mask, batch.tags, len(self.tags)
        assert gold is not None
        # pads add 0 at cell 0 (index_add_ has no data-dependent shape, unlike gold[mask])
        cells = (gold * c + pred).masked_fill(~mask, 0).flatten()
        self.confusion.index_add_(0, cells, mask.flatten().long())
        oov = mask & torch.isin(batch.words, unknown)
        self.oov_counts += torch.stack([oov.sum(), (pred.eq(gold) & oov).sum()])
        self.rows.append(pred.flatten())

    def finish(self, shapes: list[tuple[int, int]], order: list[int], sizes: list[int], n: int) -> Evaluation:
        # The one wait for the device in the whole evaluation: everything comes back in one tensor
        # (the loss right after it, already computed by then).
        c = len(self.tags)
        flat = torch.cat([self.confusion, self.oov_counts, *self.rows]).cpu()
        loss_total = float(self.loss_sum.cpu())
        confusion_cpu, oov_cpu = flat[: c * c].view(c, c), flat[c * c : c * c + 2]
        values = flat[c * c + 2 :].tolist()
        predictions: list[list[str]] = [[] for _ in range(n)]
        start, k = 0, 0
        for b, t in shapes:  # plain Python lists from here on
            for r in range(b):
                predictions[order[k]] = self.tags.decode(values[start + r * t : start + r * t + sizes[k]])
                k += 1
            start += b * t
        tokens = int(confusion_cpu.sum())
        real = confusion_cpu[1:, 1:]  # drop <pad>: never gold, never predicted
        return Evaluation(
            tokens=tokens,
            correct=int(confusion_cpu.diag().sum()),
            oov_tokens=int(oov_cpu[0]),
            oov_correct=int(oov_cpu[1]),
            loss=loss_total / max(tokens, 1),
            confusion=real.clone(),
            labels=self.tags.itos[PAD_ID + 1 :],
            predictions=predictions,
        )


def _evaluate(
    model: Tagger, loader: DataLoader, heads: list[tuple[Tagger | AuxHead, Vocab, bool]], unknown_ids: Sequence[int]
) -> list[Evaluation]:
    """:func:`evaluate` for one or both output layers ``(scorer, tags, aux)``: one forward pass per batch."""
    device = next(model.parameters()).device
    tallies = [_Tally(scorer, tags, aux, device) for scorer, tags, aux in heads]
    model.eval()
    non_blocking = device.type == "cuda"
    unknown = torch.tensor(list(unknown_ids), dtype=torch.int64, device=device)
    shapes: list[tuple[int, int]] = []
    index: list[Tensor] = []  # CPU tensors: reading them never waits for the device
    lengths: list[Tensor] = []
    for batch in loader:
        if batch.tags is None or batch.index is None:
            raise ValueError("evaluate needs labelled batches with an index: build the dataset with tags")
        if any(t.aux for t in tallies) and batch.aux_tags is None:
            raise ValueError("evaluate(aux=True) needs batches with aux_tags: build the dataset with them")
        batch = batch.to(device, non_blocking=non_blocking)
        if getattr(model, "aux_output", None) is None:  # one output layer (any model with forward and decode)
            main = model(batch.words, batch.lengths, batch.chars)
            scores, preds = [main], [model.decode(main, batch.mask)]
        else:  # a joint tagger: both layers from one encoder pass, decoded as it decodes them
            main, second = model.forward_heads(batch.words, batch.lengths, batch.chars)
            scores, preds = [main, second], list(model.decode_heads(main, second, batch.mask))
        for tally in tallies:
            tally.add(scores[tally.aux], preds[tally.aux], batch, unknown)
        shapes.append((batch.words.size(0), batch.words.size(1)))
        index.append(batch.index)
        lengths.append(batch.lengths)
    order = torch.cat(index).tolist() if index else []
    sizes = torch.cat(lengths).tolist() if lengths else []
    n = len(loader.dataset)  # type: ignore[arg-type]
    return [tally.finish(shapes, order, sizes, n) for tally in tallies]


def top_confusions(confusion: Tensor, labels: Sequence[str], k: int = 10) -> list[dict[str, Any]]:
    """The ``k`` most frequent errors of a ``(C, C)`` confusion matrix (rows gold, columns predicted).

    Returns ``[{"gold", "predicted", "count"}]``, most frequent first; correct tags (the diagonal)
    and zero counts are left out. ``labels`` names the ``C`` rows.
    """
    if confusion.dim() != 2 or confusion.size(0) != confusion.size(1) or confusion.size(0) != len(labels):
        raise ValueError(
            f"confusion must be (C, C) with C = len(labels) = {len(labels)}, got shape {tuple(confusion.shape)}"
        )
    m = confusion.detach().cpu().clone()
    m.fill_diagonal_(0)
    values, flat = m.flatten().topk(min(k, m.numel()))
    c = m.size(1)
    return [{"gold": labels[i // c], "predicted": labels[i % c], "count": int(v)}
            for v, i in zip(values.tolist(), flat.tolist(), strict=True) if v > 0]


def hardest_tags(per_tag: dict[str, dict[str, float]], min_support: int = 50, k: int = 8) -> list[dict[str, Any]]:
    """The ``k`` tags with the lowest F1 among those with at least ``min_support`` gold tokens.

    ``per_tag`` is :meth:`Evaluation.per_tag`'s ``{tag: {"precision", "recall", "f1", "support"}}``;
    returns ``[{"tag", "precision", "recall", "f1", "support"}]``, lowest F1 first.
    """
    rows = [{"tag": t, **v} for t, v in per_tag.items() if v["support"] >= min_support]
    return sorted(rows, key=lambda r: r["f1"])[:k]
