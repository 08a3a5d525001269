"""The training run behind ``torchrun -m seqtag.distributed``: a BiLSTM tagger on UD English EWT.

Every rank runs :func:`run` with the same :class:`DistConfig`. Per step a rank reads nothing back
from its device: the loss accumulates there, and the global token count comes from the sampler;
per epoch there is one all-reduce for the training loss and one for the dev accuracy. The best
epoch's weights (by dev accuracy, the same on every rank) are kept and written by rank 0.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from seqtag.batching import TaggingDataset, collate
from seqtag.config import TrainConfig
from seqtag.data import subset
from seqtag.distributed.ddp import LossSum, all_reduce_sum, ddp_step, evaluate, setup, teardown
from seqtag.distributed.sampler import DistributedBucketSampler
from seqtag.models import Tagger, TaggerConfig
from seqtag.runtime import cpu_threads
from seqtag.tagger import TrainedTagger
from seqtag.vocab import Vocab, build_vocabs

__all__ = ["DistConfig", "run", "parse_args", "main"]

EVAL_BATCH_SIZE = 256
POOL_FACTOR = 50  # DistributedBucketSampler's default, recorded in the checkpoint


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class DistConfig:
    """Everything ``python -m seqtag.distributed`` takes; each field's ``metadata["help"]`` is its
    ``--help`` line (:mod:`seqtag.options`)."""

    epochs: int = field(default=2, metadata=_help("passes over the training set (int >= 1)"))
    batch_size: int = field(default=32, metadata=_help("sentences per batch on each process (int >= 1)"))
    lr: float = field(default=2e-3, metadata=_help("Adam's learning rate (float > 0)"))
    clip_norm: float = field(default=5.0, metadata=_help("clip the gradients' global L2 norm to this (float; 0: off)"))
    min_freq: int = field(default=2, metadata=_help("training words seen fewer times become <unk> (int >= 1)"))
    embedding_dim: int = field(default=100, metadata=_help("word embedding size (int >= 1)"))
    hidden_size: int = field(default=128, metadata=_help("LSTM state size per direction (int >= 1)"))
    dropout: float = field(default=0.33, metadata=_help("dropout on embeddings and LSTM outputs (float in [0, 1))"))
    crf: bool = field(default=False, metadata=_help("put a linear-chain CRF on top (Viterbi decoding)"))
    train_size: int = field(
        default=0, metadata=_help("train on a seeded random subset of this many sentences (int >= 0; 0: all)")
    )
    dev_size: int = field(default=0, metadata=_help("evaluate on the first N dev sentences (int >= 0; 0: all)"))
    tagset: Literal["upos", "xpos"] = field(default="upos", metadata=_help("tags to learn: upos or xpos"))
    seed: int = field(default=0, metadata=_help("seed of the weights, the subset and the batch order (int >= 0)"))
    device: str = field(
        default="auto", metadata=_help("auto (each rank's GPU cuda:LOCAL_RANK if there is one, else CPU), cpu or cuda")
    )
    threads: int = field(default=0, metadata=_help("torch CPU threads per process (int >= 0; 0: torch's default)"))
    data_dir: str = field(
        default="", metadata=_help("folder holding the en_ewt-ud-*.conllu files ('': $SEQTAG_DATA or the cache)")
    )
    out: str = field(
        default="", metadata=_help("write the best epoch's model there (rank 0; a seqtag checkpoint); '': none")
    )
    json: bool = field(default=False, metadata=_help("print the run's log as one JSON line (rank 0)"))

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "min_freq", "embedding_dim", "hidden_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("train_size", "dev_size", "threads", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.tagset not in ("upos", "xpos"):
            raise ValueError(f"tagset must be 'upos' or 'xpos', got {self.tagset!r}")

    def train_config(self) -> TrainConfig:
        """What this run did, as the :class:`~seqtag.config.TrainConfig` a checkpoint records:
        a vocabulary without unknown-word signatures, no early stopping, no expansion."""
        return TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, clip_norm=self.clip_norm or None,
            min_freq=self.min_freq, tagset=self.tagset, seed=self.seed, device=self.device,
            max_sentences=self.train_size or None, unk_signatures=False, patience=0, expand_vocab=0,
            embeddings=None, num_threads=self.threads or None, pool_factor=POOL_FACTOR,
            eval_batch_size=EVAL_BATCH_SIZE, lr_decay=1.0, weight_decay=0.0,
        )


def _datasets(cfg: DistConfig) -> tuple[TaggingDataset, TaggingDataset, tuple[Vocab, Vocab, Vocab]]:
    from seqtag.data import load_ewt, tags_of

    data_dir = cfg.data_dir or None
    train = subset(load_ewt("train", data_dir), cfg.train_size or None, cfg.seed)
    dev = load_ewt("dev", data_dir)[: cfg.dev_size or None]
    # Same data, same seed on every rank -> the same vocabularies and ids everywhere. No unknown-word
    # signatures: words are looked up as they are (train_config() records exactly that).
    words, tags, chars = build_vocabs(train, cfg.tagset, cfg.min_freq, signatures=False)
    train_ds = TaggingDataset([s.words for s in train], tags_of(train, cfg.tagset), words, tags)
    dev_ds = TaggingDataset([s.words for s in dev], tags_of(dev, cfg.tagset), words, tags)
    return train_ds, dev_ds, (words, tags, chars)


def run(cfg: DistConfig) -> dict[str, float]:
    """Train a BiLSTM tagger on UD English EWT in every process of the group.

    Returns:
        The run's log (the same on every rank): ``world_size``, ``steps_per_epoch``, ``epoch``,
        ``train_loss``, ``dev_accuracy`` (all ranks' counts reduced), ``best_epoch``,
        ``train_seconds`` (training steps only), ``total_seconds``, ``train_tokens_per_epoch``.
    """
    rank, size, device = setup(cfg.device)
    try:
        with cpu_threads(cfg.threads or None):  # restored afterwards, for callers in Python
            return _train(cfg, rank, size, device)
    finally:
        teardown()


def _train(cfg: DistConfig, rank: int, size: int, device: torch.device) -> dict[str, float]:
    """The body of :func:`run`, inside its thread setting and process group."""
    torch.manual_seed(cfg.seed)  # same seed everywhere (DDP also broadcasts rank 0's weights)
    train_ds, dev_ds, (words, tags, chars) = _datasets(cfg)
    train_sampler = DistributedBucketSampler(
        train_ds.lengths, cfg.batch_size, num_replicas=size, rank=rank, seed=cfg.seed, pool_factor=POOL_FACTOR
    )
    dev_sampler = DistributedBucketSampler(
        dev_ds.lengths, EVAL_BATCH_SIZE, num_replicas=size, rank=rank, shuffle=False
    )
    pin = device.type == "cuda"  # pinned batches: the copies to the GPU overlap the work
    train_loader = DataLoader(train_ds, batch_sampler=train_sampler, collate_fn=collate, pin_memory=pin)
    dev_loader = DataLoader(dev_ds, batch_sampler=dev_sampler, collate_fn=collate, pin_memory=pin)
    config = TaggerConfig(
        vocab_size=len(words), num_tags=len(tags), embedding_dim=cfg.embedding_dim,
        hidden_size=cfg.hidden_size, dropout=cfg.dropout, crf=cfg.crf,
    )
    model = Tagger(config).to(device)
    wrapped: nn.Module = LossSum(model)
    if dist.is_initialized():  # under torchrun, even with one process: the same code path
        wrapped = DistributedDataParallel(wrapped)  # broadcasts rank 0's weights
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    log: dict[str, float] = {"world_size": size, "steps_per_epoch": len(train_sampler)}
    history: dict[str, list[float]] = {"train_loss": [], "dev_accuracy": [], "seconds": []}
    best_accuracy, best_epoch, best_state = -1.0, 0, None
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        epoch_start = time.perf_counter()
        train_sampler.set_epoch(epoch)
        step_tokens = train_sampler.step_tokens()  # every rank's tokens per step, no communication
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)  # read once per epoch
        tokens = 0
        for batch, global_tokens in zip(train_loader, step_tokens, strict=True):
            ls, n = ddp_step(wrapped, batch, optimizer, device, cfg.clip_norm, global_tokens)
            loss_sum += ls
            tokens += n
        loss_all, tokens_all = all_reduce_sum([loss_sum, tokens], device)
        seconds = time.perf_counter() - epoch_start
        accuracy, _ = evaluate(model, dev_loader, device)
        train_loss = loss_all / max(tokens_all, 1.0)
        for key, value in (("train_loss", train_loss), ("dev_accuracy", accuracy), ("seconds", seconds)):
            history[key].append(value)
        if accuracy > best_accuracy:  # the same on every rank: the counts were all-reduced
            best_accuracy, best_epoch = accuracy, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        log.update(epoch=epoch + 1, train_loss=train_loss, dev_accuracy=accuracy, best_epoch=best_epoch)
        if rank == 0 and not cfg.json:
            print(f"epoch {epoch + 1}: train loss {train_loss:.4f}, dev accuracy "
                  f"{accuracy:.4f}, {seconds:.1f} s ({size} process(es))", flush=True)
    log["train_seconds"] = sum(history["seconds"])  # training steps only, no evaluation
    log["total_seconds"] = time.perf_counter() - start
    log["train_tokens_per_epoch"] = float(sum(train_ds.lengths))
    assert best_state is not None  # epochs >= 1
    model.load_state_dict(best_state)  # the best epoch's weights, on every rank
    if rank == 0 and cfg.out:  # one writer: the weights are the same on every rank
        trained = TrainedTagger(model, words, tags, chars, cfg.tagset, cfg.train_config(), history, best_epoch)
        trained.save(cfg.out)  # seqtag.tagger's format: `python -m seqtag tag` can load it
    if dist.is_initialized():
        dist.barrier()  # nobody leaves before the checkpoint is written
    if rank == 0 and cfg.json:
        print(json.dumps(log), flush=True)
    return log


def parse_args(argv: Sequence[str] | None = None) -> DistConfig:
    """The :class:`DistConfig` a command line describes (``--help`` from the fields' help)."""
    from seqtag.options import ArgumentParser, add_options, build

    ap = ArgumentParser(
        prog="python -m seqtag.distributed",
        description="Train the BiLSTM tagger on UD English EWT with DistributedDataParallel. "
        "Launch with: torchrun --standalone --nproc_per_node N -m seqtag.distributed [options] "
        "(gloo on CPUs, NCCL on GPUs); without torchrun it runs in one process.",
    )
    ap.add_argument("command", nargs="?", default="train", choices=["train"], help="what to do (train)")
    add_options(ap, DistConfig)
    args = ap.parse_args(argv)
    try:
        return build(DistConfig, args)
    except ValueError as exc:
        ap.error(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
