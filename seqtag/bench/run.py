"""The benchmark run: every strategy at every batch size, the GEMM ceiling, the tagging speed,
and the report as a JSON-able dict with the machine it ran on.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from seqtag.batching import BucketBatchSampler, padding_fraction
from seqtag.bench.corpus import BenchCorpus, ewt_corpus
from seqtag.bench.flops import flops_per_token, measure_gemm_flops, measure_peak_gemm
from seqtag.bench.load import busy_processes
from seqtag.bench.report import (
    best_exact,
    check_targets,
    compute_ratios,
    other_ratios,
    ratio_spreads,
)
from seqtag.bench.samples import MIN_BATCHES, mean_padded_length, per_sentence_sample, timed_sample
from seqtag.bench.timing import Runner, measure_rounds, optimizer_name, tagging_speed
from seqtag.config import TrainConfig
from seqtag.models import Tagger, TaggerConfig
from seqtag.runtime import cpu_threads, machine, resolve_device

__all__ = ["STRATEGIES", "EXTRA_STRATEGIES", "PADDED", "QUICK", "FULL", "BENCH_POOL_FACTOR", "run_benchmark",
           "strategy_model", "busy_warning"]

STRATEGIES: tuple[str, ...] = (
    "per_sentence",
    "random_padded",
    "random_packed",
    "bucketed_padded",
    "bucketed_packed",
)
EXTRA_STRATEGIES: tuple[str, ...] = ("bucketed_flipped",)
PADDED = frozenset({"random_padded", "bucketed_padded"})
# Schedules: ``repeats`` rounds at least, more (up to ``max_repeats``) while the rounds spread
# more than 10 %; ``tagging_time``: seconds of tagging per thread count at least.
QUICK: dict[str, Any] = {"batch_sizes": (8, 32, 128), "max_sentences": 512, "per_sentence_max": 128,
                         "repeats": 2, "max_repeats": 3, "tagging_time": 1.0}
FULL: dict[str, Any] = {"batch_sizes": (8, 32, 128), "max_sentences": 1024, "per_sentence_max": 256,
                        "repeats": 5, "max_repeats": 8, "tagging_time": 3.0}
SPREAD_TARGET = 0.1
BENCH_POOL_FACTOR = 200  # the timed samples' bucket pool, in batches (training's default is 50)


def strategy_model(strategy: str, config: TaggerConfig, seed: int = 0) -> Tagger:
    """The tagger a strategy trains: ``config`` with the strategy's way of running the RNN.

    Every strategy gets the same weights (``torch.manual_seed(seed)`` before building): one model,
    run three ways. ``*_padded`` feeds the padded tensor (``packed=False``), ``bucketed_flipped``
    the exact padded path (``flipped=True``, :func:`seqtag.rnn.run_flipped`), the others pack.
    """
    if strategy not in STRATEGIES + EXTRA_STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES + EXTRA_STRATEGIES)}")
    flipped = strategy == "bucketed_flipped"
    torch.manual_seed(seed)
    return Tagger(TaggerConfig.from_dict({**config.to_dict(), "packed": strategy not in PADDED, "flipped": flipped}))


def busy_warning(device: torch.device, threads: int, load: list[float] | None) -> str | None:
    """A warning when CPU threads will fight other processes for cores (timings then swing wildly:
    a waiting OpenMP thread spins while the other is descheduled), else ``None``."""
    cores = os.cpu_count() or 1
    if device.type != "cpu" or threads < 2 or not load or load[0] + threads <= cores + 0.5:
        return None
    return (f"warning: load average {load[0]:.1f} on {cores} cores: {threads} threads will compete with "
            "other processes and time erratically; use --threads 1 on a busy machine")


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
    max_repeats: int | None = None,
    threads: int | None = None,
    pool_factor: int = BENCH_POOL_FACTOR,
    min_batches: int = MIN_BATCHES,
    ratio_batch_size: int = 32,
    tagging_corpus: BenchCorpus | None = None,
    tagging_threads: Sequence[int] = (1, 2),
    tagging_time: float | None = None,
    quick: bool = False,
    note: str | None = None,
    sparse_embedding: bool = False,
    busy: int = 0,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Measure every strategy at every batch size, and the tagging speed; return the report.

    Args:
        corpus: the training sentences; default :func:`~seqtag.bench.corpus.ewt_corpus` (EWT train).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        batch_sizes: batch sizes for the batched strategies (``per_sentence`` is always 1).
        strategies: a subset of :data:`STRATEGIES` and :data:`EXTRA_STRATEGIES` (the extra
            ``bucketed_flipped`` runs :class:`~seqtag.models.Tagger` with ``flipped=True``, the
            exact padded path of :func:`seqtag.rnn.run_flipped`; bidirectional only).
        max_sentences: sentences in each timed sample; ``per_sentence_max`` caps the
            per-sentence sample (it is the slowest by far; tokens/s does not depend on the count).
        repeats: timed training rounds at least (the median counts); ``max_repeats``: at most,
            while any strategy's rounds spread more than 10 %.
        threads: ``torch.set_num_threads`` for the training run (restored afterwards); ``None`` keeps it.
        pool_factor: the bucket sampler's pool, in batches (larger pools pad less).
        min_batches: timed batches per strategy at least.
        ratio_batch_size: the batch size the ``ratios`` compare at (the nearest one measured).
        tagging_corpus: sentences to tag for the tagging speed; default EWT test when ``corpus``
            is ``None``, else ``corpus`` itself. ``tagging_threads=()`` skips it.
        quick: the :data:`QUICK` schedule (~3 minutes on a 2-core CPU) instead of :data:`FULL`.
        note: free text stored in the report (what else ran on the machine, for instance).
        sparse_embedding: every strategy trains with a sparse word-embedding gradient and
            ``SparseAdam`` for it (:func:`~seqtag.bench.timing.optimizers`); default dense, fused Adam.
        busy: keep this many other processes spinning for the whole measurement (training and
            tagging): :func:`~seqtag.bench.load.busy_processes`; recorded in ``report["busy"]``.
        log: called with each progress line; ``None`` for silence.

    Returns:
        ``{"device", "torch", "threads", "schedule", "machine", "config", "results": [...],
        "ratios", "ratio_spread", "pad_fraction", "padding", "tagging", "roofline_fraction",
        "targets", ...}``; ``machine`` has the load average before (``load_average``) and after
        (``load_average_end``) and the process's ``nice`` level.
    """
    say = log or (lambda _: None)
    defaults = QUICK if quick else FULL
    batch_sizes = tuple(batch_sizes or defaults["batch_sizes"])
    max_sentences = max_sentences or int(defaults["max_sentences"])
    per_sentence_max = per_sentence_max or int(defaults["per_sentence_max"])
    repeats = repeats or int(defaults["repeats"])
    max_repeats = max(repeats, max_repeats or int(defaults["max_repeats"]))
    tagging_time = float(defaults["tagging_time"] if tagging_time is None else tagging_time)
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
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if not isinstance(busy, int) or busy < 0:
        raise ValueError(f"busy must be >= 0 (spinning processes), got {busy!r}")
    dev = resolve_device(device)
    cudnn_flags = (torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark,
                   torch.backends.cuda.matmul.allow_tf32)
    if dev.type == "cuda":
        # cuDNN runs the LSTM; benchmark mode would re-tune for every new batch length, so it
        # stays off. TF32 matmuls (Ampere and later) are what a speed-minded user would enable.
        torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark = True, False
        torch.backends.cuda.matmul.allow_tf32 = True
    started = time.perf_counter()
    try:
        if corpus is None:
            say("reading UD English EWT train and test ...")
            corpus = ewt_corpus("train")
            if tagging_corpus is None and tagging_threads:
                tagging_corpus = ewt_corpus("test")
        with busy_processes(busy) as busy_record:
            if busy:
                say(f"keeping {busy} other process(es) busy for the whole measurement: {busy_record['command']}")
                time.sleep(1.0)  # let them start spinning before the first timing
            with cpu_threads(threads):
                report = _run(corpus, dev, batch_sizes, strategies, bidirectional, embedding_dim, hidden_size,
                              max_sentences, per_sentence_max, repeats, max_repeats, pool_factor, min_batches,
                              ratio_batch_size, sparse_embedding, seed, say)
            if tagging_threads:
                say(f"tagging speed on the CPU, {', '.join(map(str, tagging_threads))} thread(s) ...")
                config = TaggerConfig(corpus.vocab_size, corpus.num_tags, embedding_dim, hidden_size,
                                      bidirectional=bidirectional)
                report["tagging"] = tagging_speed(tagging_corpus or corpus, config, tagging_threads,
                                                  min_time=tagging_time, seed=seed)
    finally:
        if dev.type == "cuda":
            (torch.backends.cudnn.enabled, torch.backends.cudnn.benchmark,
             torch.backends.cuda.matmul.allow_tf32) = cudnn_flags
    report["machine"]["load_average_end"] = ([round(x, 2) for x in os.getloadavg()]
                                             if hasattr(os, "getloadavg") else None)
    report["config"].update(quick=quick, threads_requested=threads, max_repeats=max_repeats,
                            spread_target=SPREAD_TARGET, tagging_time=tagging_time, busy=busy)
    report["busy"] = busy_record
    report["schedule"] = report["machine"]["schedule"] = "quick" if quick else "full"
    report["note"] = note
    report["seconds"] = time.perf_counter() - started
    return report


