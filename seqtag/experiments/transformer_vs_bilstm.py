"""A Transformer encoder against the BiLSTM on UD English EWT UPOS, same budget (the book's chapter 10).

"Same budget" means: the same training sentences and vocabulary, the same length-bucketed batches
(32 sentences), the same number of epochs, the same loop (Adam, gradient clipping at 5, the masked
loss :func:`seqtag.losses.sequence_loss`), the same CPU thread setting (one), and both timed the
same way (training steps only; dev evaluation timed apart). Each model keeps the weights of its
best **dev** epoch (:func:`~seqtag.experiments.common.choose_epoch`) and is scored once on **test**.

Run::

    SEQTAG_DATA=/path/to/ewt python -m seqtag.experiments.transformer_vs_bilstm --full \\
        --json book/results/transformer_vs_bilstm.json
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from seqtag.batching import BucketBatchSampler, TaggingDataset, collate
from seqtag.data import Sentence, tags_of
from seqtag.experiments.common import (
    Splits,
    choose_epoch,
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
from seqtag.losses import sequence_loss
from seqtag.models import Tagger, TaggerConfig
from seqtag.transformer import TransformerConfig, TransformerTagger
from seqtag.vocab import UNK_ID, Vocab, build_vocabs, lookup_forms

__all__ = ["Schedule", "QUICK", "FULL", "run", "train_and_choose", "build_model", "score", "timing", "main"]


@dataclass(frozen=True)
class Schedule:
    """How much to run: epochs for both models, the first ``max_train``/``max_eval`` sentences (None: all)."""

    name: str
    epochs: int
    max_train: int | None
    max_eval: int | None
    batch_size: int = 32
    seed: int = 0
    threads: int = 1
    bilstm: tuple[tuple[str, Any], ...] = (("embedding_dim", 100), ("hidden_size", 128), ("dropout", 0.33),
                                           ("lr", 2e-3))
    transformer: tuple[tuple[str, Any], ...] = (("d_model", 128), ("nhead", 4), ("num_layers", 2),
                                                ("dim_feedforward", 256), ("dropout", 0.1), ("lr", 5e-4))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["bilstm"], out["transformer"] = dict(self.bilstm), dict(self.transformer)
        return out


# Smoke run: seconds; it shows the code works, it carries no conclusion.
QUICK = Schedule("quick", epochs=2, max_train=1000, max_eval=300)
# All of EWT, 10 epochs each (the book's default is 12; cut to fit a shared 2-core machine).
FULL = Schedule("full", epochs=10, max_train=None, max_eval=None)


def build_model(name: str, schedule: Schedule, vocab_size: int, num_tags: int) -> tuple[nn.Module, float]:
    """``("bilstm" | "transformer")`` -> (a freshly seeded model, its learning rate)."""
    torch.manual_seed(schedule.seed)
    options = dict(schedule.bilstm if name == "bilstm" else schedule.transformer)
    lr = float(options.pop("lr"))
    if name == "bilstm":
        return Tagger(TaggerConfig(vocab_size, num_tags, **options)), lr
    if name == "transformer":
        return TransformerTagger(TransformerConfig(vocab_size, num_tags, **options)), lr
    raise ValueError(f"unknown model {name!r}: 'bilstm' or 'transformer'")


def train_and_choose(model: nn.Module, train_ds: TaggingDataset, dev_score: Callable[[nn.Module], float],
                     epochs: int, lr: float, batch_size: int = 32, seed: int = 0,
                     clip_norm: float = 5.0) -> dict[str, Any]:
    """Train ``model`` for ``epochs`` epochs; keep (load back) the weights of its best dev epoch.

    Args:
        model: a tagger with ``forward(words, lengths, chars)`` -> ``(B, T, C)`` (on the CPU).
        train_ds: encoded training sentences with tags.
        dev_score: called after each epoch with the model in eval mode; higher is better.

    Returns:
        ``best_epoch`` (1-based, :func:`choose_epoch`), ``dev_scores``, ``train_loss``,
        ``train_seconds`` (training steps only, per epoch), ``eval_seconds`` and ``tokens_per_epoch``.
    """
    sampler = BucketBatchSampler(train_ds.lengths, batch_size, seed=seed)
    loader = DataLoader(train_ds, batch_sampler=sampler, collate_fn=collate)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    out: dict[str, Any] = {"dev_scores": [], "train_loss": [], "train_seconds": [], "eval_seconds": []}
    best_state: dict[str, torch.Tensor] | None = None
    for epoch in range(1, epochs + 1):
        sampler.set_epoch(epoch)
        model.train()
        start, loss_sum, tokens = time.perf_counter(), 0.0, 0
        for batch in loader:
            loss = sequence_loss(model, batch)  # mean over the batch's real tokens
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
            optimizer.step()
            loss_sum, tokens = loss_sum + loss.item() * batch.num_tokens, tokens + batch.num_tokens
        out["train_seconds"].append(time.perf_counter() - start)
        out["train_loss"].append(loss_sum / tokens)
        start = time.perf_counter()
        model.eval()
        score = dev_score(model)
        out["eval_seconds"].append(time.perf_counter() - start)
        out["dev_scores"].append(score)
        if choose_epoch(out["dev_scores"]) == epoch:  # a new best on dev: keep these weights
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        log(f"  epoch {epoch}: dev {score:.4f}, {out['train_seconds'][-1]:.1f} s training")
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    out["best_epoch"] = choose_epoch(out["dev_scores"])
    out["tokens_per_epoch"] = sum(train_ds.lengths)
    return out


def _dataset(sentences: Sequence[Sentence], words: Vocab, tags: Vocab) -> TaggingDataset:
    forms = [lookup_forms(words, s.words, signatures=True) for s in sentences]
    return TaggingDataset(forms, tags_of(sentences, "upos"), words, tags)


@torch.no_grad()
def score(model: nn.Module, loader: DataLoader, tags: Vocab, unknown_ids: Sequence[int]) -> dict[str, Any]:
    """Token accuracy, out-of-vocabulary accuracy and the predicted tags (input order) of ``model``.

    The same for both models: ``model.predict(words, lengths)`` -> ``(B, T)`` tag ids, compared
    with the gold tags at the real tokens only (``batch.mask``, True = real token).
    """
    model.eval()
    unknown = torch.tensor(list(unknown_ids))
    tokens = correct = oov_tokens = oov_correct = 0
    predictions: list[list[str]] = [[] for _ in range(len(loader.dataset))]  # type: ignore[arg-type]
    for batch in loader:
        pred = model.predict(batch.words, batch.lengths)
        right = pred.eq(batch.tags) & batch.mask
        oov = torch.isin(batch.words, unknown) & batch.mask
        tokens, correct = tokens + int(batch.mask.sum()), correct + int(right.sum())
        oov_tokens, oov_correct = oov_tokens + int(oov.sum()), oov_correct + int((right & oov).sum())
        for row, i, n in zip(pred, batch.index.tolist(), batch.lengths.tolist(), strict=True):
            predictions[i] = tags.decode(row[:n].tolist())
    return {"accuracy": correct / max(tokens, 1), "oov_accuracy": oov_correct / max(oov_tokens, 1),
            "tokens": tokens, "predictions": predictions}


def _loader(ds: TaggingDataset) -> DataLoader:
    return DataLoader(ds, batch_sampler=BucketBatchSampler(ds.lengths, 256, shuffle=False), collate_fn=collate)


def run(schedule: Schedule, out: str | os.PathLike[str] | None = None, data: Splits | None = None,
        data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Train and score both models under ``schedule``; return (and write to ``out``) the results.

    ``data``: ``(train, dev, test)`` sentences instead of EWT. With ``out`` the file is rewritten
    after each model, and a model it already holds for the same schedule is not trained again.
    """
    train, dev_all, test_all = data if data is not None else load_splits(schedule.max_train, schedule.max_eval, data_dir)
    dev, dev_dropped = keep_known_tags(train, dev_all, "upos")
    test, test_dropped = keep_known_tags(train, test_all, "upos")
    words, tags, _ = build_vocabs(train, "upos", min_freq=2, signatures=True)
    unknown = [UNK_ID] + [i for i, w in enumerate(words.itos) if w.startswith("<unk:")]
    train_ds, dev_ds, test_ds = (_dataset(s, words, tags) for s in (train, dev, test))
    dev_loader, test_loader = _loader(dev_ds), _loader(test_ds)
    gold = tags_of(test, "upos")
    runs: dict[str, Any] = read_results(out, schedule.to_dict())
    before = torch.get_num_threads()
    torch.set_num_threads(schedule.threads)
    # PyTorch's eval fast path says once that nested tensors are a prototype API (chapter 10 shows them).
    warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors")
    try:
        for name in ("bilstm", "transformer"):
            if name in runs:
                log(f"{name}: stored, skipped")
                continue
            log(f"{name}: {len(train)} training sentences, {schedule.epochs} epochs")
            load_before = load_average()
            model, lr = build_model(name, schedule, len(words), len(tags))
            trained = train_and_choose(model, train_ds, lambda m: score(m, dev_loader, tags, unknown)["accuracy"],
                                       schedule.epochs, lr, schedule.batch_size, schedule.seed)
            ev = score(model, test_loader, tags, unknown)  # once, with the dev-chosen weights
            seconds = sum(trained["train_seconds"])
            runs[name] = {
                "tagset": "upos",
                "model": name,
                "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "lr": lr,
                **trained,
                "train_tokens_per_second": trained["tokens_per_epoch"] * schedule.epochs / seconds,
                "test_accuracy": ev["accuracy"],
                "test_oov_accuracy": ev["oov_accuracy"],
                "test_sentence_accuracy": sentence_accuracy(ev["predictions"], gold),
                "test_tokens": ev["tokens"],
                "train_sentences": len(train),
                "dev_sentences": len(dev),
                "test_sentences": len(test),
                "dev_dropped": dev_dropped,
                "test_dropped": test_dropped,
                "threads": torch.get_num_threads(),
                "load_before": load_before,
                "load_after": load_average(),
            }
            log(f"{name}: best dev epoch {trained['best_epoch']}, test accuracy {ev['accuracy']:.4f}")
            if out is not None:
                write_results(out, {"experiment": "transformer_vs_bilstm", "schedule": schedule.to_dict(),
                                    "runs": runs}, schedule.name)
    finally:
        torch.set_num_threads(before)
    return {"experiment": "transformer_vs_bilstm", "schedule": schedule.to_dict(), "runs": runs}


