"""BiLSTM-CRF against BiLSTM-softmax on UD English EWT, UPOS and XPOS (the book's chapter 9).

Both taggers are the same BiLSTM trained by the same loop (:func:`seqtag.train.fit`: Adam,
clipping, early stopping on dev accuracy, the best dev epoch kept); only ``crf`` differs. Each
is scored once on **test** with the weights of its best **dev** epoch: token accuracy, whole
sentences right, seconds per epoch, time to tag the test set, and where the CRF is meant to
help: tag bigrams of the output that never occur in training, and errors that follow errors.

Run::

    SEQTAG_DATA=/path/to/ewt python -m seqtag.experiments.crf_vs_softmax --full \\
        --json book/results/crf_vs_softmax.json
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from seqtag.batching import BucketBatchSampler, TaggingDataset, collate
from seqtag.config import TrainConfig
from seqtag.data import Sentence, tags_of
from seqtag.experiments.common import (
    Splits,
    interleaved_timing,
    keep_known_tags,
    load_average,
    load_splits,
    log,
    parse_args,
    read_results,
    sentence_accuracy,
    write_results,
)
from seqtag.models import Tagger, TaggerConfig
from seqtag.tagger import TrainedTagger
from seqtag.train import fit
from seqtag.vocab import build_vocabs, lookup_forms

__all__ = ["Schedule", "QUICK", "FULL", "run", "timing", "train_one", "score_on_test", "transition_stats", "main"]

MODELS = {"softmax": False, "crf": True}


@dataclass(frozen=True)
class Schedule:
    """How much to run. ``max_train``/``max_eval``: the first sentences of train and dev/test (None: all)."""

    name: str
    epochs: int
    patience: int
    max_train: int | None
    max_eval: int | None
    tagsets: tuple[str, ...] = ("upos", "xpos")
    seed: int = 0
    model: dict[str, Any] = field(default_factory=lambda: {"embedding_dim": 100, "hidden_size": 128, "dropout": 0.33})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tagsets"] = list(self.tagsets)
        return out


# Smoke run: seconds on one thread; it shows the code works, it carries no conclusion.
QUICK = Schedule("quick", epochs=3, patience=0, max_train=1000, max_eval=300,
                 model={"embedding_dim": 64, "hidden_size": 64, "dropout": 0.33})
# All of EWT, the book's default BiLSTM (presets "default"), up to 10 epochs (cut from 15 to fit a 2-core machine shared with other jobs), early stopping after 3
# epochs without a better dev accuracy.
FULL = Schedule("full", epochs=10, patience=3, max_train=None, max_eval=None)


def train_one(train: Sequence[Sentence], dev: Sequence[Sentence], tagset: str, crf: bool,
              schedule: Schedule) -> tuple[TrainedTagger, float]:
    """Train one tagger (one CPU thread); returns it (the best dev epoch's weights) and the wall seconds."""
    config = TrainConfig(epochs=schedule.epochs, patience=schedule.patience, tagset=tagset,  # type: ignore[arg-type]
                         seed=schedule.seed, device="cpu", num_threads=1)
    start = time.perf_counter()
    def progress(epoch: int, history: dict[str, list[float]]) -> None:
        log(f"  epoch {epoch}: dev {history['dev_accuracy'][-1]:.4f}, {history['seconds'][-1]:.1f} s")

    tagger = fit(train, dev, config, {**schedule.model, "crf": crf}, progress=False, on_epoch=progress)
    return tagger, time.perf_counter() - start


def _bigrams(sequences: Sequence[Sequence[str]]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for tags in sequences:
        padded = ["<s>", *tags, "</s>"]
        counts.update(zip(padded, padded[1:], strict=False))
    return counts


def transition_stats(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]],
                     seen: Counter[tuple[str, str]]) -> dict[str, float | int]:
    """Tag bigrams of ``predicted`` never seen in training (``seen``), and how errors follow errors.

    Returns ``unseen_bigrams`` (count, with sentence start ``<s>`` and end ``</s>``), ``bigrams``
    (all of them), ``p_error_after_error`` = P(error at t | error at t-1) and
    ``p_error_after_right`` = P(error at t | right at t-1).
    """
    counts = _bigrams(predicted)
    follow: Counter[tuple[bool, bool]] = Counter()
    for pred, true in zip(predicted, gold, strict=True):
        for t in range(1, len(true)):
            follow[(pred[t - 1] != true[t - 1], pred[t] != true[t])] += 1
    after_error = follow[(True, True)] + follow[(True, False)]
    after_right = follow[(False, True)] + follow[(False, False)]
    return {
        "unseen_bigrams": sum(c for pair, c in counts.items() if pair not in seen),
        "bigrams": sum(counts.values()),
        "p_error_after_error": follow[(True, True)] / max(after_error, 1),
        "p_error_after_right": follow[(False, True)] / max(after_right, 1),
    }


