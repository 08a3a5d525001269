"""The article's extension list, measured: the baseline, each extension alone, all of them together.

Every variant is a dict of ``train`` options (:class:`~seqtag.models.TaggerConfig` and
:class:`~seqtag.config.TrainConfig` field names, plus ``char_cnn``) on top of :data:`BASELINE`;
each is trained with :func:`seqtag.train.fit` once per tag set (UPOS and XPOS) and seed, and scored
on dev and test (accuracy, accuracy on out-of-vocabulary words, parameters, seconds per epoch).

Two schedules: :data:`QUICK` (a few hundred sentences, two epochs, a small model: what the book's
chapter runs in CI) and :data:`FULL` (all of EWT, up to 10 epochs, three seeds for the baseline
and ``all``). From a shell::

    python -m seqtag.experiments.ablation --full --resume --jobs 2 --json book/results/ablation_full.json
    python -m seqtag.experiments.ablation --candidates --resume --json book/results/ablation_candidates.json

The JSON is rewritten after every run; ``--resume`` keeps the runs already there whose options
have not changed and trains the rest, so an interrupted command continues where it stopped.

``--jobs N`` trains N runs at once in separate processes (each with one thread on a CPU; on a GPU
they share the device, so their seconds per epoch are not those of a run alone).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from seqtag.config import TrainConfig, split_overrides
from seqtag.data import Sentence, load_ewt, subset
from seqtag.experiments.ablation_results import (
    Job,
    Run,
    previous_runs,
    results_payload,
    save_results,
)
from seqtag.options import ArgumentParser
from seqtag.runtime import cpu_threads
from seqtag.train import fit

__all__ = [
    "BASELINE",
    "ALL",
    "EXTENSIONS",
    "Schedule",
    "QUICK",
    "FULL",
    "variants",
    "run_one",
    "jobs_of",
    "run_jobs",
    "run_ablation",
    "CANDIDATES",
    "candidate_jobs",
    "main",
]

#: The article's tagger trained sensibly: word embedding -> one left-to-right LSTM -> linear,
#: Adam with clipping, dev-based early stopping; no extension switched on.
BASELINE: dict[str, Any] = {
    "embedding_dim": 100,
    "hidden_size": 128,
    "num_layers": 1,
    "rnn": "lstm",
    "bidirectional": False,
    "dropout": 0.0,
    "rnn_dropout": 0.0,
    "word_dropout": 0.0,
    "char_cnn": False,
    "embeddings": None,
    "lr": 2e-3,
    "lr_decay": 1.0,
    "batch_size": 32,
    "clip_norm": 5.0,
    "min_freq": 2,
    "unk_signatures": True,
}

#: The seven ideas of the article's closing list, one variant each (hyper-parameter search is
#: chapter 8's business).
EXTENSIONS: dict[str, dict[str, Any]] = {
    "+glove": {"embeddings": "glove50", "expand_vocab": 100_000},
    "+gru": {"rnn": "gru"},
    "+bidirectional": {"bidirectional": True},
    "+char_cnn": {"char_cnn": True},
    "+dropout": {"dropout": 0.33, "word_dropout": 0.05},
    "+2_layers": {"num_layers": 2},
}

#: The ``all`` variant: every extension of the list together (an LSTM, not a GRU), sized as the
#: full ablation trained it. The ``best`` preset starts from this recipe, trains it longer and adds
#: a joint second output layer, a cosine schedule, an EMA of the weights, the flipped BiLSTM path
#: and a wider BiLSTM (``experiments.best`` and ``best_seeds`` measure those).
ALL: dict[str, Any] = {
    "embeddings": "glove50",
    "expand_vocab": 100_000,
    "embedding_dim": 100,
    "bidirectional": True,
    "char_cnn": True,
    "char_embedding_dim": 25,
    "char_filters": 50,
    "char_kernel_size": 3,
    "dropout": 0.33,
    "rnn_dropout": 0.33,
    "word_dropout": 0.05,
    "min_freq": 1,
    "num_layers": 2,
    "hidden_size": 128,
}

@dataclass(frozen=True)
class Schedule:
    """How much training each run gets.

    Attributes:
        epochs: at most this many epochs per run.
        patience: early stopping on dev accuracy (0: never; every run then trains ``epochs``).
        max_sentences: train on this many sentences (``None``: all 12,544).
        max_eval: evaluate on this many dev and test sentences (``None``: all).
        seeds: seeds of the runs that are repeated (``baseline`` and ``all``); others use the first.
        repeated: the variants that get every seed.
        tagsets: tag sets trained (one model each).
        model: overrides applied to every variant (e.g. a smaller model for CI).
        variants: the variants run by default (``None``: all of :func:`variants`).
    """

    epochs: int = 15
    patience: int = 4
    max_sentences: int | None = None
    max_eval: int | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    repeated: tuple[str, ...] = ("baseline", "all")
    tagsets: tuple[str, ...] = ("upos", "xpos")
    model: dict[str, Any] = field(default_factory=dict)
    variants: tuple[str, ...] | None = None


#: What the chapter runs by default (CI): small data, two epochs, a small model.
QUICK = Schedule(
    epochs=2,
    patience=0,
    max_sentences=600,
    max_eval=150,
    model={"embedding_dim": 50, "hidden_size": 32, "char_filters": 20, "batch_size": 16, "lr": 5e-3},
    variants=("baseline", *EXTENSIONS, "all"),
)
#: The real measurement: all of EWT, up to 10 epochs (early stopping), three seeds; ``all_gru``
#: only when asked for (``--variants all_gru``). (The ``best`` preset itself trains longer.)
FULL = Schedule(epochs=10, patience=3, variants=("baseline", *EXTENSIONS, "all"))


def _schedule_options(schedule: Schedule) -> dict[str, Any]:
    return {"epochs": schedule.epochs, "patience": schedule.patience}


def variants(schedule: Schedule = FULL, best: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``{name: options}`` in table order: baseline, each extension, ``all`` (:data:`ALL`, or
    ``best``) and ``all_gru`` (the same with a GRU); ``schedule.model`` and the
    schedule's epochs and patience are applied to each."""
    recipe = dict(ALL) if best is None else dict(best)
    table = {"baseline": {}, **EXTENSIONS, "all": recipe, "all_gru": {**recipe, "rnn": "gru"}}
    out = {}
    for name, extra in table.items():
        options = {**BASELINE, **extra, **schedule.model, **_schedule_options(schedule)}
        if options.get("num_layers", 1) == 1:
            options["rnn_dropout"] = 0.0
        out[name] = options
    return out


