"""How fast is each trick? Training and inference throughput of the BiLSTM tagger, side by side.

    python -m seqtag bench --quick --json out.json        # about 2 minutes on a 2-core CPU
    python -m seqtag.bench --device cuda --batch-sizes 8 32 128 512

Ways to feed the same corpus to the same tagger (:class:`seqtag.models.Tagger`):

====================  =======================================================  =============
strategy              batches, RNN input                                       BiLSTM right?
====================  =======================================================  =============
``per_sentence``      one sentence per step (batch size 1, nothing padded)     yes
``random_padded``     shuffled batches, the padded tensor                      **no**
``random_packed``     shuffled batches, a ``PackedSequence``                   yes
``bucketed_padded``   :class:`~seqtag.batching.BucketBatchSampler`, padded      **no**
``bucketed_packed``   bucketed batches, packed                                 yes
``bucketed_flipped``  bucketed, padded, :class:`FlippedTagger` (extra)         yes
====================  =======================================================  =============

A padded batch is *wrong* for a bidirectional RNN: the right-to-left direction reads the padding
before the sentence's last word. It is measured anyway: it is what fast-but-wrong code does, and
its speed is the bar packing has to meet. :class:`FlippedTagger` is exact on padded batches (it
runs the right-to-left LSTM on each sentence reversed within its length).

How it measures (every ratio comes from one run):

* The corpus (EWT train by default) is cut into bucketed and into random batches **over the whole
  epoch**, so padding fractions are those of real training. From each epoch a sample of batches
  that spans its short and long batches and has about its padding is timed
  (:func:`stratified_batches`).
* Batches are collated (on CUDA also pinned) once, before timing; the timed loop only copies them
  to the device (``non_blocking``) and runs forward, :func:`~seqtag.losses.masked_cross_entropy`,
  backward and a (fused) Adam step. CUDA is synchronised before each clock read.
* Per batch size, every strategy gets one warm-up pass, then ``repeats`` passes **interleaved**
  with the other strategies' (so a change in machine load hits all alike); the median counts.
* Throughput counts **real tokens** only: padding is work, not output.
* The machine's dense matmul speed is measured at the model's own GEMM shapes for each batch size
  (:func:`measure_gemm_flops`), between that batch size's training passes; the training loop's
  useful FLOP/s (:func:`flops_per_token` times tokens/s) over it is the roofline fraction.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from seqtag.batching import BucketBatchSampler, collate, padding_fraction, random_batches
from seqtag.losses import masked_cross_entropy
from seqtag.models import Tagger, TaggerConfig
from seqtag.vocab import PAD_ID, Vocab, normalize_word

__all__ = [
    "STRATEGIES",
    "EXTRA_STRATEGIES",
    "FlippedTagger",
    "reverse_padded",
    "TARGETS",
    "BenchCorpus",
    "ewt_corpus",
    "synthetic_corpus",
    "flops_per_token",
    "measure_gemm_flops",
    "timed_sample",
    "run_benchmark",
    "prepare_batches",
    "profile_train_step",
    "stratified_batches",
    "measure_peak_gemm",
    "compute_ratios",
    "other_ratios",
    "speed_ratio",
    "train_speed",
    "explain",
    "check_targets",
    "format_report",
    "plot_throughput",
    "plot_padding",
    "add_arguments",
    "main",
]

STRATEGIES: tuple[str, ...] = (
    "per_sentence",
    "random_padded",
    "random_packed",
    "bucketed_padded",
    "bucketed_packed",
)
EXTRA_STRATEGIES: tuple[str, ...] = ("bucketed_flipped",)
PADDED = {"random_padded", "bucketed_padded"}
RATIO_KEYS: dict[str, str] = {
    "bucketed_packed_vs_per_sentence": "per_sentence",
    "bucketed_packed_vs_random_padded": "random_padded",
    "bucketed_packed_vs_random_packed": "random_packed",
}
# Targets for the 2-core CPU the book is built on; (key, comparison, bound, what it is).
TARGETS: tuple[tuple[str, str, float, str], ...] = (
    ("bucketed_packed_vs_per_sentence", ">=", 12.0, "training speed-up over one sentence per step"),
    ("bucketed_packed_vs_random_padded", ">=", 1.2, "training speed-up over random padded batches"),
    ("bucketed_pad_fraction", "<=", 0.05, "share of padded positions with bucketing"),
    ("roofline_fraction", ">=", 0.25, "training FLOP/s over measured GEMM FLOP/s"),
)
QUICK = {"batch_sizes": (8, 32, 128), "max_sentences": 512, "per_sentence_max": 128, "repeats": 2}
FULL = {"batch_sizes": (8, 32, 128), "max_sentences": 1024, "per_sentence_max": 256, "repeats": 5}


# ----------------------------------------------------------------------------- corpora


@dataclass
class BenchCorpus:
    """Sentences already turned into ids: what the benchmark feeds the tagger.

    Attributes:
        words: ``N`` 1-D int64 CPU tensors of word ids, each of length ``L_i >= 1``.
        tags: ``N`` 1-D int64 CPU tensors of tag ids, ``tags[i].shape == words[i].shape``.
        vocab_size: number of word ids (``<pad>`` included).
        num_tags: number of tag ids (``<pad>`` included).
        name: where the sentences come from (printed and stored in the JSON).
    """

    words: list[Tensor]
    tags: list[Tensor]
    vocab_size: int
    num_tags: int
    name: str = "corpus"

    def __post_init__(self) -> None:
        if not self.words:
            raise ValueError("the benchmark corpus has no sentences")
        if len(self.words) != len(self.tags):
            raise ValueError(f"{len(self.words)} word sequences but {len(self.tags)} tag sequences")
        for i, (w, t) in enumerate(zip(self.words, self.tags, strict=True)):
            if w.dim() != 1 or w.numel() == 0 or w.shape != t.shape:
                raise ValueError(
                    f"sentence {i}: words {tuple(w.shape)} and tags {tuple(t.shape)} must be the "
                    "same non-empty 1-D length (drop empty sentences first)"
                )

    @property
    def lengths(self) -> list[int]:
        """Sentence lengths in tokens, ``N`` ints."""
        return [int(w.numel()) for w in self.words]

    def __len__(self) -> int:
        return len(self.words)


def ewt_corpus(
    split: str = "train", min_freq: int = 2, data_dir: str | os.PathLike[str] | None = None
) -> BenchCorpus:
    """UD English EWT ``split`` encoded with a word vocabulary (``min_freq``) and the UPOS tags.

    Uses :func:`seqtag.data.load_ewt` (``SEQTAG_DATA`` or the download cache).
    """
    from seqtag.data import load_ewt  # imported here: tests and synthetic runs need no corpus

    sentences = [s for s in load_ewt(split, data_dir) if len(s.words) > 0]  # type: ignore[arg-type]
    normalized = [[normalize_word(w) for w in s.words] for s in sentences]
    words = Vocab.build(normalized, min_freq=min_freq)
    tags = Vocab.build([s.upos for s in sentences], unk=False)
    return BenchCorpus(
        words=[torch.tensor(words.encode(ws), dtype=torch.int64) for ws in normalized],
        tags=[torch.tensor(tags.encode(s.upos), dtype=torch.int64) for s in sentences],
        vocab_size=len(words),
        num_tags=len(tags),
        name=f"UD English EWT {split} ({len(sentences)} sentences)",
    )


def synthetic_corpus(
    num_sentences: int = 200,
    vocab_size: int = 50,
    num_tags: int = 5,
    max_len: int = 40,
    seed: int = 0,
) -> BenchCorpus:
    """A tiny random corpus with a long-tailed length distribution (for tests and dry runs).

    Lengths follow ``1 + Exponential(mean = max_len / 4)`` capped at ``max_len``, which, like real
    text, has many short sentences and a few long ones.
    """
    if num_sentences < 1 or max_len < 1:
        raise ValueError(f"need num_sentences >= 1 and max_len >= 1, got {num_sentences}, {max_len}")
    if vocab_size < 2 or num_tags < 2:
        raise ValueError("vocab_size and num_tags count <pad>: both must be >= 2")
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    lengths = [min(max_len, 1 + int(rng.expovariate(4.0 / max_len))) for _ in range(num_sentences)]
    return BenchCorpus(
        words=[torch.randint(1, vocab_size, (n,), generator=gen) for n in lengths],
        tags=[torch.randint(1, num_tags, (n,), generator=gen) for n in lengths],
        vocab_size=vocab_size,
        num_tags=num_tags,
        name=f"synthetic ({num_sentences} sentences)",
    )


# ----------------------------------------------------------------------------- FLOPs


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn: Callable[[], object], device: torch.device, min_time: float) -> float:
    """Median wall time of ``fn`` over at least 5 calls and ``min_time`` seconds (after 2 warm-ups)."""
    for _ in range(2):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < min_time:
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


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
    return flops / _median_seconds(gemms, dev, min_time)


def measure_peak_gemm(device: str | torch.device = "cpu", n: int | None = None, min_time: float = 0.3) -> float:
    """FLOP/s of one large square float32 matmul ``(n, n) @ (n, n)`` (1024 on CPU, 8192 on CUDA)."""
    dev = torch.device(device)
    n = n or (8192 if dev.type == "cuda" else 1024)
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    out = torch.empty(n, n, device=dev)
    return 2 * n**3 / _median_seconds(lambda: torch.mm(a, b, out=out), dev, min_time)


# ----------------------------------------------------------------------------- batches


MIN_BATCHES = 8


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

    The whole corpus is bucketed (:class:`~seqtag.batching.BucketBatchSampler`) and randomly
    batched (:func:`~seqtag.batching.random_batches`), as one training epoch would be; padding
    fractions are those of these full epochs. From each epoch,
    ``k = max(min_batches, ceil(max_sentences / batch_size))`` batches are picked by
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


def _per_sentence_sample(lengths: Sequence[int], limit: int, seed: int) -> list[list[int]]:
    """``limit`` sentences at evenly spaced length ranks (see :func:`stratified_batches`), one per batch."""
    return stratified_batches([[i] for i in range(len(lengths))], lengths, limit, seed)


Prepared = tuple[Tensor, Tensor, Tensor, Tensor]


def prepare_batches(corpus: BenchCorpus, batches: Sequence[Sequence[int]], device: torch.device) -> list[Prepared]:
    """Collate every batch once: ``(words (B, T), lengths (B,) CPU, mask (B, T), tags (B, T))``.

    On CUDA the tensors are pinned so the timed loop's ``non_blocking`` copies overlap compute.
    """
    out: list[Prepared] = []
    for batch in batches:
        b = collate([{"words": corpus.words[i], "tags": corpus.tags[i]} for i in batch])
        assert b.tags is not None
        if device.type == "cuda":
            b = b.pin_memory()
        out.append((b.words, b.lengths, b.mask, b.tags))
    return out


# ----------------------------------------------------------------------------- a faster exact BiLSTM


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of a padded batch within its own length; padding stays at the end.

    Args:
        x: ``(B, T, *)`` padded batch (any dtype, any device).
        lengths: ``(B,)`` int64 lengths (any device), each in ``1..T``.

    Returns:
        ``(B, T, *)`` with ``out[b, t] = x[b, lengths[b] - 1 - t]`` for ``t < lengths[b]`` and
        ``out[b, t] = x[b, t]`` on padding. Applying it twice gives ``x`` back.
    """
    b, t = x.shape[:2]
    if lengths.shape != (b,):
        raise ValueError(f"lengths must be (B,) = ({b},), got {tuple(lengths.shape)}")
    steps = torch.arange(t, device=x.device).unsqueeze(0)  # (1, T)
    lens = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    index = torch.where(steps < lens, lens - 1 - steps, steps)  # (B, T)
    index = index.view(b, t, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class FlippedTagger(nn.Module):
    """A one-layer BiLSTM tagger that is exact on a *padded* batch, without packing.

    The left-to-right LSTM runs on the padded batch as it is: padding comes after each
    sentence, so it cannot reach a real position. The right-to-left LSTM runs, left to right, on
    each sentence reversed *within its length* (:func:`reverse_padded`), so its padding also
    comes last; its outputs are reversed back. The outputs at real positions equal those of
    :class:`seqtag.models.Tagger` with ``packed=True`` (same weights, see :meth:`from_tagger`),
    but the RNN runs on a plain padded tensor, the fastest path of PyTorch's CPU LSTM (oneDNN).

    Input ``words`` ``(B, T)`` int64, ``lengths`` ``(B,)`` int64 -> ``(B, T, C)`` logits
    (meaningless at padded positions).
    """

    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        if config.num_layers != 1 or not config.bidirectional or config.char_vocab_size:
            raise ValueError("FlippedTagger is a one-layer bidirectional word-level tagger: "
                             "use num_layers=1, bidirectional=True and no char-CNN")
        self.config = config
        c = config
        rnn_cls = nn.LSTM if c.rnn == "lstm" else nn.GRU
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=PAD_ID)
        self.left_to_right = rnn_cls(c.embedding_dim, c.hidden_size, batch_first=True)
        self.right_to_left = rnn_cls(c.embedding_dim, c.hidden_size, batch_first=True)
        self.dropout = nn.Dropout(c.dropout)
        self.output = nn.Linear(2 * c.hidden_size, c.num_tags)

    @classmethod
    def from_tagger(cls, tagger: Tagger) -> FlippedTagger:
        """A FlippedTagger with ``tagger``'s weights (copied), on ``tagger``'s device."""
        model = cls(tagger.config).to(next(tagger.parameters()).device)
        with torch.no_grad():
            model.embedding.weight.copy_(tagger.embedding.weight)
            model.output.load_state_dict(tagger.output.state_dict())
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(model.left_to_right, f"{name}_l0").copy_(getattr(tagger.rnn, f"{name}_l0"))
                getattr(model.right_to_left, f"{name}_l0").copy_(getattr(tagger.rnn, f"{name}_l0_reverse"))
        return model

    def forward(self, words: Tensor, lengths: Tensor) -> Tensor:
        x = self.dropout(self.embedding(words))  # (B, T, E)
        forward, _ = self.left_to_right(x)  # (B, T, H)
        backward, _ = self.right_to_left(reverse_padded(x, lengths))  # (B, T, H), reversed
        out = torch.cat([forward, reverse_padded(backward, lengths)], dim=-1)  # (B, T, 2H)
        return self.output(self.dropout(out))


