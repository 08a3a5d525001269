"""What the comparisons share: corpus splits, the dev-chosen epoch, results files, the command line.

Rules every comparison here follows (the book's: a conclusion needs a run that carries it):

- the epoch (the weights kept) is chosen on **dev**; **test** is scored once, with those weights;
- a results file is written whole or not at all, after every finished part of a comparison (a
  long run that stops keeps what it finished; :func:`read_results` lets it resume), and carries
  the machine it ran on, the load before and after, and the schedule.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqtag.batching import Batch
from seqtag.data import Sentence, load_ewt, tags_of
from seqtag.io import save_results
from seqtag.losses import sequence_loss
from seqtag.options import ArgumentParser
from seqtag.runtime import machine

__all__ = [
    "Splits",
    "load_splits",
    "keep_known_tags",
    "choose_epoch",
    "sentence_accuracy",
    "load_average",
    "write_results",
    "read_results",
    "parse_args",
    "interleaved_timing",
]

Splits = tuple[list[Sentence], list[Sentence], list[Sentence]]
logger = logging.getLogger("seqtag.experiments")


def load_splits(
    max_train: int | None, max_eval: int | None, data_dir: str | os.PathLike[str] | None = None
) -> Splits:
    """``(train, dev, test)`` of UD English EWT: the first ``max_train`` / ``max_eval`` sentences.

    ``None`` keeps a whole split. The first sentences (not a random subset) so that a quick
    schedule is cheap to describe; full schedules use everything.
    """
    train = load_ewt("train", data_dir)[:max_train]
    dev = load_ewt("dev", data_dir)[:max_eval]
    test = load_ewt("test", data_dir)[:max_eval]
    return train, dev, test


def keep_known_tags(
    train: Sequence[Sentence], others: Sequence[Sentence], tagset: str
) -> tuple[list[Sentence], int]:
    """The sentences of ``others`` whose ``tagset`` tags all occur in ``train``, and how many were left out.

    A tagger cannot predict a tag it never saw, and its vocabulary cannot even encode it; on all
    of EWT nothing is left out (the count is stored), on a small quick subset a few sentences are.
    """
    known = {t for tags in tags_of(train, tagset) for t in tags}  # type: ignore[arg-type]
    kept = [s for s in others if set(s.tags(tagset)) <= known]  # type: ignore[arg-type]
    return kept, len(others) - len(kept)


def choose_epoch(dev_scores: Sequence[float]) -> int:
    """The epoch (1-based) whose dev score is highest; the earliest one on ties.

    >>> choose_epoch([0.90, 0.93, 0.93, 0.92])
    2
    """
    if not dev_scores:
        raise ValueError("choose_epoch needs at least one epoch's dev score")
    best = max(dev_scores)
    return next(i for i, s in enumerate(dev_scores, start=1) if s == best)


def sentence_accuracy(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    """The fraction of sentences whose every tag is right.

    >>> sentence_accuracy([["DT", "NN"], ["DT", "VB"]], [["DT", "NN"], ["DT", "NN"]])
    0.5
    """
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted sentences but {len(gold)} gold ones")
    if not gold:
        raise ValueError("sentence_accuracy needs at least one sentence")
    return sum(list(p) == list(g) for p, g in zip(predicted, gold, strict=True)) / len(gold)


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages now (``None`` where the OS does not say)."""
    return machine()["load_average"]


def write_results(path: str | os.PathLike[str], payload: dict[str, Any], schedule: str) -> Path:
    """Write ``payload`` with its ``machine`` record (:func:`seqtag.runtime.machine`), atomically."""
    return save_results(path, payload, schedule=schedule, device="cpu")


def read_results(path: str | os.PathLike[str] | None, schedule: dict[str, Any]) -> dict[str, Any]:
    """The ``runs`` already stored in ``path`` by the same schedule (for resuming), else ``{}``."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        stored = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); delete it to start again") from None
    return dict(stored.get("runs", {})) if stored.get("schedule") == schedule else {}


def parse_args(prog: str, description: str, argv: Sequence[str] | None = None,
               timing: bool = False) -> argparse.Namespace:
    """``--full`` (else the quick schedule), ``--json PATH``, ``--data DIR`` (default ``$SEQTAG_DATA``)
    and, with ``timing``, ``--timing PATH``."""
    ap = ArgumentParser(prog=prog, description=description)
    ap.add_argument("--full", action="store_true", help="the full schedule (all of EWT); default: the quick one")
    ap.add_argument("--json", metavar="PATH", help="write the results there (resuming the runs it already holds)")
    ap.add_argument("--data", metavar="DIR", help="folder with the EWT .conllu files (default: $SEQTAG_DATA)")
    ap.add_argument("--seed", type=int, help="another seed than the schedule's (for the spread over seeds)")
    if timing:
        ap.add_argument("--timing", metavar="PATH",
                        help="instead: time the models' steps in turns on the same batches, write that there")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    if args.data is not None and not Path(args.data).is_dir():
        ap.error(f"--data {args.data}: no such folder")
    return args


def interleaved_timing(models: dict[str, nn.Module], batches: Sequence[Batch], rounds: int = 3) -> dict[str, Any]:
    """Seconds per training step and per tagging call of each model, measured in turns.

    Runs after one another under a changing load cannot be compared for speed. Here every round
    times each model on the same ``batches`` (forward, masked loss, backward and an Adam step;
    then ``predict``), in an order that reverses every round, so that a change of load hits all
    models alike; the median over rounds is kept. The weights do not matter for speed (the
    models may be untrained); they change during the timing.

    Returns:
        ``{name: {"step_seconds", "predict_seconds", "train_tokens_per_second",
        "tag_tokens_per_second", "rounds": [[step, predict], ...]}}``, seconds per batch.
    """
    if not batches or rounds < 1:
        raise ValueError("interleaved_timing needs at least one batch and one round")
    tokens = sum(b.num_tokens for b in batches)
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=1e-3) for name, m in models.items()}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
    names = list(models)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            model, optimizer = models[name], optimizers[name]
            model.train()
            start = time.perf_counter()
            for batch in batches:
                loss = sequence_loss(model, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            step = (time.perf_counter() - start) / len(batches)
            model.eval()
            start = time.perf_counter()
            with torch.no_grad():
                for batch in batches:
                    model.predict(batch.words, batch.lengths)
            times[name].append((step, (time.perf_counter() - start) / len(batches)))
    out: dict[str, Any] = {}
    for name, pairs in times.items():
        step = statistics.median(p[0] for p in pairs)
        predict = statistics.median(p[1] for p in pairs)
        out[name] = {"step_seconds": step, "predict_seconds": predict,
                     "train_tokens_per_second": tokens / len(batches) / step,
                     "tag_tokens_per_second": tokens / len(batches) / predict,
                     "rounds": [list(p) for p in pairs]}
    return out


def log(message: str) -> None:
    """Progress of a long run, on the ``seqtag.experiments`` logger (:func:`parse_args` shows it on
    stderr with the time; in a notebook it stays silent unless you configure logging)."""
    logger.info(message)