def _known_tags(sentences: Sequence[Sentence], train: Sequence[Sentence], tagset: str) -> list[Sentence]:
    """Drop sentences with a tag the training subset never shows (rare XPOS tags such as ``FW``
    in a few hundred sentences): a tagger cannot predict a tag it has no id for."""
    known = {t for s in train for t in s.tags(tagset)}  # type: ignore[arg-type]
    return [s for s in sentences if known.issuperset(s.tags(tagset))]  # type: ignore[arg-type]


Data = tuple[Sequence[Sentence], Sequence[Sentence], Sequence[Sentence]]


def run_one(
    variant: str,
    options: dict[str, Any],
    tagset: str,
    seed: int,
    schedule: Schedule,
    data: Data | None = None,
    device: str = "auto",
    embeddings: str | None = None,
) -> Run:
    """Train one variant on one tag set with one seed and score it.

    Args:
        options: the variant's ``train`` options, epochs included (see :func:`variants`).
        schedule: supplies the training subset and evaluation subset sizes.
        data: ``(train, dev, test)`` sentences; ``None`` loads UD English EWT.
        embeddings: replaces the ``"glove50"`` source (e.g. a GloVe text file where the package
            is not installed).

    The dev accuracy is the best epoch's (the one kept); test is scored once, with that model.
    """
    train, dev, test = data if data is not None else (load_ewt("train"), load_ewt("dev"), load_ewt("test"))
    train = subset(train, schedule.max_sentences, seed)
    dev, test = (_known_tags(subset(s, schedule.max_eval, seed=0), train, tagset) for s in (dev, test))
    opts = dict(options)
    if embeddings is not None and opts.get("embeddings"):
        opts["embeddings"] = embeddings
    opts.update(tagset=tagset, seed=seed, device=device, max_sentences=None)
    model_opts, train_opts = split_overrides(opts)
    result = fit(train, dev, TrainConfig(**train_opts), model_opts, progress=False)
    with cpu_threads(result.train_config.num_threads):  # as many threads as training had
        ev_test = result.evaluate(test)
        # The history's dev accuracy is the best epoch's; vocabulary expansion comes after it.
        expanded = opts.get("embeddings") and opts.get("expand_vocab")
        dev_accuracy = result.evaluate(dev).accuracy if expanded else max(result.history["dev_accuracy"])
    seconds = result.history["seconds"]
    return Run(
        variant=variant,
        tagset=tagset,
        seed=seed,
        dev_accuracy=dev_accuracy,
        test_accuracy=ev_test.accuracy,
        test_oov_accuracy=ev_test.oov_accuracy,
        test_oov_rate=ev_test.oov_rate,
        parameters=result.model.num_parameters(),
        seconds_per_epoch=sum(seconds) / len(seconds),
        epochs=len(seconds),
        best_epoch=result.best_epoch,
        load_average=round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    )