def timing(schedule: Schedule, data: Splits | None = None, data_dir: str | os.PathLike[str] | None = None,
           batches: int = 30, rounds: int = 3) -> dict[str, Any]:
    """Seconds per training step and per tagging call of both (fresh) models, timed in turns on the
    same ``batches`` batches (:func:`~seqtag.experiments.common.interleaved_timing`), with the
    schedule's threads, and the Transformer/BiLSTM ratios."""
    train = data[0] if data is not None else load_splits(schedule.max_train, 0, data_dir)[0]
    words, tags, _ = build_vocabs(train, "upos", min_freq=2, signatures=True)
    ds = _dataset(train, words, tags)
    loader = DataLoader(ds, batch_sampler=BucketBatchSampler(ds.lengths, schedule.batch_size, seed=schedule.seed),
                        collate_fn=collate)
    chosen = [b for _, b in zip(range(batches), loader, strict=False)]
    before = torch.get_num_threads()
    torch.set_num_threads(schedule.threads)
    warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors")
    try:
        models = {name: build_model(name, schedule, len(words), len(tags))[0] for name in ("bilstm", "transformer")}
        out: dict[str, Any] = {"batches": batches, "rounds": rounds, "batch_size": schedule.batch_size,
                               "threads": schedule.threads, **interleaved_timing(models, chosen, rounds)}
    finally:
        torch.set_num_threads(before)
    out["transformer_over_bilstm_step"] = out["transformer"]["step_seconds"] / out["bilstm"]["step_seconds"]
    out["transformer_over_bilstm_predict"] = out["transformer"]["predict_seconds"] / out["bilstm"]["predict_seconds"]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("python -m seqtag.experiments.transformer_vs_bilstm",
                      "A Transformer encoder against the BiLSTM tagger, same epochs and threads, on EWT UPOS.", argv,
                      timing=True)
    schedule = FULL if args.full else QUICK
    if args.timing:
        measured = timing(schedule, data_dir=args.data)
        write_results(args.timing, {"experiment": "transformer_vs_bilstm_timing", "schedule": schedule.to_dict(),
                                    **measured}, schedule.name)
        print(f"written: {Path(args.timing)}")
        return 0
    result = run(schedule, args.json, data_dir=args.data)
    for name, r in result["runs"].items():
        print(f"{name:12} {r['parameters']:>9,} parameters | {r['train_tokens_per_second']:8,.0f} tokens/s | "
              f"best dev epoch {r['best_epoch']}/{len(r['dev_scores'])} | test accuracy {r['test_accuracy']:.4f}")
    if args.json:
        print(f"written: {Path(args.json)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
