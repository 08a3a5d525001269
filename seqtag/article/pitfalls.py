"""The pitfalls **around** the article's code: traps the book shows that the code, run on its own
data, never hits.

Each is registered with ``kind="pitfall"``: a ragged batch (why trick 1 exists), lengths of the
wrong shape, device or dtype, an empty sentence, a loss without ``total_length`` outside the
class, a bidirectional LSTM without packing, a batch without a real token, and non-finite scores
at padded positions, which multiplying by the mask, and masking after ``log_softmax``, let through.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqtag.article.code import TAGS, VOCAB, X_IDS, article_batch, article_pad
from seqtag.article.fixes import article_loss_fixed, masked_nll_fixed
from seqtag.article.registry import Bug, register

__all__: list[str] = []  # importing this module registers the pitfalls


def _embedding() -> nn.Embedding:
    return nn.Embedding(len(VOCAB), 3, padding_idx=VOCAB["<PAD>"])


def _embedded(rows: tuple[int, ...] = (0, 1, 2)) -> Tensor:
    return _embedding()(article_batch(rows).long())


# Chapter 1 -----------------------------------------------------------------------------------

register(Bug(
    "ragged_batch", "Sentences of different lengths cannot form one tensor",
    "Pad them to the longest sentence (trick 1)", "01_padding", lambda: torch.tensor(X_IDS),
    kind="pitfall",
))


# Chapter 2 -----------------------------------------------------------------------------------

def _lengths_2d() -> object:
    lengths = torch.tensor([[7], [2], [2]])  # one length per row, as a (B, 1) column
    return pack_padded_sequence(_embedded(), lengths, batch_first=True)


def _lengths_not_on_cpu() -> object:
    device = "cuda" if torch.cuda.is_available() else "meta"
    lengths = torch.tensor([7, 2, 2], device=device)
    return pack_padded_sequence(_embedded(), lengths, batch_first=True)


def _float_lengths() -> str:
    lengths = torch.tensor([7.0, 2.0, 2.0]) * (1 - 1e-6)  # lengths that went through float maths
    packed = pack_padded_sequence(_embedded(), lengths, batch_first=True)
    kept = int(packed.batch_sizes.sum())
    return (
        f"float lengths are cast to int64 by truncation: {sum(len(s) for s in X_IDS)} real words, "
        f"{kept} packed"
    )


def _zero_length() -> object:
    x = _embedding()(torch.from_numpy(article_pad([X_IDS[0], X_IDS[1], [0]], 0)).long())
    return pack_padded_sequence(x, [7, 2, 0], batch_first=True)  # an empty lyric


def _no_total_length_loss() -> object:
    emb, lstm, linear = _embedding(), nn.LSTM(3, 4, batch_first=True), nn.Linear(4, len(TAGS))
    X, Y = article_batch((1, 2)).long(), article_batch((1, 2), labels=True).long()  # padded to 7
    packed = pack_padded_sequence(emb(X), [2, 2], batch_first=True)
    out, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True)  # T = 2, not 7
    Y_hat = F.log_softmax(linear(out), dim=-1)
    return F.nll_loss(Y_hat.reshape(-1, len(TAGS)), Y.reshape(-1), ignore_index=0)


def _bidirectional_padded() -> str:
    emb, lstm = _embedding(), nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    with torch.no_grad():
        x = emb(article_batch().long())
        padded_out, _ = lstm(x)
        differs = []
        for b, n in enumerate(len(s) for s in X_IDS):
            alone, _ = lstm(x[b : b + 1, :n])
            differs.append(not torch.allclose(padded_out[b, :n], alone[0], atol=1e-6))
    return f"running the padded batch unpacked changes each sentence's outputs: {differs}"


register(Bug(
    "lengths_2d", "Lengths as a `(B, 1)` column",
    "A 1-D CPU int64 tensor or a list: `lengths.view(-1)`",
    "02_packing", _lengths_2d, kind="pitfall",
))
register(Bug(
    "lengths_not_on_cpu", "Lengths moved to the GPU with the batch (`meta` stands in on a CPU-only machine)",
    "Keep `lengths` on the CPU (`seqtag.batching.Batch.to` does)",
    "02_packing", _lengths_not_on_cpu, kind="pitfall",
))
register(Bug(
    "float_lengths", "Lengths computed in floating point",
    "Count lengths as integers (`len(s)`, `mask.sum(1)`); `seqtag.batching.check_lengths` refuses floats",
    "02_packing", _float_lengths, kind="pitfall", raises=False,
))
register(Bug(
    "zero_length", "An empty sentence in the batch",
    "Drop empty sentences before batching (`pad_batch` names the one that is empty)",
    "02_packing", _zero_length, kind="pitfall",
))
register(Bug(
    "no_total_length_loss",
    "`pad_packed_sequence` without `total_length`, then a flattened `F.nll_loss` (the class's own "
    "`view` meets the same omission in chapter 4)",
    "`pad_packed_sequence(..., total_length=X.size(1))` (as `seqtag.models.run_packed` does)",
    "02_packing", _no_total_length_loss, kind="pitfall",
))
register(Bug(
    "bidirectional_padded", "A bidirectional LSTM run on the padded batch without packing",
    "Pack: the backward direction must start at each sentence's last real word",
    "02_packing", _bidirectional_padded, kind="pitfall", raises=False,
))


# Chapter 3 -----------------------------------------------------------------------------------

def _scores_with_nan_at_a_pad() -> tuple[Tensor, Tensor, Tensor]:
    """``(3, 7, C)`` logits for the article's batch with a NaN at padded position ``[1, 5]``."""
    tags = article_batch(labels=True).long()
    logits = torch.zeros(*tags.shape, len(TAGS))
    logits[1, 5] = float("nan")  # any NaN or inf at a padded position ...
    return logits, tags, tags != TAGS["<PAD>"]