def jobs_of(schedule: Schedule, names: Sequence[str] | None = None,
            best: dict[str, Any] | None = None) -> list[Job]:
    """``(variant, options, tagset, seed)`` of every run of the ablation, in table order."""
    table = variants(schedule, best)
    unknown = sorted(set(names or ()) - set(table))
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; known: {list(table)}")
    jobs = []
    for name in names or schedule.variants or list(table):
        seeds = schedule.seeds if name in schedule.repeated else schedule.seeds[:1]
        jobs += [(name, table[name], tagset, seed) for seed in seeds for tagset in schedule.tagsets]
    return jobs


def _worker(args: tuple[Any, ...]) -> Run:
    torch.set_num_threads(1)  # several runs share the machine's cores
    return run_one(*args)


def run_jobs(
    jobs: Sequence[Job],
    schedule: Schedule,
    *,
    data: Data | None = None,
    device: str = "auto",
    workers: int = 1,
    embeddings: str | None = None,
    on_run: Callable[[Run], None] | None = None,
) -> list[Run]:
    """Train ``jobs`` (from :func:`jobs_of`), in this process or in ``workers`` processes.

    Args:
        data: ``(train, dev, test)``; ``None`` loads UD English EWT (in each worker process).
        workers: runs trained at once in worker processes (1: here, in order). Workers load
            EWT themselves, so ``data`` must be ``None`` then.
        on_run: called with each finished :class:`Run` (to print or save progress).

    Returns:
        The runs, in the order of ``jobs``.
    """
    if workers > 1 and data is not None:
        raise ValueError("data cannot be sent to worker processes; use workers=1 or data=None (EWT)")
    if data is None and workers == 1:
        data = (load_ewt("train"), load_ewt("dev"), load_ewt("test"))
    args = [(name, opts, tagset, seed, schedule, data, device, embeddings) for name, opts, tagset, seed in jobs]
    runs: list[Run | None] = [None] * len(args)
    if workers == 1:
        for i, a in enumerate(args):
            runs[i] = run = run_one(*a)
            if on_run is not None:
                on_run(run)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_worker, a): i for i, a in enumerate(args)}
            for future in as_completed(futures):
                runs[futures[future]] = run = future.result()
                if on_run is not None:
                    on_run(run)
    return [r for r in runs if r is not None]


