"""``python -m seqtag bench`` and ``python -m seqtag.bench``: options, run, print, store.

The options are the fields of :class:`BenchOptions`; :func:`seqtag.options.add_options` turns each
into a command-line option whose help is the field's own ``metadata["help"]``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from seqtag.bench.corpus import synthetic_corpus
from seqtag.bench.report import format_report
from seqtag.bench.run import (
    BENCH_POOL_FACTOR,
    EXTRA_STRATEGIES,
    FULL,
    QUICK,
    STRATEGIES,
    run_benchmark,
)
from seqtag.bench.samples import MIN_BATCHES
from seqtag.io import write_json
from seqtag.options import add_options, build

__all__ = ["BenchOptions", "add_arguments", "main"]

Strategy = Literal[STRATEGIES + EXTRA_STRATEGIES]  # type: ignore[valid-type]


def _help(text: str, **more: Any) -> dict[str, Any]:
    return {"help": text, **more}


def _schedule(key: str) -> str:
    return f"default: {FULL[key]}, quick: {QUICK[key]}"


@dataclass
class BenchOptions:
    """What ``python -m seqtag bench`` measures and where it writes (one option per field)."""

    device: str = field(default="auto", metadata=_help(
        "where to time training: auto (CUDA when available), cpu, cuda or cuda:N"))
    quick: bool = field(default=False, metadata=_help(
        "the quick schedule (about 3 minutes on a 2-core CPU) instead of the full one"))
    json: Path | None = field(default=None, metadata=_help(
        "also write the report, with the machine it ran on, to this JSON file (atomically)",
        metavar="FILE", show_default=False))
    bidirectional: bool = field(default=True, metadata=_help(
        "benchmark a BiLSTM; --no-bidirectional: a left-to-right LSTM (the flipped model is then skipped)"))
    batch_sizes: tuple[int, ...] | None = field(default=None, metadata=_help(
        f"batch sizes to time, per_sentence is always 1 (default: {' '.join(map(str, FULL['batch_sizes']))})",
        metavar="B", show_default=False))
    embedding_dim: int = field(default=100, metadata=_help("word embedding size E"))
    hidden_size: int = field(default=128, metadata=_help("LSTM state size H per direction"))
    max_sentences: int | None = field(default=None, metadata=_help(
        f"sentences in each timed sample ({_schedule('max_sentences')})", show_default=False))
    per_sentence_max: int | None = field(default=None, metadata=_help(
        f"sentences timed one at a time, the slowest strategy ({_schedule('per_sentence_max')})",
        show_default=False))
    repeats: int | None = field(default=None, metadata=_help(
        f"timed rounds at least; the median counts ({_schedule('repeats')})", show_default=False))
    max_repeats: int | None = field(default=None, metadata=_help(
        f"timed rounds at most, while a strategy's rounds spread by more than 10% ({_schedule('max_repeats')})",
        show_default=False))
    threads: int | None = field(default=None, metadata=_help(
        "torch CPU threads for training (default: torch's choice; 1 is steady on a busy machine)",
        show_default=False))
    tagging_threads: tuple[int, ...] = field(default=(1, 2), metadata=_help(
        "CPU thread counts to time tagging with; 0 skips the tagging speed", metavar="N"))
    tagging_time: float | None = field(default=None, metadata=_help(
        f"seconds of tagging per thread count at least ({_schedule('tagging_time')})", show_default=False))
    pool_factor: int = field(default=BENCH_POOL_FACTOR, metadata=_help(
        "bucket pool of the timed samples, in batches (larger pools pad less)"))
    min_batches: int = field(default=MIN_BATCHES, metadata=_help("timed batches per strategy at least"))
    strategies: tuple[Strategy, ...] = field(default=STRATEGIES + EXTRA_STRATEGIES, metadata=_help(
        "the strategies to time", metavar="STRATEGY"))
    synthetic: int | None = field(default=None, metadata=_help(
        "time N random sentences instead of UD English EWT (a dry run; no data needed)",
        metavar="N", show_default=False))
    note: str | None = field(default=None, metadata=_help(
        "free text stored in the JSON, e.g. what else ran on the machine", show_default=False))
    busy: int = field(default=0, metadata=_help(
        "keep N other processes spinning (one core each) for the whole measurement, to see what load "
        "does to the numbers; recorded in the JSON", metavar="N"))
    sparse_embedding: bool = field(default=False, metadata=_help(
        "train every strategy with a sparse word-embedding gradient and SparseAdam for it (fused Adam "
        "for the rest) instead of a dense gradient and Adam over the whole table every step"))
    seed: int = field(default=0, metadata=_help("seed of the samples and of the weights"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options (the fields of :class:`BenchOptions`) to ``parser``."""
    add_options(parser, BenchOptions)


def main(args: argparse.Namespace) -> int:
    """Run the benchmark with parsed ``args``; print the report (and write ``--json``). Returns 0."""
    opts: BenchOptions = build(BenchOptions, args)
    corpus = (synthetic_corpus(opts.synthetic, vocab_size=1000, num_tags=18, max_len=60, seed=opts.seed)
              if opts.synthetic else None)
    report = run_benchmark(
        corpus,
        device=opts.device,
        batch_sizes=opts.batch_sizes,
        strategies=opts.strategies,
        bidirectional=opts.bidirectional,
        embedding_dim=opts.embedding_dim,
        hidden_size=opts.hidden_size,
        max_sentences=opts.max_sentences,
        per_sentence_max=opts.per_sentence_max,
        repeats=opts.repeats,
        max_repeats=opts.max_repeats,
        threads=opts.threads,
        tagging_threads=tuple(t for t in opts.tagging_threads if t > 0),
        tagging_time=opts.tagging_time,
        pool_factor=opts.pool_factor,
        min_batches=opts.min_batches,
        quick=opts.quick,
        note=opts.note,
        sparse_embedding=opts.sparse_embedding,
        busy=opts.busy,
        seed=opts.seed,
    )
    print()
    print(format_report(report))
    if opts.json:
        write_json(opts.json, report)
        print(f"\nwrote {opts.json}")
    return 0
