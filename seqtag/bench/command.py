"""``python -m seqtag bench`` and ``python -m seqtag.bench``: options, run, print, store."""

from __future__ import annotations

import argparse
from pathlib import Path

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

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to ``parser`` (used by ``python -m seqtag bench``)."""
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--quick", action="store_true",
                        help="the quick schedule (about 3 minutes on a 2-core CPU); else the full one")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write the report, with the machine it ran on, as JSON (atomically)")
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument("--bidirectional", dest="bidirectional", action="store_true", default=True,
                           help="benchmark a BiLSTM (default)")
    direction.add_argument("--unidirectional", dest="bidirectional", action="store_false",
                           help="benchmark a left-to-right LSTM")
    parser.add_argument("--batch-sizes", type=int, nargs="+", metavar="B",
                        help=f"batch sizes to time (default {' '.join(map(str, FULL['batch_sizes']))})")
    parser.add_argument("--embedding-dim", type=int, default=100, help="word embedding size E (default 100)")
    parser.add_argument("--hidden-size", type=int, default=128, help="LSTM size H per direction (default 128)")
    parser.add_argument("--max-sentences", type=int, help="sentences per timed sample "
                        f"(default {FULL['max_sentences']}, quick {QUICK['max_sentences']})")
    parser.add_argument("--per-sentence-max", type=int, help="sentences timed one at a time "
                        f"(default {FULL['per_sentence_max']}, quick {QUICK['per_sentence_max']})")
    parser.add_argument("--repeats", type=int, help="timed rounds at least, median reported "
                        f"(default {FULL['repeats']}, quick {QUICK['repeats']})")
    parser.add_argument("--max-repeats", type=int, help="rounds at most while they spread more than 10%% "
                        f"(default {FULL['max_repeats']}, quick {QUICK['max_repeats']})")
    parser.add_argument("--threads", type=int, help="torch intra-op threads for training (default: torch's choice)")
    parser.add_argument("--tagging-threads", type=int, nargs="*", default=[1, 2], metavar="N",
                        help="CPU thread counts for the tagging speed (default 1 2; none: skip it)")
    parser.add_argument("--tagging-time", type=float, help="seconds of tagging per thread count at least "
                        f"(default {FULL['tagging_time']}, quick {QUICK['tagging_time']})")
    parser.add_argument("--pool-factor", type=int, default=BENCH_POOL_FACTOR,
                        help=f"bucket pool size in batches for the timed samples (default {BENCH_POOL_FACTOR})")
    parser.add_argument("--min-batches", type=int, default=MIN_BATCHES,
                        help=f"timed batches per strategy at least (default {MIN_BATCHES})")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES + EXTRA_STRATEGIES,
                        default=list(STRATEGIES + EXTRA_STRATEGIES), help="what to measure (default: all)")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="use N random sentences instead of EWT (a dry run; no data needed)")
    parser.add_argument("--note", help="free text stored in the JSON (what else ran on the machine, ...)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the samples and the weights (default 0)")


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
        max_repeats=args.max_repeats,
        threads=args.threads,
        tagging_threads=tuple(args.tagging_threads),
        tagging_time=args.tagging_time,
        pool_factor=args.pool_factor,
        min_batches=args.min_batches,
        quick=args.quick,
        note=args.note,
        seed=args.seed,
    )
    print()
    print(format_report(report))
    if args.json:
        write_json(args.json, report)
        print(f"\nwrote {args.json}")
    return 0