def run_ablation(
    schedule: Schedule = QUICK,
    names: Sequence[str] | None = None,
    *,
    best: dict[str, Any] | None = None,
    **kwargs: Any,
) -> list[Run]:
    """Train every variant (or ``names``) for every tag set and seed of ``schedule``.

    ``best`` replaces :data:`ALL` as the ``all`` variant; other keyword
    arguments go to :func:`run_jobs` (``data``, ``device``, ``workers``, ``embeddings``, ``on_run``).
    """
    return run_jobs(jobs_of(schedule, names, best), schedule, **kwargs)


#: Changes to the ``all`` recipe (:data:`ALL`), each trained once on UPOS.
CANDIDATES: dict[str, dict[str, Any]] = {
    "no_vocab_expansion": {"expand_vocab": 0},
    "word_dropout_0.25": {"word_dropout": 0.25},
    "word_dropout_0.25_min_freq_2": {"word_dropout": 0.25, "min_freq": 2},
}


def candidate_jobs(schedule: Schedule = FULL, seed: int = 0, tagset: str = "upos") -> list[Job]:
    """One run of each of :data:`CANDIDATES` (the ``all`` recipe with one change)."""
    all_opts = variants(schedule)["all"]
    return [(name, {**all_opts, **change}, tagset, seed) for name, change in CANDIDATES.items()]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m seqtag.experiments.ablation``: run the ablation (or the candidates, or time the best preset)."""
    ap = ArgumentParser(prog="python -m seqtag.experiments.ablation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="the FULL schedule (default: QUICK)")
    mode.add_argument("--candidates", action="store_true",
                      help="train each recipe of CANDIDATES once (UPOS, FULL schedule)")
    ap.add_argument("--json", type=Path, help="write the results here (rewritten after every run)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the runs already in --json that match (same options) and run the rest")
    ap.add_argument("--variants", nargs="+", help="only these variants (or candidates)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    ap.add_argument("--embeddings", default=None, help="GloVe text file to use instead of glove50")
    args = ap.parse_args(argv)
    command = "python -m seqtag.experiments.ablation " + " ".join(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    schedule = FULL if args.full or args.candidates else QUICK
    if args.candidates:
        jobs = [j for j in candidate_jobs(schedule) if not args.variants or j[0] in args.variants]
    else:
        jobs = jobs_of(schedule, args.variants)
    runs, options, minutes_before = (
        previous_runs(args.json, jobs) if args.resume and args.json else ([], {}, 0.0)
    )
    done = {(r.variant, r.tagset, r.seed) for r in runs}
    todo = sorted((j for j in jobs if (j[0], j[2], j[3]) not in done), key=lambda j: j[3])  # seed 0 first
    options.update({name: opts for name, opts, _, _ in jobs})
    order = {(n, t, s): i for i, (n, _, t, s) in enumerate(jobs)}  # table order; other kept runs after
    order.update({(r.variant, r.tagset, r.seed): len(jobs) + i for i, r in enumerate(runs)
                  if (r.variant, r.tagset, r.seed) not in order})
    print(f"{len(todo)} of {len(jobs)} runs to train ({len(runs)} runs kept from {args.json})", flush=True)

    def save() -> None:
        if args.json:
            minutes = minutes_before + (time.perf_counter() - started) / 60
            save_results(args.json, results_payload(command, schedule, options, runs, minutes * 60))

    def show(run: Run) -> None:
        print(f"{run.variant:>26} {run.tagset} seed {run.seed}: dev {run.dev_accuracy:.4f} "
              f"test {run.test_accuracy:.4f} ({run.seconds_per_epoch:.1f} s/epoch)", flush=True)
        runs.append(run)
        runs.sort(key=lambda r: order[(r.variant, r.tagset, r.seed)])
        save()  # after every run: an interrupted command loses only the runs in progress

    run_jobs(todo, schedule, device=args.device, workers=args.jobs, embeddings=args.embeddings, on_run=show)
    runs.sort(key=lambda r: order[(r.variant, r.tagset, r.seed)])
    save()
    if args.json:
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