# ----------------------------------------------------------------------------- timing


def _adam(model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam with the fused kernel where this PyTorch has one (CPU and CUDA in torch >= 2.4).

    On the CPU the default (for-each) Adam costs ~4x more per step than the fused one for this
    tagger (the embedding table dominates the parameters): a fixed cost per batch that would
    make small batches look worse than they need to.
    """
    try:
        return torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    except (RuntimeError, TypeError, ValueError):  # pragma: no cover - old torch or device
        return torch.optim.Adam(model.parameters(), lr=1e-3)


def _train_pass(model: nn.Module, opt: torch.optim.Optimizer, batches: Sequence[Prepared], device: torch.device) -> None:
    nb = device.type == "cuda"
    for words, lengths, mask, tags in batches:
        words = words.to(device, non_blocking=nb)
        mask = mask.to(device, non_blocking=nb)
        tags = tags.to(device, non_blocking=nb)
        opt.zero_grad(set_to_none=True)
        loss = masked_cross_entropy(model(words, lengths), tags, mask)
        loss.backward()
        opt.step()


def _infer_pass(model: nn.Module, batches: Sequence[Prepared], device: torch.device) -> None:
    nb = device.type == "cuda"
    with torch.inference_mode():
        for words, lengths, _, _ in batches:
            model(words.to(device, non_blocking=nb), lengths).argmax(-1)


def profile_train_step(model: nn.Module, batch: Prepared, device: str | torch.device = "cpu") -> dict[str, int]:
    """How many times each ATen operator runs in one training step (forward, backward, SGD-free).

    Args:
        model: a tagger taking ``(words, lengths)``.
        batch: one item of :func:`prepare_batches`.

    Returns:
        ``{operator name: number of calls}``, e.g. ``"aten::mkldnn_rnn_layer"`` (the fused oneDNN
        LSTM layer) or ``"aten::fill_"`` (zero-fills: the packed CPU LSTM's backward pays one per
        time step and direction).
    """
    from torch.profiler import ProfilerActivity, profile

    dev = torch.device(device)
    words, lengths, mask, tags = (t.to(dev) if i != 1 else t for i, t in enumerate(batch))
    model.train()
    with _stderr_silenced(), profile(activities=[ProfilerActivity.CPU]) as prof:
        masked_cross_entropy(model(words, lengths), tags, mask).backward()
    return {e.key: int(e.count) for e in prof.key_averages()}


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null (the profiler's C++ side logs 'profiler_start' there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _timed(fn: Callable[[], None], device: torch.device) -> float:
    """Seconds one call of ``fn`` takes, CUDA synchronised on both sides."""
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: writing 5 resets the process's peak resident set size (VmHWM)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_memory_mb(device: torch.device) -> float:
    """CUDA: peak bytes allocated by tensors. CPU: the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 1024)