def _all_padding_nan() -> str:
    Y = torch.zeros(2, 3, dtype=torch.long)  # a batch with no real token
    loss = article_loss_fixed(torch.zeros(2, 3, len(TAGS)).log_softmax(-1), Y)
    return f"a batch without real tokens gives loss = {loss.item()}"


def _mask_times_nan() -> str:
    logits, tags, _ = _scores_with_nan_at_a_pad()
    loss = article_loss_fixed(logits.log_softmax(-1), tags)
    return f"a NaN at a padded position survives `* mask` (NaN * 0 = NaN): loss = {loss.item()}"


def _nan_grad_after_log_softmax() -> str:
    logits, tags, mask = _scores_with_nan_at_a_pad()
    logits.requires_grad_(True)
    loss = F.cross_entropy(logits.view(-1, len(TAGS)), tags.view(-1), ignore_index=TAGS["<PAD>"])
    loss.backward()
    bad = int((~torch.isfinite(logits.grad)).sum())
    safe = logits.detach().clone().requires_grad_(True)
    masked_nll_fixed(safe, tags, mask).backward()
    return (
        f"`ignore_index` gives a finite loss ({torch.isfinite(loss).item()}) but {bad} NaN gradients "
        f"at the padded position; selecting the real positions first: "
        f"{int((~torch.isfinite(safe.grad)).sum())}"
    )


register(Bug(
    "all_padding_nan", "A batch with no real token divides 0 by 0",
    "Clamp the count: `seqtag.article.fixes.masked_nll_fixed` (and `seqtag.losses`) return 0",
    "03_masking", _all_padding_nan, kind="pitfall", raises=False,
))
register(Bug(
    "mask_times_nan", "Masking by multiplication lets NaN/inf from padded positions through",
    "Select the real positions before `log_softmax`: `F.cross_entropy(logits[mask], tags[mask])` "
    "(`seqtag.article.fixes.masked_nll_fixed`), or fill the pads' logits with a finite value first",
    "03_masking", _mask_times_nan, kind="pitfall", raises=False,
))
register(Bug(
    "nan_grad_after_log_softmax",
    "Masking after `log_softmax` (`ignore_index`, `masked_fill` of log-probabilities) still gives "
    "NaN gradients from a NaN at a pad",
    "The same: select (or fill) before `log_softmax`; the backward of `log_softmax` multiplies "
    "the pad's NaN by 0",
    "03_masking", _nan_grad_after_log_softmax, kind="pitfall", raises=False,
))