def score_on_test(tagger: TrainedTagger, test: Sequence[Sentence], train: Sequence[Sentence]) -> dict[str, Any]:
    """Score a trained tagger on ``test``, once: accuracy, sentence accuracy, tagging time, transitions."""
    gold = tags_of(test, tagger.tagset)  # type: ignore[arg-type]
    ev = tagger.evaluate(test)
    start = time.perf_counter()
    tagger.tag([s.words for s in test])
    tag_seconds = time.perf_counter() - start
    seen = _bigrams(tags_of(train, tagger.tagset))  # type: ignore[arg-type]
    return {
        "test_accuracy": ev.accuracy,
        "test_sentence_accuracy": sentence_accuracy(ev.predictions, gold),
        "test_oov_accuracy": ev.oov_accuracy,
        "test_tokens": ev.tokens,
        "test_sentences": len(test),
        "tag_seconds": tag_seconds,
        "tag_tokens_per_second": ev.tokens / tag_seconds,
        **transition_stats(ev.predictions, gold, seen),
    }


def crf_transitions(tagger: TrainedTagger, train: Sequence[Sentence], top: int = 12) -> dict[str, Any]:
    """The learned transition scores between the ``top`` most frequent training tags, and their means
    over tag pairs seen and never seen in training (``<pad>`` left out)."""
    crf = tagger.model.crf
    if crf is None:
        raise ValueError("crf_transitions needs a tagger trained with crf=True")
    scores = crf.transitions.detach().cpu()
    itos = tagger.tags.itos
    seen = _bigrams(tags_of(train, tagger.tagset))  # type: ignore[arg-type]
    pair_seen = torch.tensor([[(a, b) in seen for b in itos] for a in itos])
    real = torch.ones_like(pair_seen)
    real[0, :] = real[:, 0] = False  # <pad> is never a real tag
    counts = Counter(t for tags in tags_of(train, tagger.tagset) for t in tags)  # type: ignore[arg-type]
    frequent = [t for t, _ in counts.most_common(top)]
    index = [itos.index(t) for t in frequent]
    return {
        "tags": frequent,
        "scores": [[round(float(x), 4) for x in row] for row in scores[index][:, index]],
        "mean_seen": float(scores[pair_seen & real].mean()),
        "mean_unseen": float(scores[~pair_seen & real].mean()) if (~pair_seen & real).any() else None,
    }