class _Runner:
    """One (strategy, batch size): its model, optimizer and pre-collated batches, and its timings."""

    def __init__(self, strategy: str, batches: list[list[int]], corpus: BenchCorpus,
                 config: TaggerConfig, device: torch.device, seed: int, batch_size: int) -> None:
        self.strategy, self.batches, self.config = strategy, batches, config
        self.device, self.batch_size = device, batch_size
        self.prepared = prepare_batches(corpus, batches, device)
        self.tokens = sum(int(p[1].sum()) for p in self.prepared)
        self.pad_fraction = padding_fraction(batches, corpus.lengths)
        torch.manual_seed(seed)  # every strategy starts from the same weights
        model = FlippedTagger(config) if strategy == "bucketed_flipped" else Tagger(config)
        self.model = model.to(device)
        self.opt = _adam(self.model)
        self.train_times: list[float] = []
        self.infer_times: list[float] = []
        self.peak_mb = 0.0

    def train_pass(self, timed: bool = True) -> None:
        self.model.train()
        _reset_peak_memory(self.device)
        seconds = _timed(lambda: _train_pass(self.model, self.opt, self.prepared, self.device), self.device)
        self.peak_mb = max(self.peak_mb, _peak_memory_mb(self.device))
        if timed:
            self.train_times.append(seconds)

    def infer_pass(self, timed: bool = True) -> None:
        self.model.eval()
        seconds = _timed(lambda: _infer_pass(self.model, self.prepared, self.device), self.device)
        if timed:
            self.infer_times.append(seconds)

    def row(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "batch_size": self.batch_size,
            "bidirectional": self.config.bidirectional,
            "packed": self.config.packed and self.strategy != "bucketed_flipped",
            "correct": self.strategy not in PADDED or not self.config.bidirectional,
            "train_tokens_per_s": self.tokens / statistics.median(self.train_times),
            "infer_tokens_per_s": self.tokens / statistics.median(self.infer_times),
            "pad_fraction": self.pad_fraction,
            "sentences": sum(len(b) for b in self.batches),
            "tokens": self.tokens,
            "batches": len(self.batches),
            "train_seconds": self.train_times,
            "infer_seconds": self.infer_times,
            "peak_memory_mb": self.peak_mb,
        }


