"""Which batches are timed: whole epochs cut into bucketed and random batches, and a sample of
each that stands for its epoch (its mix of short and long batches, about its padding).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch
from torch import Tensor

from seqtag.batching import BucketBatchSampler, collate, padding_fraction, random_batches
from seqtag.bench.corpus import BenchCorpus

__all__ = ["MIN_BATCHES", "stratified_batches", "timed_sample", "per_sentence_sample", "prepare_batches",
           "mean_padded_length", "Prepared"]

MIN_BATCHES = 8
Prepared = tuple[Tensor, Tensor, Tensor, Tensor]


def stratified_batches(
    batches: Sequence[Sequence[int]], lengths: Sequence[int], k: int, seed: int = 0
) -> list[list[int]]:
    """``k`` of ``batches`` that stand for all of them, in a shuffled order.

    Batches are ranked by padded size ``B * T`` and cut into ``k`` strata of (nearly) equal
    count; from each stratum the batch whose padding fraction is closest to the stratum's own
    (ties: the middle-ranked one) is taken. The sample thus spans short and long batches like the
    epoch does and has about the epoch's padding fraction, which matters since padding is what
    the strategies differ in. ``k >= len(batches)`` returns every batch.
    """
    ranked = sorted((list(b) for b in batches), key=lambda b: (len(b) * max(lengths[i] for i in b), b[0]))
    n = len(ranked)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    picked = ranked if k >= n else [_representative(ranked[j * n // k : (j + 1) * n // k], lengths)
                                    for j in range(k)]
    random.Random(seed).shuffle(picked)
    return picked


def _representative(stratum: list[list[int]], lengths: Sequence[int]) -> list[int]:
    real = [sum(lengths[i] for i in b) for b in stratum]
    padded = [len(b) * max(lengths[i] for i in b) for b in stratum]
    target = 1 - sum(real) / sum(padded)
    mid = (len(stratum) - 1) / 2
    best = min(range(len(stratum)), key=lambda j: (abs(1 - real[j] / padded[j] - target), abs(j - mid)))
    return stratum[best]


def timed_sample(
    lengths: Sequence[int],
    batch_size: int,
    max_sentences: int,
    pool_factor: int = 200,
    seed: int = 0,
    min_batches: int = MIN_BATCHES,
) -> tuple[list[list[int]], list[list[int]], dict[str, float]]:
    """The batches to time at ``batch_size``, and the padding of the whole epoch.

    The whole corpus is bucketed (:class:`~seqtag.batching.BucketBatchSampler` with pools of
    ``pool_factor`` batches) and randomly batched (:func:`~seqtag.batching.random_batches`), as
    one training epoch would be; padding fractions are those of these full epochs. From each
    epoch, ``k = max(min_batches, ceil(max_sentences / batch_size))`` batches are picked by
    :func:`stratified_batches`, so each timed sample has its epoch's mix of short and long
    batches and about its padding.

    Returns:
        ``(bucketed, shuffled, epoch_pad)``: the two samples (lists of batches of corpus
        indices) and ``{"random": r, "bucketed": b}``, the padding fractions of the full epochs.
    """
    if min(batch_size, max_sentences, min_batches) < 1:
        raise ValueError(f"batch_size, max_sentences and min_batches must be >= 1, got "
                         f"{batch_size}, {max_sentences}, {min_batches}")
    lengths = list(lengths)
    bucketed = BucketBatchSampler(lengths, batch_size, pool_factor=pool_factor, seed=seed).batches()
    shuffled = random_batches(len(lengths), batch_size, seed)
    epoch_pad = {
        "random": padding_fraction(shuffled, lengths),
        "bucketed": padding_fraction(bucketed, lengths),
    }
    k = max(min_batches, math.ceil(max_sentences / batch_size))
    return (stratified_batches(bucketed, lengths, k, seed),
            stratified_batches(shuffled, lengths, k, seed), epoch_pad)


def per_sentence_sample(lengths: Sequence[int], limit: int, seed: int = 0) -> list[list[int]]:
    """``limit`` sentences at evenly spaced length ranks (see :func:`stratified_batches`), one per batch."""
    return stratified_batches([[i] for i in range(len(lengths))], lengths, limit, seed)


def mean_padded_length(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> int:
    """Mean over ``batches`` of the padded length ``T`` (the longest sentence), rounded, >= 1."""
    return max(1, round(sum(max(lengths[i] for i in b) for b in batches) / len(batches)))


def prepare_batches(corpus: BenchCorpus, batches: Sequence[Sequence[int]], device: torch.device) -> list[Prepared]:
    """Collate every batch once: ``(words (B, T), lengths (B,) CPU, mask (B, T), tags (B, T))``.

    All int64 except the bool ``mask`` (True = real token), on the CPU; on CUDA pinned, so the
    timed loop's ``non_blocking`` copies overlap compute.
    """
    out: list[Prepared] = []
    for batch in batches:
        b = collate([{"words": corpus.words[i], "tags": corpus.tags[i]} for i in batch])
        if b.tags is None:
            raise ValueError("the benchmark corpus must have tags")
        if device.type == "cuda":
            b = b.pin_memory()
        out.append((b.words, b.lengths, b.mask, b.tags))
    return out