def _run(
    corpus: BenchCorpus, dev: torch.device, batch_sizes: Sequence[int], strategies: Sequence[str],
    bidirectional: bool, embedding_dim: int, hidden_size: int, max_sentences: int, per_sentence_max: int,
    repeats: int, max_repeats: int, pool_factor: int, min_batches: int, ratio_batch_size: int,
    sparse_embedding: bool, seed: int, say: Callable[[str], None],
) -> dict[str, Any]:
    record = machine(dev)
    record["nice"] = os.nice(0) if hasattr(os, "nice") else None
    threads = torch.get_num_threads()
    say(f"torch {torch.__version__} on {dev} ({record.get('gpu') or record['cpu']}, {record['cpu_count']} CPUs), "
        f"{threads} intra-op thread(s), load average {record['load_average']}, nice {record['nice']}")
    busy = busy_warning(dev, threads, record["load_average"])
    if busy:
        say(busy)
    lengths = corpus.lengths
    ratio_bs = min(batch_sizes, key=lambda b: (abs(b - ratio_batch_size), b))
    base = TaggerConfig(corpus.vocab_size, corpus.num_tags, embedding_dim, hidden_size, bidirectional=bidirectional)
    say(f"{corpus.name}: {sum(lengths)} tokens, mean length {sum(lengths) / len(lengths):.1f}, "
        f"max {max(lengths)}; tagger E={embedding_dim} H={hidden_size} "
        f"{'bi' if bidirectional else 'uni'}directional LSTM, {corpus.vocab_size} words, "
        f"{corpus.num_tags} tags, {optimizer_name(sparse_embedding)}")
    epoch_pad: dict[int, dict[str, float]] = {}
    samples: dict[int, tuple[list[list[int]], list[list[int]]]] = {}
    for bs in batch_sizes:
        bucketed, shuffled, epoch_pad[bs] = timed_sample(lengths, bs, max_sentences, pool_factor, seed, min_batches)
        samples[bs] = (bucketed, shuffled)
    per_sentence = per_sentence_sample(lengths, per_sentence_max, seed) if "per_sentence" in strategies else []
    # GEMM ceilings: one per batch size, at its sample's mean padded length, measured between the
    # training rounds of that batch size (so under the same machine load as the model).
    seq_len = {bs: mean_padded_length(samples[bs][0], lengths) for bs in batch_sizes}
    if per_sentence:
        seq_len[1] = mean_padded_length(per_sentence, lengths)
    gemm_samples: dict[int, list[float]] = {b: [] for b in seq_len}

    def gemm_between(sizes: Sequence[int]) -> Callable[[], None]:
        def measure() -> None:
            for b in sizes:
                gemm_samples[b].append(measure_gemm_flops(embedding_dim, hidden_size, corpus.num_tags, b,
                                                          seq_len[b], bidirectional, dev, min_time=0.05))
        return measure

    def runner(strategy: str, batches: list[list[int]], bs: int) -> Runner:
        model = strategy_model(strategy, base, seed)
        return Runner(strategy, batches, corpus, model, dev, bs,
                      correct=strategy not in PADDED or not bidirectional,
                      packed=model.config.packed and not model.config.flipped, sparse_embedding=sparse_embedding)

    results: list[dict[str, Any]] = []
    for bs in batch_sizes:
        runners = [runner("per_sentence", per_sentence, 1)] if per_sentence and bs == ratio_bs else []
        runners += [runner(s, samples[bs][0] if s.startswith("bucketed") else samples[bs][1], bs)
                    for s in strategies if s != "per_sentence"]
        say(f"batch size {bs}: timing {', '.join(r.strategy for r in runners)} "
            f"({repeats} to {max_repeats} interleaved rounds, each after a warm-up pass)")
        for row in measure_rounds(runners, repeats, max_repeats, SPREAD_TARGET,
                                  gemm_between(sorted({r.batch_size for r in runners}))):
            row["epoch_pad_fraction"] = (0.0 if row["strategy"] == "per_sentence" else
                                         epoch_pad[row["batch_size"]][row["strategy"].split("_")[0]])
            results.append(row)
            flag = "" if row["correct"] else "  <- WRONG for a BiLSTM (reads padding)"
            say(f"  {row['strategy']:<16} batch {row['batch_size']:>4}: train {row['train_tokens_per_s']:>9,.0f} "
                f"tok/s (spread {row['train_spread']:5.1%}), infer {row['infer_tokens_per_s']:>9,.0f} tok/s, "
                f"pad {row['pad_fraction']:6.1%}, peak mem {row['peak_memory_mb']:7.1f} MB{flag}")
        del runners

    flops = flops_per_token(embedding_dim, hidden_size, corpus.num_tags, bidirectional=bidirectional)
    gemm = {b: statistics.median(v) for b, v in gemm_samples.items() if v}
    for row in results:
        row["train_flops_per_s"] = row["train_tokens_per_s"] * flops["train"]
        row["gemm_flops_per_s"] = gemm[row["batch_size"]]
        row["roofline_fraction"] = row["train_flops_per_s"] / gemm[row["batch_size"]]
    main_row = next((r for r in results if r["strategy"] == "bucketed_packed" and r["batch_size"] == ratio_bs), None)
    training_pool = TrainConfig().pool_factor
    trained = BucketBatchSampler(lengths, ratio_bs, pool_factor=training_pool, seed=seed).batches()
    report: dict[str, Any] = {
        "device": str(dev),
        "torch": torch.__version__,
        "threads": threads,
        "interop_threads": torch.get_num_interop_threads(),
        "machine": record,
        "corpus": corpus.name,
        "config": {
            "embedding_dim": embedding_dim, "hidden_size": hidden_size, "bidirectional": bidirectional,
            "vocab_size": corpus.vocab_size, "num_tags": corpus.num_tags, "batch_sizes": list(batch_sizes),
            "max_sentences": max_sentences, "per_sentence_max": per_sentence_max, "repeats": repeats,
            "pool_factor": pool_factor, "min_batches": min_batches, "optimizer": optimizer_name(sparse_embedding),
            "sparse_embedding": sparse_embedding,
            "seed": seed, "timer": "torch.utils.benchmark.Timer.blocked_autorange",
        },
        "results": results,
        "ratio_batch_size": ratio_bs,
        "ratios": compute_ratios(results, ratio_bs),
        "other_ratios": other_ratios(results, ratio_bs),
        "best_exact": best_exact(results, ratio_bs),
        "ratio_spread": ratio_spreads(results, ratio_bs),
        "pad_fraction": dict(epoch_pad[ratio_bs]),
        "pad_fraction_by_batch_size": {str(bs): v for bs, v in epoch_pad.items()},
        "padding": {
            "batch_size": ratio_bs,
            "what": "padded share of B x T over one whole epoch of the corpus",
            "benchmark_pool": {"pool_factor": pool_factor, **epoch_pad[ratio_bs]},
            "training_pool": {"pool_factor": training_pool, "random": epoch_pad[ratio_bs]["random"],
                              "bucketed": padding_fraction(trained, lengths)},
        },
        "flops_per_token": flops,
        "gemm_shape": {"batch_size": ratio_bs, "seq_len": seq_len[ratio_bs]},
        "gemm_flops_per_s": gemm[ratio_bs],
        "gemm_by_batch_size": {str(b): {"seq_len": seq_len[b], "flops_per_s": v} for b, v in gemm.items()},
        "gemm_peak_flops_per_s": measure_peak_gemm(dev),
        "roofline_fraction": None if main_row is None else main_row["roofline_fraction"],
        "memory": "CUDA: torch.cuda.max_memory_allocated" if dev.type == "cuda"
        else "CPU: peak resident set size of the whole process (VmHWM), all strategies of a batch size alive",
    }
    report["targets"] = check_targets(report)
    return report