def _measure_group(
    runners: Sequence[_Runner], repeats: int, between: Callable[[], None] | None = None
) -> list[dict[str, Any]]:
    """Warm every runner up, then time them *interleaved*: repeat ``r`` of every runner runs
    before repeat ``r + 1`` of any, so a change in machine load hits all strategies alike.
    ``between`` (the GEMM measurement) runs once in each round of training passes."""
    for runner in runners:
        runner.train_pass(timed=False)
        runner.infer_pass(timed=False)
    for _ in range(repeats):
        for runner in runners:
            runner.train_pass()
        if between is not None:
            between()
    for _ in range(repeats):
        for runner in runners:
            runner.infer_pass()
    return [runner.row() for runner in runners]


# ----------------------------------------------------------------------------- the run


def _machine(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu": _cpu_name(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
        info["cudnn_enabled"] = torch.backends.cudnn.enabled
        info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        info["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    return info


def _busy_warning(device: torch.device, threads: int, load: list[float] | None) -> str | None:
    """A warning when CPU threads will fight other processes for cores (timings then swing wildly:
    a waiting OpenMP thread spins while the other is descheduled), else ``None``."""
    cores = os.cpu_count() or 1
    if device.type != "cpu" or threads < 2 or not load or load[0] + threads <= cores + 0.5:
        return None
    return (f"warning: load average {load[0]:.1f} on {cores} cores: {threads} threads will compete with "
            "other processes and time erratically; use --threads 1 on a busy machine")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def train_speed(results: Sequence[dict[str, Any]], strategy: str, batch_size: int) -> float | None:
    """Training tokens/s of ``strategy`` at ``batch_size`` (``per_sentence``: at 1), else ``None``."""
    for r in results:
        if r["strategy"] == strategy and (strategy == "per_sentence" or r["batch_size"] == batch_size):
            return float(r["train_tokens_per_s"])
    return None


def speed_ratio(results: Sequence[dict[str, Any]], fast: str, slow: str, batch_size: int) -> float | None:
    """``train_speed(fast) / train_speed(slow)`` at ``batch_size``; ``None`` if either is missing."""
    a, b = train_speed(results, fast, batch_size), train_speed(results, slow, batch_size)
    return None if a is None or not b else a / b


def compute_ratios(results: Sequence[dict[str, Any]], batch_size: int) -> dict[str, float | None]:
    """Training-throughput ratios of ``bucketed_packed`` at ``batch_size`` over the baselines.

    ``per_sentence`` is compared at its own batch size (1); the others at ``batch_size``.
    A ratio whose two rows are not both in ``results`` is ``None``.
    """
    return {key: speed_ratio(results, "bucketed_packed", slow, batch_size) for key, slow in RATIO_KEYS.items()}


def other_ratios(results: Sequence[dict[str, Any]], batch_size: int) -> dict[str, Any]:
    """Ratios that explain the main ones: what packing costs, what the flipped BiLSTM gains,
    and the best batch size for ``bucketed_packed`` against ``per_sentence``."""
    out: dict[str, Any] = {
        "bucketed_padded_vs_bucketed_packed": speed_ratio(results, "bucketed_padded", "bucketed_packed", batch_size),
        "bucketed_flipped_vs_bucketed_packed": speed_ratio(results, "bucketed_flipped", "bucketed_packed", batch_size),
        "bucketed_flipped_vs_per_sentence": speed_ratio(results, "bucketed_flipped", "per_sentence", batch_size),
        "bucketed_flipped_vs_random_padded": speed_ratio(results, "bucketed_flipped", "random_padded", batch_size),
    }
    sizes = sorted({r["batch_size"] for r in results if r["strategy"] == "bucketed_packed"})
    best = [(speed_ratio(results, "bucketed_packed", "per_sentence", bs), bs) for bs in sizes]
    best = [(v, bs) for v, bs in best if v is not None]
    if best:
        value, bs = max(best)
        out["best_bucketed_packed_vs_per_sentence"] = {"ratio": value, "batch_size": bs}
    return out


def run_benchmark(
    corpus: BenchCorpus | None = None,
    *,
    device: str | torch.device = "auto",
    batch_sizes: Sequence[int] | None = None,
    strategies: Sequence[str] = STRATEGIES + EXTRA_STRATEGIES,
    bidirectional: bool = True,
    embedding_dim: int = 100,
    hidden_size: int = 128,
    max_sentences: int | None = None,
    per_sentence_max: int | None = None,
    repeats: int | None = None,
    threads: int | None = None,
    pool_factor: int = 200,
    min_batches: int = MIN_BATCHES,
    ratio_batch_size: int = 32,
    quick: bool = False,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Measure every strategy at every batch size; return the report (a JSON-able dict).

    Args:
        corpus: the sentences; default :func:`ewt_corpus` (EWT train).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        batch_sizes: batch sizes for the batched strategies (``per_sentence`` is always 1).
        strategies: a subset of :data:`STRATEGIES` and :data:`EXTRA_STRATEGIES` (the extra
            ``bucketed_flipped`` runs :class:`FlippedTagger`; bidirectional runs only).
        max_sentences: sentences in each timed sample; ``per_sentence_max`` caps the
            per-sentence sample (it is the slowest by far; tokens/s does not depend on the count).
        repeats: timed passes per measurement (the median counts), after one warm-up pass.
        threads: ``torch.set_num_threads`` for the run (restored afterwards); ``None`` keeps it.
        pool_factor: the bucket sampler's pool, in batches (larger pools pad less).
        min_batches: timed batches per strategy at least (large batch sizes need several for
            the sample to cover the length range).
        ratio_batch_size: the batch size the ``ratios`` compare at (the nearest one measured).
        quick: defaults for a ~2 minute CPU run (:data:`QUICK`) instead of :data:`FULL`.
        log: called with each progress line; ``None`` for silence.

    Returns:
        ``{"device", "torch", "threads", "machine", "config", "results": [...], "ratios",
        "pad_fraction", "gemm_flops_per_s", "roofline_fraction", "targets", ...}``.
    """
    say = log or (lambda _: None)
    defaults = QUICK if quick else FULL
    batch_sizes = tuple(batch_sizes or defaults["batch_sizes"])  # type: ignore[arg-type]
    max_sentences = max_sentences or int(defaults["max_sentences"])  # type: ignore[call-overload]
    per_sentence_max = per_sentence_max or int(defaults["per_sentence_max"])  # type: ignore[call-overload]
    repeats = repeats or int(defaults["repeats"])  # type: ignore[call-overload]
    known = STRATEGIES + EXTRA_STRATEGIES
    unknown = sorted(set(strategies) - set(known))
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; choose from {', '.join(known)}")
    if not bidirectional:  # the flipped model is a BiLSTM; one direction needs no flipping
        strategies = [s for s in strategies if s != "bucketed_flipped"]
    if not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(f"batch sizes must be >= 1, got {list(batch_sizes)}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    from seqtag.runtime import resolve_device

    dev = resolve_device(device)
    old_threads = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    cudnn_flags = (torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark,
                   torch.backends.cuda.matmul.allow_tf32)
    if dev.type == "cuda":
        # cuDNN runs the LSTM; benchmark mode would re-tune for every new batch length, so it
        # stays off. TF32 matmuls (Ampere and later) are what a speed-minded user would enable.
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = True
    started = time.perf_counter()
    try:
        if corpus is None:
            say("reading UD English EWT train ...")
            corpus = ewt_corpus("train")
        report = _run(corpus, dev, batch_sizes, strategies, bidirectional, embedding_dim, hidden_size,
                      max_sentences, per_sentence_max, repeats, pool_factor, min_batches, ratio_batch_size,
                      seed, say)
    finally:
        torch.set_num_threads(old_threads)
        if dev.type == "cuda":
            (torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark,
             torch.backends.cuda.matmul.allow_tf32) = cudnn_flags
    report["config"].update(quick=quick, threads_requested=threads)
    report["seconds"] = time.perf_counter() - started
    return report


def _run(
    corpus: BenchCorpus,
    dev: torch.device,
    batch_sizes: Sequence[int],
    strategies: Sequence[str],
    bidirectional: bool,
    embedding_dim: int,
    hidden_size: int,
    max_sentences: int,
    per_sentence_max: int,
    repeats: int,
    pool_factor: int,
    min_batches: int,
    ratio_batch_size: int,
    seed: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    machine = _machine(dev)
    threads = torch.get_num_threads()
    say(f"torch {torch.__version__} on {dev} ({machine.get('gpu', machine['cpu'])}), "
        f"{threads} intra-op thread(s), {torch.get_num_interop_threads()} inter-op, "
        f"load average {machine['load_average']}")
    busy = _busy_warning(dev, threads, machine["load_average"])
    if busy:
        say(busy)
    lengths = corpus.lengths
    ratio_bs = min(batch_sizes, key=lambda b: (abs(b - ratio_batch_size), b))
    base = TaggerConfig(corpus.vocab_size, corpus.num_tags, embedding_dim, hidden_size,
                        bidirectional=bidirectional)
    say(f"{corpus.name}: {sum(lengths)} tokens, mean length {sum(lengths) / len(lengths):.1f}, "
        f"max {max(lengths)}; tagger E={embedding_dim} H={hidden_size} "
        f"{'bi' if bidirectional else 'uni'}directional LSTM, {corpus.vocab_size} words, "
        f"{corpus.num_tags} tags, Adam")
    results: list[dict[str, Any]] = []
    epoch_pad: dict[int, dict[str, float]] = {}
    samples: dict[int, tuple[list[list[int]], list[list[int]]]] = {}
    for bs in batch_sizes:
        bucketed, shuffled, epoch_pad[bs] = timed_sample(lengths, bs, max_sentences, pool_factor, seed,
                                                            min_batches)
        samples[bs] = (bucketed, shuffled)

    per_sentence = _per_sentence_sample(lengths, per_sentence_max, seed) if "per_sentence" in strategies else []
    # GEMM ceilings: one per batch size, at its sample's mean padded length, measured between the
    # training passes of that batch size (so under the same machine load as the model).
    seq_len = {bs: _mean_padded_length(samples[bs][0], lengths) for bs in batch_sizes}
    if per_sentence:
        seq_len[1] = _mean_padded_length(per_sentence, lengths)
    gemm_samples: dict[int, list[float]] = {b: [] for b in seq_len}

    def gemm_between(sizes: Sequence[int]) -> Callable[[], None]:
        def measure() -> None:
            for b in sizes:
                gemm_samples[b].append(measure_gemm_flops(embedding_dim, hidden_size, corpus.num_tags, b,
                                                          seq_len[b], bidirectional, dev, min_time=0.05))
        return measure

    def record(row: dict[str, Any]) -> None:
        row["epoch_pad_fraction"] = (0.0 if row["strategy"] == "per_sentence" else
                                     epoch_pad[row["batch_size"]][row["strategy"].split("_")[0]])
        results.append(row)
        flag = "" if row["correct"] else "  <- WRONG for a BiLSTM (reads padding)"
        say(f"  {row['strategy']:<16} batch {row['batch_size']:>4}: train "
            f"{row['train_tokens_per_s']:>9,.0f} tok/s, infer {row['infer_tokens_per_s']:>9,.0f} tok/s, "
            f"pad {row['pad_fraction']:6.1%}, peak mem {row['peak_memory_mb']:7.1f} MB{flag}")

    for bs in batch_sizes:
        runners = []
        if per_sentence and bs == ratio_bs:  # timed alongside its ratio partners
            runners.append(_Runner("per_sentence", per_sentence, corpus, _with(base, packed=False), dev, seed, 1))
        for strategy in strategies:
            if strategy != "per_sentence":
                batches = samples[bs][0] if strategy.startswith("bucketed") else samples[bs][1]
                config = _with(base, packed=strategy not in PADDED)
                runners.append(_Runner(strategy, batches, corpus, config, dev, seed, bs))
        say(f"batch size {bs}: timing {', '.join(r.strategy for r in runners)} "
            f"({repeats} interleaved passes each, after a warm-up pass)")
        for row in _measure_group(runners, repeats, gemm_between(sorted({r.batch_size for r in runners}))):
            record(row)
        del runners

    flops = flops_per_token(embedding_dim, hidden_size, corpus.num_tags, bidirectional=bidirectional)
    gemm = {b: statistics.median(v) for b, v in gemm_samples.items() if v}
    for row in results:
        row["train_flops_per_s"] = row["train_tokens_per_s"] * flops["train"]
        row["gemm_flops_per_s"] = gemm[row["batch_size"]]
        row["roofline_fraction"] = row["train_flops_per_s"] / gemm[row["batch_size"]]
    peak = measure_peak_gemm(dev)
    main_row = next((r for r in results if r["strategy"] == "bucketed_packed" and r["batch_size"] == ratio_bs), None)
    report: dict[str, Any] = {
        "device": str(dev),
        "torch": torch.__version__,
        "threads": threads,
        "interop_threads": torch.get_num_interop_threads(),
        "machine": machine,
        "corpus": corpus.name,
        "config": {
            "embedding_dim": embedding_dim, "hidden_size": hidden_size, "bidirectional": bidirectional,
            "vocab_size": corpus.vocab_size, "num_tags": corpus.num_tags, "batch_sizes": list(batch_sizes),
            "max_sentences": max_sentences, "per_sentence_max": per_sentence_max, "repeats": repeats,
            "pool_factor": pool_factor, "min_batches": min_batches, "optimizer": "Adam(lr=1e-3, fused)", "seed": seed,
        },
        "results": results,
        "ratio_batch_size": ratio_bs,
        "ratios": compute_ratios(results, ratio_bs),
        "other_ratios": other_ratios(results, ratio_bs),
        "pad_fraction": dict(epoch_pad[ratio_bs]),
        "pad_fraction_by_batch_size": {str(bs): v for bs, v in epoch_pad.items()},
        "flops_per_token": flops,
        "gemm_shape": {"batch_size": ratio_bs, "seq_len": seq_len[ratio_bs]},
        "gemm_flops_per_s": gemm[ratio_bs],
        "gemm_by_batch_size": {str(b): {"seq_len": seq_len[b], "flops_per_s": v} for b, v in gemm.items()},
        "gemm_peak_flops_per_s": peak,
        "roofline_fraction": None if main_row is None else main_row["roofline_fraction"],
        "memory": "CUDA: torch.cuda.max_memory_allocated" if dev.type == "cuda"
        else "CPU: peak resident set size of the whole process (VmHWM), all strategies of a batch size alive",
    }
    report["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    report["targets"] = check_targets(report)
    return report


def _mean_padded_length(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> int:
    """Mean over ``batches`` of the padded length ``T`` (the longest sentence), rounded, >= 1."""
    return max(1, round(sum(max(lengths[i] for i in b) for b in batches) / len(batches)))


def _with(config: TaggerConfig, **changes: Any) -> TaggerConfig:
    return TaggerConfig.from_dict({**config.to_dict(), **changes})


# ----------------------------------------------------------------------------- reporting


def check_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The :data:`TARGETS` against ``report``: ``[{"name", "value", "bound", "op", "met"}, ...]``.

    ``met`` is ``None`` when the value was not measured (a strategy left out).
    """
    values = dict(report["ratios"])
    values["bucketed_pad_fraction"] = report["pad_fraction"]["bucketed"]
    values["roofline_fraction"] = report["roofline_fraction"]
    rows = []
    for name, op, bound, what in TARGETS:
        value = values.get(name)
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        rows.append({"name": name, "what": what, "op": op, "bound": bound, "value": value, "met": met})
    return rows


def explain(report: dict[str, Any]) -> list[str]:
    """One line per target not met, with the measurements of this run that explain it."""
    results, bs = report["results"], report["ratio_batch_size"]
    other = report.get("other_ratios", {})
    lines = []

    def fmt(value: float | None, unit: str = "x") -> str:
        return "n/a" if value is None else f"{value:.2f}{unit}"

    for t in report["targets"]:
        if t["met"] is not False:
            continue
        if t["name"] == "bucketed_packed_vs_per_sentence":
            best = other.get("best_bucketed_packed_vs_per_sentence", {})
            lines.append(
                f"- {t['name']}: one sentence per step pays the per-step costs (Adam over every "
                f"parameter, the dense embedding gradient, kernel launches) for ~"
                f"{_mean_length(results):.0f} tokens; packing costs bucketed batches "
                f"{fmt(other.get('bucketed_padded_vs_bucketed_packed'))} here (padded / packed), the "
                f"exact flipped BiLSTM reaches {fmt(other.get('bucketed_flipped_vs_per_sentence'))} and "
                f"bucketed_packed at batch {best.get('batch_size', 'n/a')} reaches {fmt(best.get('ratio'))}."
            )
        elif t["name"] == "bucketed_packed_vs_random_padded":
            pad = report["pad_fraction"]
            lines.append(
                f"- {t['name']}: random batches pad {pad['random']:.0%} of positions, bucketed "
                f"{pad['bucketed']:.0%}, but packing costs {fmt(other.get('bucketed_padded_vs_bucketed_packed'))}"
                f" (bucketed padded / packed); the flipped BiLSTM gets "
                f"{fmt(other.get('bucketed_flipped_vs_random_padded'))}."
            )
        elif t["name"] == "bucketed_pad_fraction":
            lines.append(f"- {t['name']}: raise --pool-factor (now {report['config']['pool_factor']}): "
                         "larger pools sort more sentences together.")
        elif t["name"] == "roofline_fraction":
            lines.append(
                f"- {t['name']}: the GEMMs alone reach {report['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s at "
                f"the model's shapes (B={bs}); the rest of a step (element-wise cell math, packing, "
                "the optimizer, Python) is not matmul work."
            )
    return lines


def _mean_length(results: Sequence[dict[str, Any]]) -> float:
    row = next((r for r in results if r["strategy"] == "per_sentence"), None)
    return 0.0 if row is None else row["tokens"] / max(1, row["sentences"])


def format_report(report: dict[str, Any]) -> str:
    """A plain-text summary: the results table, ratios, roofline and the target table."""
    lines = [
        f"device {report['device']}, torch {report['torch']}, {report['threads']} thread(s), "
        f"corpus {report['corpus']}",
        "",
        f"{'strategy':<16} {'batch':>5} {'train tok/s':>12} {'infer tok/s':>12} {'pad':>6} "
        f"{'epoch pad':>9} {'roofline':>8} {'peak MB':>8}  BiLSTM",
    ]
    for r in report["results"]:
        lines.append(
            f"{r['strategy']:<16} {r['batch_size']:>5} {r['train_tokens_per_s']:>12,.0f} "
            f"{r['infer_tokens_per_s']:>12,.0f} {r['pad_fraction']:>6.1%} {r['epoch_pad_fraction']:>9.1%} "
            f"{r['roofline_fraction']:>8.1%} {r['peak_memory_mb']:>8.0f}  "
            f"{'correct' if r['correct'] else 'WRONG (reads padding)'}"
        )
    bs = report["ratio_batch_size"]
    lines += ["", f"training speed ratios at batch size {bs}:"]
    for key, value in {**report["ratios"], **report.get("other_ratios", {})}.items():
        if isinstance(value, dict):
            key, value = f"{key} (batch {value['batch_size']})", value["ratio"]
        lines.append(f"  {key:<44} {'n/a' if value is None else f'{value:.2f}x'}")
    pad = report["pad_fraction"]
    lines.append(f"padding of one epoch at batch size {bs}: random {pad['random']:.1%}, "
                 f"bucketed {pad['bucketed']:.1%}")
    f = report["flops_per_token"]
    shape = report["gemm_shape"]
    lines.append(
        f"FLOPs per token: forward {f['forward']:,}, training {f['train']:,} (3x forward); "
        f"GEMM at the model's shapes (B={shape['batch_size']}, T={shape['seq_len']}): "
        f"{report['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s (large square GEMM: "
        f"{report['gemm_peak_flops_per_s'] / 1e9:.1f} GFLOP/s)"
    )
    lines += ["", f"targets ({'set for the 2-core CPU' if report['device'] != 'cpu' else 'CPU'}):"]
    for t in report["targets"]:
        value = "n/a" if t["value"] is None else f"{t['value']:.3f}"
        status = {True: "met", False: "NOT MET", None: "not measured"}[t["met"]]
        lines.append(f"  {t['name']:<36} {value:>8} {t['op']} {t['bound']:<5} {status:<13} ({t['what']})")
    why = explain(report)
    if why:
        lines += ["", "why the targets not met were missed (measured in this run):", *why]
    if any(not r["correct"] for r in report["results"]):
        lines += ["", "random_padded and bucketed_padded are WRONG for a bidirectional LSTM: its "
                  "right-to-left direction reads the padding before each sentence's last word."]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figures


def plot_throughput(report: dict[str, Any], key: str = "train_tokens_per_s", ax: Any = None) -> Any:
    """Tokens/s against batch size, one line per strategy (log axes); ``per_sentence`` is a
    horizontal dashed line. Strategies wrong for a BiLSTM are drawn dotted. Returns the Axes."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
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


def plot_padding(pad_by_batch_size: dict[Any, dict[str, float]], ax: Any = None) -> Any:
    """Padding fraction of one epoch against batch size, random vs bucketed batches. Returns the Axes.

    Args:
        pad_by_batch_size: ``{batch_size: {"random": r, "bucketed": b}}`` (keys may be strings,
            as in the report's ``pad_fraction_by_batch_size``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.5))
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
    ax.set_title("How much of each batch is padding (one epoch of EWT train)")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to ``parser`` (used by ``python -m seqtag bench``)."""
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--quick", action="store_true", help="small run (~2 min on a 2-core CPU)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument("--bidirectional", dest="bidirectional", action="store_true", default=True,
                           help="benchmark a BiLSTM (default)")
    direction.add_argument("--unidirectional", dest="bidirectional", action="store_false",
                           help="benchmark a left-to-right LSTM")
    parser.add_argument("--batch-sizes", type=int, nargs="+", metavar="B",
                        help=f"batch sizes (default {' '.join(map(str, FULL['batch_sizes']))})")  # type: ignore[call-overload]
    parser.add_argument("--embedding-dim", type=int, default=100, help="E (default 100)")
    parser.add_argument("--hidden-size", type=int, default=128, help="H per direction (default 128)")
    parser.add_argument("--max-sentences", type=int,
                        help=f"sentences per timed sample (default {FULL['max_sentences']}, quick {QUICK['max_sentences']})")
    parser.add_argument("--per-sentence-max", type=int,
                        help=f"sentences for per_sentence (default {FULL['per_sentence_max']}, quick {QUICK['per_sentence_max']})")
    parser.add_argument("--repeats", type=int, help=f"timed passes, median reported (default {FULL['repeats']})")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--pool-factor", type=int, default=200, help="bucket pool size in batches (default 200)")
    parser.add_argument("--min-batches", type=int, default=MIN_BATCHES,
                        help=f"timed batches per strategy at least (default {MIN_BATCHES})")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES + EXTRA_STRATEGIES,
                        default=list(STRATEGIES + EXTRA_STRATEGIES), help="what to measure (default: all)")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="use N random sentences instead of EWT (a dry run; no data needed)")
    parser.add_argument("--seed", type=int, default=0)


def main(args: argparse.Namespace) -> int:
    """Run the benchmark with parsed ``args``; print the report (and write ``--json``). Returns 0."""
    corpus = synthetic_corpus(args.synthetic, vocab_size=1000, num_tags=18, max_len=60, seed=args.seed) \
        if args.synthetic else None
    report = run_benchmark(
        corpus,
        device=args.device,
        batch_sizes=args.batch_sizes,
        strategies=args.strategies,
        bidirectional=args.bidirectional,
        embedding_dim=args.embedding_dim,
        hidden_size=args.hidden_size,
        max_sentences=args.max_sentences,
        per_sentence_max=args.per_sentence_max,
        repeats=args.repeats,
        threads=args.threads,
        pool_factor=args.pool_factor,
        min_batches=args.min_batches,
        quick=args.quick,
        seed=args.seed,
    )
    print()
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m seqtag.bench", description=__doc__,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
