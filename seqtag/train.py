"""Training a tagger: one readable loop, early stopping, the best weights kept.

The loop (:func:`fit`) fits on one screen, nanoGPT-style: bucketed mini-batches, Adam, gradient
clipping, one dev evaluation per epoch, early stopping on dev accuracy, the best weights kept.
It returns a :class:`~seqtag.tagger.TrainedTagger` (save, load, tag).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm  # plain bars: tqdm.auto wants ipywidgets in notebooks

from seqtag.batching import BucketBatchSampler, collate
from seqtag.config import TrainConfig, split_overrides
from seqtag.data import Sentence, TagsetName, subset, tags_of
from seqtag.losses import sequence_loss
from seqtag.metrics import evaluate, evaluate_joint
from seqtag.models import Tagger, TaggerConfig
from seqtag.runtime import cpu_threads, resolve_device, seed_everything, transfer_options
from seqtag.tagger import TrainedTagger
from seqtag.vocab import PAD_ID, Vocab, build_vocabs, seen_pairs

__all__ = ["fit"]


def fit(
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    config: TrainConfig | None = None,
    model_options: dict[str, Any] | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = True,
    on_epoch: Callable[[int, dict[str, list[float]]], None] | None = None,
) -> TrainedTagger:
    """Train a :class:`~seqtag.models.Tagger` on ``train``, choosing the epoch by ``dev`` accuracy.

    Args:
        train, dev: labelled sentences (:func:`seqtag.data.load_ewt`).
        config: how to train (defaults: :class:`TrainConfig`).
        model_options: :class:`~seqtag.models.TaggerConfig` fields (without the sizes, which
            come from the data) and ``char_cnn: bool``.
        checkpoint: also write the best model there (atomically) each time it improves.
        progress: show tqdm bars (``TQDM_DISABLE=1`` turns them off too).
        on_epoch: called after each epoch's dev evaluation with ``(epoch, history so far)``;
            an exception it raises stops training (Optuna's pruning raises ``TrialPruned``).

    Returns:
        The best model (by dev accuracy), in eval mode, with ``history``: per-epoch
        ``train_loss``, ``dev_loss``, ``dev_accuracy`` and ``seconds``.
    """
    cfg = config or TrainConfig()
    with cpu_threads(cfg.num_threads):
        return _fit(train, dev, cfg, dict(model_options or {}), checkpoint, progress, on_epoch)


def _expand_vocab(result: TrainedTagger, source: str, max_words: int) -> None:
    """Vocabulary expansion after training (:attr:`TrainConfig.expand_vocab`), in place."""
    from seqtag.embeddings import expand_vocabulary

    model = result.model
    old = model.embedding.weight
    words, weight, _ = expand_vocabulary(result.words, old, source, max_words)
    embedding = torch.nn.Embedding(len(words), weight.size(1), padding_idx=PAD_ID).to(old.device)
    with torch.no_grad():
        embedding.weight.copy_(weight)
    embedding.weight.requires_grad_(old.requires_grad)
    model.embedding = embedding
    model.config.vocab_size = len(words)
    result.words = words


def _check_dev_tags(dev: Sequence[Sentence], tagset: TagsetName, known: Vocab, n_train: int) -> None:
    """Refuse a dev tag the training sentences never have: no tagger trained on them can predict it."""
    for i, sentence in enumerate(dev):
        for tag in sentence.tags(tagset):
            if tag not in known:
                where = f"line {sentence.line}" if sentence.line else f"sentence {i}"
                name = f" ({sentence.sent_id})" if sentence.sent_id else ""
                raise ValueError(
                    f"dev {where}{name}: {tagset.upper()} tag {tag!r} never occurs in the {n_train} training "
                    f"sentences, so no tagger trained on them can predict it (train on more sentences, or "
                    f"map that tag to one training has)"
                )


def _fit(
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    cfg: TrainConfig,
    options: dict[str, Any],
    checkpoint: str | os.PathLike[str] | None,
    progress: bool,
    on_epoch: Callable[[int, dict[str, list[float]]], None] | None,
) -> TrainedTagger:
    use_chars = bool(options.pop("char_cnn", False))
    if split_overrides(options)[1]:  # unknown names raise there, with the list of valid ones
        raise ValueError(f"{sorted(split_overrides(options)[1])} are TrainConfig fields: set them in config")
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    train = subset(train, cfg.max_sentences, cfg.seed)
    if not train or not dev:
        raise ValueError("fit needs at least one training and one dev sentence")
    words, tags, chars = build_vocabs(train, cfg.tagset, cfg.min_freq, cfg.unk_signatures)
    aux = Vocab.build(tags_of(train, cfg.aux_tagset), unk=False) if cfg.aux_tagset else None  # type: ignore[arg-type]
    model_cfg = TaggerConfig(len(words), len(tags), char_vocab_size=len(chars) if use_chars else 0,
                             aux_num_tags=len(aux) if aux else 0, **options)
    model = Tagger(model_cfg).to(device)
    if model_cfg.joint_decoding:  # before the EMA copies the model: the pairs are part of it
        model.set_tag_pairs(seen_pairs(train, cfg.tagset, cfg.aux_tagset, tags, aux))  # type: ignore[arg-type]
    result = TrainedTagger(model, words, tags, chars, cfg.tagset, cfg, aux_tags=aux)
    if cfg.embeddings:
        from seqtag.embeddings import pretrained_matrix  # optional extra; imported only when used

        # every row: those the source lacks are random at the source's scale (not N(0, 1))
        vectors, _found = pretrained_matrix(words, cfg.embeddings, model_cfg.embedding_dim, seed=cfg.seed)
        model.load_pretrained(vectors)
    _check_dev_tags(dev, cfg.tagset, tags, len(train))
    if aux is not None:
        _check_dev_tags(dev, cfg.aux_tagset, aux, len(train))  # type: ignore[arg-type]
    second = (lambda part: tags_of(part, cfg.aux_tagset)) if cfg.aux_tagset else (lambda part: None)
    train_ds = result.dataset([s.words for s in train], tags_of(train, cfg.tagset), second(train))  # type: ignore[arg-type]
    dev_ds = result.dataset([s.words for s in dev], tags_of(dev, cfg.tagset), second(dev))  # type: ignore[arg-type]
    sampler = BucketBatchSampler(
        train_ds.lengths, cfg.batch_size, max_tokens=cfg.max_tokens, pool_factor=cfg.pool_factor, seed=cfg.seed
    )
    transfer = transfer_options(device)  # CUDA: pinned batches, copies that do not block
    loader = DataLoader(train_ds, batch_sampler=sampler, collate_fn=collate, pin_memory=transfer["pin_memory"])
    dev_sampler = BucketBatchSampler(dev_ds.lengths, cfg.eval_batch_size, shuffle=False)  # length-sorted
    dev_loader = DataLoader(dev_ds, batch_sampler=dev_sampler, collate_fn=collate, pin_memory=transfer["pin_memory"])
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, cfg.adam_beta2), weight_decay=cfg.weight_decay)
    # cosine: the rate falls from lr to 0 over every step of `epochs` epochs (stepped per batch)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs * len(loader))
                if cfg.lr_schedule == "cosine" else None)
    # The weights that are evaluated and kept: the model's own, or their moving average (EMA)
    averaged = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)) if cfg.ema else None)
    scored: Tagger = averaged.module if averaged is not None else model  # type: ignore[assignment]
    result.model = scored  # what a checkpoint holds and fit returns: the weights that were scored
    history: dict[str, list[float]] = {"train_loss": [], "dev_loss": [], "dev_accuracy": [], "seconds": []}
    if aux is not None:
        history["dev_aux_accuracy"] = []
    best_acc, best_state, stale = -1.0, None, 0
    bar = {} if progress else {"disable": True}
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        sampler.set_epoch(epoch)  # a new batch order each epoch, the same for the same seed
        model.train()
        # The summed loss stays on the device: reading it (loss.item()) at every step would make
        # Python wait for the GPU at every step. It is read once, after the epoch.
        loss_sum, tokens = torch.zeros((), dtype=torch.float64, device=device), 0
        for batch in tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, **bar):
            batch = batch.to(device, non_blocking=transfer["non_blocking"])
            loss = sequence_loss(model, batch, label_smoothing=cfg.label_smoothing)  # mean over real tokens
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_norm:  # LSTMs' gradients can spike on long sentences
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
            optimizer.step()
            if schedule is not None:
                schedule.step()
            if averaged is not None:
                averaged.update_parameters(model)
            loss_sum += loss.detach().double() * batch.num_tokens  # num_tokens: CPU lengths, no sync
            tokens += batch.num_tokens
        if aux is None:
            ev = evaluate(scored, dev_loader, tags, result.unknown_ids)
            score = ev.accuracy
        else:  # joint tagging (one encoder pass for both): the epoch is chosen by the mean of both accuracies
            ev, ev_aux = evaluate_joint(scored, dev_loader, tags, aux, result.unknown_ids)
            history["dev_aux_accuracy"].append(ev_aux.accuracy)
            score = (ev.accuracy + ev_aux.accuracy) / 2
        for key, value in [("train_loss", float(loss_sum) / tokens), ("dev_loss", ev.loss),
                           ("dev_accuracy", ev.accuracy), ("seconds", time.perf_counter() - start)]:
            history[key].append(value)
        if on_epoch is not None:
            on_epoch(epoch, history)
        if score > best_acc:  # keep the best weights, in memory and (optionally) on disk
            best_acc, stale, result.best_epoch = score, 0, epoch
            best_state = {k: v.detach().clone() for k, v in scored.state_dict().items()}
            result.history = history
            if checkpoint is not None:
                result.save(checkpoint)
        else:
            stale += 1
            if cfg.patience and stale >= cfg.patience:
                break  # early stopping: dev accuracy has not improved for `patience` epochs
        for group in optimizer.param_groups:  # big steps first, finer ones as the epochs go by
            group["lr"] *= cfg.lr_decay
    assert best_state is not None
    scored.load_state_dict(best_state)
    if cfg.embeddings and cfg.expand_vocab:
        _expand_vocab(result, cfg.embeddings, cfg.expand_vocab)
    result.history = history
    if checkpoint is not None:
        result.save(checkpoint)  # the best weights again, now with the full history
    result.model.eval()
    return result
