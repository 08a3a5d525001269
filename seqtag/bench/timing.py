"""Timing the strategies: one runner per (strategy, batch size), timed in interleaved rounds with
:class:`torch.utils.benchmark.Timer`; tagging throughput; an operator profile of one step.

Every timed call goes through :meth:`Timer.blocked_autorange` with ``min_run_time=0``: the Timer
runs the pass once to size its block (that run is the warm-up) and then once more, timed, with
CUDA synchronised around it, at the runner's thread setting. Rounds are interleaved (round ``r``
of every runner before round ``r + 1`` of any), so a change in machine load hits all alike.
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.benchmark import Timer

from seqtag.batching import BucketBatchSampler, padding_fraction
from seqtag.bench.corpus import BenchCorpus
from seqtag.bench.samples import Prepared, prepare_batches
from seqtag.losses import masked_cross_entropy
from seqtag.models import Tagger, TaggerConfig

__all__ = ["Runner", "measure_rounds", "relative_spread", "profile_train_step", "tagging_speed", "adam",
           "optimizers", "optimizer_name"]


def adam(model: nn.Module) -> torch.optim.Optimizer:
    """Adam with the fused kernel where this PyTorch has one (CPU and CUDA in torch >= 2.4).

    On the CPU the default (for-each) Adam costs ~4x more per step than the fused one for this
    tagger (the embedding table dominates the parameters): a fixed cost per batch that would
    make small batches look worse than they need to.
    """
    try:
        return torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    except (RuntimeError, TypeError, ValueError):  # pragma: no cover - old torch or device
        return torch.optim.Adam(model.parameters(), lr=1e-3)


def _fused_adam(params: list[nn.Parameter]) -> torch.optim.Optimizer:
    try:
        return torch.optim.Adam(params, lr=1e-3, fused=True)
    except (RuntimeError, TypeError, ValueError):  # pragma: no cover - old torch or device
        return torch.optim.Adam(params, lr=1e-3)


def optimizers(model: nn.Module, sparse_embedding: bool = False) -> list[torch.optim.Optimizer]:
    """The optimizers of one benchmark model: :func:`adam` over everything, or, with
    ``sparse_embedding``, ``torch.optim.SparseAdam`` for the word embedding and fused Adam for the rest.

    With ``sparse_embedding`` the model's ``embedding`` (an ``nn.Embedding``) is switched to
    ``sparse=True``: its gradient holds only the rows the batch used, and SparseAdam updates only
    those rows (and their moments), instead of a dense ``(V, E)`` gradient and an Adam step over
    the whole table every step. It is not the same optimizer: a row's moments decay only on the
    steps that use it (the "lazy" Adam of SparseAdam's documentation).
    """
    if not sparse_embedding:
        return [adam(model)]
    embedding = getattr(model, "embedding", None)
    if not isinstance(embedding, nn.Embedding):
        raise ValueError("sparse_embedding needs a model whose .embedding is an nn.Embedding")
    embedding.sparse = True
    rest = [p for p in model.parameters() if p is not embedding.weight and p.requires_grad]
    return [torch.optim.SparseAdam([embedding.weight], lr=1e-3), _fused_adam(rest)]


def optimizer_name(sparse_embedding: bool) -> str:
    """How :func:`optimizers` sets up training, in words (stored in the report's config)."""
    return ("SparseAdam(lr=1e-3) on the sparse word-embedding gradient + Adam(lr=1e-3, fused) on the rest"
            if sparse_embedding else "Adam(lr=1e-3, fused)")


def timed_once(fn: Callable[[], object]) -> float:
    """Seconds of one call of ``fn`` after one warm-up call (``Timer.blocked_autorange(min_run_time=0)``)."""
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return float(timer.blocked_autorange(min_run_time=0).median)


def relative_spread(values: Sequence[float]) -> float:
    """``(max - min) / median`` of ``values`` (0 for fewer than two)."""
    return 0.0 if len(values) < 2 else (max(values) - min(values)) / statistics.median(values)


class Runner:
    """One (strategy, batch size): its model, optimizer, pre-collated batches and timings.

    Args:
        strategy: the strategy's name (stored in the row).
        batches: lists of corpus indices, one list per batch.
        model: a tagger taking ``(words (B, T), lengths (B,) CPU)`` -> ``(B, T, C)`` logits.
        correct: whether the strategy gives a BiLSTM's exact outputs (stored in the row).
        packed: whether the RNN runs on a PackedSequence (stored in the row).
        sparse_embedding: train with :func:`optimizers`' sparse embedding gradient and SparseAdam.
    """

    def __init__(self, strategy: str, batches: list[list[int]], corpus: BenchCorpus, model: nn.Module,
                 device: torch.device, batch_size: int, correct: bool, packed: bool,
                 sparse_embedding: bool = False) -> None:
        self.strategy, self.batches, self.device, self.batch_size = strategy, batches, device, batch_size
        self.correct, self.packed = correct, packed
        self.prepared = prepare_batches(corpus, batches, device)
        self.tokens = sum(int(p[1].sum()) for p in self.prepared)
        self.pad_fraction = padding_fraction(batches, corpus.lengths)
        self.model = model.to(device)
        self.opts = optimizers(self.model, sparse_embedding)
        self.train_times: list[float] = []
        self.infer_times: list[float] = []
        self.peak_mb = 0.0

    def _train(self) -> None:
        nb = self.device.type == "cuda"
        for words, lengths, mask, tags in self.prepared:
            words, mask, tags = (t.to(self.device, non_blocking=nb) for t in (words, mask, tags))
            for opt in self.opts:
                opt.zero_grad(set_to_none=True)
            masked_cross_entropy(self.model(words, lengths), tags, mask).backward()
            for opt in self.opts:
                opt.step()

    def _infer(self) -> None:
        nb = self.device.type == "cuda"
        with torch.inference_mode():
            for words, lengths, _, _ in self.prepared:
                self.model(words.to(self.device, non_blocking=nb), lengths).argmax(-1)

    def train_round(self) -> None:
        self.model.train()
        _reset_peak_memory(self.device)
        self.train_times.append(timed_once(self._train))
        self.peak_mb = max(self.peak_mb, _peak_memory_mb(self.device))

    def infer_round(self) -> None:
        self.model.eval()
        self.infer_times.append(timed_once(self._infer))

    def row(self) -> dict[str, Any]:
        """The runner's results: median tokens/s over its rounds, the raw seconds, their spread."""
        return {
            "strategy": self.strategy,
            "batch_size": self.batch_size,
            "bidirectional": self.model.config.bidirectional,
            "packed": self.packed,
            "flipped": bool(getattr(self.model.config, "flipped", False)),
            "correct": self.correct,
            "train_tokens_per_s": self.tokens / statistics.median(self.train_times),
            "infer_tokens_per_s": self.tokens / statistics.median(self.infer_times),
            "train_spread": relative_spread(self.train_times),
            "pad_fraction": self.pad_fraction,
            "sentences": sum(len(b) for b in self.batches),
            "tokens": self.tokens,
            "batches": len(self.batches),
            "train_seconds": self.train_times,
            "infer_seconds": self.infer_times,
            "peak_memory_mb": self.peak_mb,
        }


def measure_rounds(
    runners: Sequence[Runner],
    repeats: int,
    max_repeats: int | None = None,
    spread_target: float = 0.1,
    between: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Time ``runners`` in interleaved rounds; return their rows.

    Training rounds run ``repeats`` times, then more (up to ``max_repeats``) while any runner's
    training times spread more than ``spread_target`` (:func:`relative_spread`). ``between``
    (the GEMM ceiling) runs once per training round. Then ``repeats`` inference rounds.
    """
    limit = max(repeats, max_repeats or repeats)
    rounds = 0
    while rounds < repeats or (rounds < limit and max(relative_spread(r.train_times) for r in runners) > spread_target):
        for runner in runners:
            runner.train_round()
        if between is not None:
            between()
        rounds += 1
    for _ in range(repeats):
        for runner in runners:
            runner.infer_round()
    return [runner.row() for runner in runners]


def tagging_speed(
    corpus: BenchCorpus,
    config: TaggerConfig | None = None,
    threads: Sequence[int] = (1, 2),
    batch_size: int = 256,
    min_time: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Words per second of tagging ``corpus`` on the CPU: model forward + decode, nothing else.

    The batches are those of :meth:`seqtag.tagger.TrainedTagger.tag`: length-sorted (no shuffle)
    :class:`~seqtag.batching.BucketBatchSampler` batches of ``batch_size`` sentences, collated
    before timing. Each thread count is timed with :meth:`Timer.blocked_autorange` over whole
    passes (at least ``min_time`` seconds). The weights are random (``seed``): the cost of a
    forward pass does not depend on their values. Reading and writing files is not timed.

    Args:
        config: the tagger; default the book's word-level BiLSTM (E=100, H=128, packed).
        threads: torch CPU thread counts to time (those above the machine's cores are skipped).

    Returns:
        ``{"corpus", "sentences", "words", "batch_size", "device": "cpu", "model",
        "runs": [{"threads", "words_per_s", "median_s", "iqr_s", "passes"}, ...]}``.
    """
    torch.manual_seed(seed)
    config = config or TaggerConfig(corpus.vocab_size, corpus.num_tags)
    model = Tagger(config).eval()
    lengths = corpus.lengths
    batches = BucketBatchSampler(lengths, batch_size, shuffle=False).batches()
    prepared = prepare_batches(corpus, batches, torch.device("cpu"))

    def tag_all() -> None:
        for words, lens, mask, _ in prepared:
            model.decode(model(words, lens), mask)

    runs = []
    with torch.inference_mode():
        for n in [t for t in threads if t <= (os.cpu_count() or 1)]:
            m = Timer(stmt="fn()", globals={"fn": tag_all}, num_threads=n).blocked_autorange(min_run_time=min_time)
            runs.append({"threads": n, "words_per_s": sum(lengths) / m.median, "median_s": m.median,
                         "iqr_s": m.iqr, "passes": len(m.times) * m.number_per_run})
    c = config
    return {
        "corpus": corpus.name, "sentences": len(corpus), "words": sum(lengths), "batch_size": batch_size,
        "device": "cpu", "runs": runs,
        "model": f"Tagger(E={c.embedding_dim}, H={c.hidden_size}, {c.num_layers}-layer "
                 f"{'bi' if c.bidirectional else 'uni'}directional {c.rnn.upper()}, "
                 f"{'packed' if c.packed else 'padded'}{', CRF' if c.crf else ''}), forward + decode",
    }


def profile_train_step(model: nn.Module, batch: Prepared, device: str | torch.device = "cpu") -> dict[str, int]:
    """How many times each ATen operator runs in one training step (forward and backward, no optimizer).

    Args:
        model: a tagger taking ``(words, lengths)``.
        batch: one item of :func:`~seqtag.bench.samples.prepare_batches`.

    Returns:
        ``{operator name: number of calls}``, e.g. ``"aten::mkldnn_rnn_layer"`` (the fused oneDNN
        LSTM layer) or ``"aten::fill_"`` (zero-fills: the packed CPU LSTM's backward pays one per
        time step and direction).
    """
    from torch.profiler import ProfilerActivity, profile

    dev = torch.device(device)
    words, lengths, mask, tags = batch
    words, mask, tags = words.to(dev), mask.to(dev), tags.to(dev)
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
