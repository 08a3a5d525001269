"""How fast is each trick? Training and tagging throughput of the BiLSTM tagger, side by side.

    python -m seqtag bench --quick --json out.json        # about 3 minutes on a 2-core CPU
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
``bucketed_flipped``  bucketed, padded, ``Tagger(flipped=True)`` (extra)       yes
====================  =======================================================  =============

A padded batch is *wrong* for a bidirectional RNN: the right-to-left direction reads the padding
before the sentence's last word. It is measured anyway: it is what fast-but-wrong code does, and
its speed is the bar packing has to meet. ``TaggerConfig(flipped=True)`` (:func:`seqtag.rnn.run_flipped`:
the right-to-left direction reads each sentence reversed within its length) is exact on padded
batches: the book's recommended fast path on a CPU (``python -m seqtag train --flipped``).

One job per module (data flows down the list):

* :mod:`~seqtag.bench.corpus` -- the sentences as ids (EWT or synthetic);
* :mod:`~seqtag.bench.load` -- other processes kept busy on purpose (``--busy N``);
* :mod:`~seqtag.bench.samples` -- whole epochs cut into batches, the timed sample of each, collation;
* :mod:`~seqtag.bench.flops` -- FLOPs per token and the machine's GEMM speed (the roofline);
* :mod:`~seqtag.bench.timing` -- runners timed in interleaved rounds with
  :class:`torch.utils.benchmark.Timer`, tagging throughput, an operator profile;
* :mod:`~seqtag.bench.report` -- ratios with the spread of their rounds, targets, the text report;
* :mod:`~seqtag.bench.run` -- :func:`run_benchmark`, the whole measurement;
* :mod:`~seqtag.bench.command` -- the command line. Figures live in :mod:`seqtag.plots`.

How it measures (every ratio comes from one run):

* The corpus (EWT train by default) is cut into bucketed and into random batches **over the whole
  epoch**, so padding fractions are those of real training. From each epoch a sample of batches
  that spans its short and long batches and has about its padding is timed.
* Batches are collated (on CUDA also pinned) once, before timing; the timed loop only copies them
  to the device and runs forward, :func:`~seqtag.losses.masked_cross_entropy`, backward and a
  (fused) Adam step.
* Per batch size, the strategies are timed in **interleaved rounds** (so a change in machine
  load hits all alike), each pass after a warm-up pass; the median counts, and each ratio is
  stored with its range over the rounds. Rounds continue (up to a limit) while they spread.
* Throughput counts **real tokens** only: padding is work, not output.
* Tagging speed: words/s of forward + decode over length-sorted batches of EWT test, on the CPU
  with 1 and 2 threads.
* Every report records the machine (CPU, cores, GPU, torch), its load before and after, the
  process's nice level, the schedule (quick or full), the optimizer setup (``--sparse-embedding``)
  and the busy processes it started (``--busy N``, with the CPU share each really took).
* All strategies run at the same thread setting; ``--threads 1`` keeps a busy core from stalling
  every parallel region (a waiting thread spins while its partner is descheduled).
"""

from seqtag.bench.command import add_arguments, main
from seqtag.bench.corpus import BenchCorpus, ewt_corpus, synthetic_corpus
from seqtag.bench.flops import flops_per_token, measure_gemm_flops, measure_peak_gemm
from seqtag.bench.load import busy_processes
from seqtag.bench.report import (
    EXACT,
    LOAD_TOLERANCE,
    RATIO_KEYS,
    TARGETS,
    best_exact,
    check_targets,
    compare_runs,
    compute_ratios,
    explain,
    format_report,
    other_ratios,
    ratio_range,
    ratio_spreads,
    speed_ratio,
    train_speed,
)
from seqtag.bench.run import (
    BENCH_POOL_FACTOR,
    EXTRA_STRATEGIES,
    FULL,
    QUICK,
    STRATEGIES,
    busy_warning,
    run_benchmark,
    strategy_model,
)
from seqtag.bench.samples import prepare_batches, stratified_batches, timed_sample
from seqtag.bench.timing import optimizers, profile_train_step, tagging_speed

__all__ = [
    "STRATEGIES", "EXTRA_STRATEGIES", "QUICK", "FULL", "BENCH_POOL_FACTOR", "RATIO_KEYS", "TARGETS",
    "EXACT", "LOAD_TOLERANCE",
    "BenchCorpus", "ewt_corpus", "synthetic_corpus",
    "busy_processes",
    "flops_per_token", "measure_gemm_flops", "measure_peak_gemm",
    "prepare_batches", "stratified_batches", "timed_sample",
    "profile_train_step", "tagging_speed", "optimizers",
    "train_speed", "speed_ratio", "ratio_range", "compute_ratios", "other_ratios", "ratio_spreads",
    "best_exact", "check_targets", "explain", "format_report", "compare_runs",
    "run_benchmark", "strategy_model", "busy_warning",
    "add_arguments", "main",
]