def run(schedule: Schedule, out: str | os.PathLike[str] | None = None, data: Splits | None = None,
        data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Run every (tagset, model) pair of ``schedule``; return (and write to ``out``) the results.

    ``data``: ``(train, dev, test)`` sentences instead of EWT (tests use a tiny corpus). With
    ``out``, the file is rewritten after each finished pair, and pairs it already holds for the
    same schedule are not run again.
    """
    train, dev_all, test_all = data if data is not None else load_splits(schedule.max_train, schedule.max_eval, data_dir)
    runs: dict[str, Any] = read_results(out, schedule.to_dict())
    for tagset in schedule.tagsets:
        dev, dev_dropped = keep_known_tags(train, dev_all, tagset)
        test, test_dropped = keep_known_tags(train, test_all, tagset)
        for name, crf in MODELS.items():
            key = f"{tagset}_{name}"
            if key in runs:
                log(f"{key}: stored, skipped")
                continue
            log(f"{key}: training on {len(train)} sentences, {len(dev)} dev")
            load_before = load_average()
            tagger, wall = train_one(train, dev, tagset, crf, schedule)
            history = tagger.history
            result: dict[str, Any] = {
                "tagset": tagset,
                "model": name,
                "best_epoch": tagger.best_epoch,  # chosen on dev by fit's early stopping
                "epochs_run": len(history["dev_accuracy"]),
                "dev_accuracy": history["dev_accuracy"],
                "train_loss": history["train_loss"],
                "seconds_per_epoch": history["seconds"],  # training + one dev evaluation
                "train_wall_seconds": wall,
                "train_sentences": len(train),
                "train_tokens": sum(len(s) for s in train),
                "dev_sentences": len(dev),
                "dev_dropped": dev_dropped,
                "test_dropped": test_dropped,
                "parameters": tagger.model.num_parameters(),
                **score_on_test(tagger, test, train),
                "load_before": load_before,
                "load_after": load_average(),
            }
            if crf:
                result["transitions"] = crf_transitions(tagger, train)
            runs[key] = result
            log(f"{key}: best epoch {result['best_epoch']} of {result['epochs_run']}, "
                f"test accuracy {result['test_accuracy']:.4f}")
            if out is not None:
                write_results(out, {"experiment": "crf_vs_softmax", "schedule": schedule.to_dict(),
                                    "runs": runs}, schedule.name)
    return {"experiment": "crf_vs_softmax", "schedule": schedule.to_dict(), "runs": runs}


def timing(schedule: Schedule, data: Splits | None = None, data_dir: str | os.PathLike[str] | None = None,
           batches: int = 30, rounds: int = 3) -> dict[str, Any]:
    """Seconds per training step and per tagging call, softmax and CRF timed in turns on the same
    ``batches`` batches of 32 training sentences (:func:`~seqtag.experiments.common.interleaved_timing`),
    per tag set, with the CRF/softmax ratios. Fresh models of the schedule's size, one thread."""
    train = data[0] if data is not None else load_splits(schedule.max_train, 0, data_dir)[0]
    out: dict[str, Any] = {"batches": batches, "rounds": rounds, "batch_size": 32}
    for tagset in schedule.tagsets:
        words, tags, _ = build_vocabs(train, tagset, 2, signatures=True)
        forms = [lookup_forms(words, s.words, signatures=True) for s in train]
        ds = TaggingDataset(forms, tags_of(train, tagset), words, tags)  # type: ignore[arg-type]
        loader = DataLoader(ds, batch_sampler=BucketBatchSampler(ds.lengths, 32, seed=schedule.seed),
                            collate_fn=collate)
        chosen = [b for _, b in zip(range(batches), loader, strict=False)]
        models = {}
        for name, crf in MODELS.items():
            torch.manual_seed(schedule.seed)
            models[name] = Tagger(TaggerConfig(len(words), len(tags), crf=crf, **schedule.model))
        times = interleaved_timing(models, chosen, rounds)
        times["crf_over_softmax_step"] = times["crf"]["step_seconds"] / times["softmax"]["step_seconds"]
        times["crf_over_softmax_predict"] = times["crf"]["predict_seconds"] / times["softmax"]["predict_seconds"]
        out[tagset] = times
        log(f"{tagset}: CRF step {times['crf_over_softmax_step']:.2f}x, tagging {times['crf_over_softmax_predict']:.2f}x")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("python -m seqtag.experiments.crf_vs_softmax",
                      "BiLSTM-CRF against BiLSTM-softmax on UD English EWT (UPOS and XPOS).", argv, timing=True)
    torch.set_num_threads(1)
    schedule = FULL if args.full else QUICK
    if args.seed is not None:  # another seed of the same schedule (write it to another file)
        schedule = replace(schedule, seed=args.seed)
    if args.timing:
        measured = timing(schedule, data_dir=args.data)
        write_results(args.timing, {"experiment": "crf_vs_softmax_timing", "schedule": schedule.to_dict(),
                                    **measured}, schedule.name)
        print(f"written: {Path(args.timing)}")
        return 0
    result = run(schedule, args.json, data_dir=args.data)
    for key, r in result["runs"].items():
        print(f"{key:14} test accuracy {r['test_accuracy']:.4f} | sentences {r['test_sentence_accuracy']:.3f} | "
              f"best epoch {r['best_epoch']}/{r['epochs_run']} | {sum(r['seconds_per_epoch']) / r['epochs_run']:.1f} s/epoch")
    if args.json:
        print(f"written: {Path(args.json)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
