"""Multi-process data-parallel training with ``torch.distributed`` (DistributedDataParallel).

Run it with ``torchrun``, which starts one process per CPU socket / GPU and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` for each::

    torchrun --standalone --nproc_per_node 2 -m seqtag.distributed --epochs 1   # 2 processes here
    python -m seqtag.distributed --epochs 1                                      # 1 process, no torchrun

Each process (a *rank*) holds a full copy of the model and trains on its own share of every
epoch's batches; DDP averages the gradients across ranks during ``backward()``, so all copies take
the same optimizer step. The three lessons of the book carry over, with one twist each:

* **pad**: each rank pads only its own batches. :class:`DistributedBucketSampler` gives the ranks
  batches of similar lengths at each step (a rank with longer sentences would keep the others
  waiting) and *the same number of batches*, or the ranks that run out first hang in the
  all-reduce of the others.
* **don't let the model see pads**: unchanged (packing is per rank).
* **don't let the loss see pads**: a per-rank token mean, averaged by DDP over ranks, is *not* the
  token mean of the global batch when ranks hold different numbers of real tokens. The loss here is
  each rank's *sum* over its real tokens divided by the global token count (one all-reduce), times
  the world size to undo DDP's averaging: the step is then exactly the single-process step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler

from seqtag.batching import Batch, BucketBatchSampler, TaggingDataset, collate
from seqtag.config import TrainConfig
from seqtag.data import subset
from seqtag.losses import sequence_loss
from seqtag.models import Tagger, TaggerConfig
from seqtag.tagger import TrainedTagger
from seqtag.vocab import Vocab, build_vocabs

__all__ = [
    "DistributedBucketSampler",
    "even_out",
    "DistConfig",
    "LossSum",
    "global_token_mean",
    "all_reduce_sum",
    "ddp_step",
    "evaluate",
    "setup",
    "teardown",
    "run",
    "main",
]


# ---------------------------------------------------------------------------------------------
# Sampling: disjoint, complete, equal-length shares of every epoch


def even_out(batches: list[list[int]], num_replicas: int) -> list[list[int]]:
    """Make the number of batches a multiple of ``num_replicas`` without dropping or repeating anyone.

    Splits the largest batches in two (similar lengths stay together) until the count divides;
    only when there are too few sentences for that does it merge the two smallest batches instead.

    Raises:
        ValueError: fewer sentences than replicas (some rank would get no batch at all).
    """
    n = sum(len(b) for b in batches)
    if n < num_replicas:
        raise ValueError(
            f"{n} sentence(s) cannot be shared by {num_replicas} processes: every rank needs at "
            "least one; use fewer processes or more data"
        )
    out = [list(b) for b in batches if b]
    target = math.ceil(len(out) / num_replicas) * num_replicas
    if target <= n:
        while len(out) < target:
            i = max(range(len(out)), key=lambda k: len(out[k]))
            half = len(out[i]) // 2
            out[i : i + 1] = [out[i][:half], out[i][half:]]
    else:
        while len(out) % num_replicas:
            out.sort(key=len)
            out[0:2] = [out[0] + out[1]]
    return out


class DistributedBucketSampler(Sampler[list[int]]):
    """Length-bucketed batches, shared out among the ranks of a process group.

    Every rank builds the same global list of batches (same seed, same epoch) with
    :class:`seqtag.batching.BucketBatchSampler`, evens it out with :func:`even_out`, groups it into
    steps of ``num_replicas`` batches of similar padded length, shuffles the steps, and keeps batch
    ``rank`` of each step. So, per epoch: ranks' batches are disjoint, together they hold every
    sentence exactly once, and every rank gets the same number of batches.

    Args:
        lengths: ``N`` sentence lengths.
        batch_size: sentences per batch (before evening out; a split batch holds fewer).
        num_replicas: the world size; defaults to ``dist.get_world_size()``.
        rank: this process's rank; defaults to ``dist.get_rank()``.
        max_tokens, pool_factor: as in :class:`~seqtag.batching.BucketBatchSampler`.
        shuffle: ``False`` for evaluation (a fixed length-sorted order).
        seed: must be the same on every rank; epoch ``e`` uses ``seed + e`` (:meth:`set_epoch`).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        num_replicas: int | None = None,
        rank: int | None = None,
        max_tokens: int | None = None,
        shuffle: bool = True,
        pool_factor: int = 50,
        seed: int = 0,
    ) -> None:
        if num_replicas is None or rank is None:
            if not (dist.is_available() and dist.is_initialized()):
                raise RuntimeError(
                    "no process group: call torch.distributed.init_process_group first "
                    "(torchrun sets it up), or pass num_replicas and rank"
                )
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got rank={rank}")
        self.bucket = BucketBatchSampler(
            lengths, batch_size, max_tokens=max_tokens, shuffle=shuffle, pool_factor=pool_factor, seed=seed
        )
        if len(self.bucket.lengths) < num_replicas:
            raise ValueError(
                f"{len(self.bucket.lengths)} sentence(s) cannot be shared by {num_replicas} "
                "processes: every rank needs at least one; use fewer processes or more data"
            )
        self.num_replicas, self.rank = num_replicas, rank
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order; call it on every rank before each epoch."""
        self.epoch = epoch
        self.bucket.set_epoch(epoch)

    def steps(self) -> list[list[list[int]]]:
        """The epoch's steps, each a list of ``num_replicas`` batches (one per rank)."""
        batches = even_out(self.bucket.batches(), self.num_replicas)
        lengths = self.bucket.lengths
        batches.sort(key=lambda b: (max(lengths[i] for i in b), len(b)))  # similar steps together
        r = self.num_replicas
        steps = [batches[k : k + r] for k in range(0, len(batches), r)]
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(steps)
        return steps

    def __iter__(self) -> Iterator[list[int]]:
        return iter([step[self.rank] for step in self.steps()])

    def __len__(self) -> int:
        return len(self.steps())


# ---------------------------------------------------------------------------------------------
# Process group helpers (all of them also work in a plain single process)


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """Sum numbers over all ranks (one ``all_reduce``); returned unchanged without a group.

    ``device`` must be one the backend can reduce on: CPU for gloo, the rank's GPU for NCCL.
    """
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def global_token_mean(loss_sum: Tensor, num_tokens: int, device: torch.device) -> Tensor:
    """Turn this rank's summed loss into its share of the global batch's token mean.

    Args:
        loss_sum: scalar, this rank's loss summed over its real tokens.
        num_tokens: this rank's number of real tokens.

    Returns:
        ``loss_sum * world_size / global_tokens``: after DDP averages the gradients over ranks,
        they are the gradients of (sum over all ranks' tokens) / (all ranks' tokens).
    """
    _, size = world()
    (total,) = all_reduce_sum([num_tokens], device)
    return loss_sum * (size / max(total, 1.0))


class LossSum(nn.Module):
    """Wraps a tagger so that DDP's ``forward`` is the loss: every parameter (a CRF's too) is used
    inside ``forward``, which is what DDP's gradient hooks expect.

    ``forward(words, lengths, tags, mask, chars=None)`` returns the loss *summed* over the real
    tokens (``seqtag.losses.sequence_loss``'s token mean times the number of tokens): the
    softmax cross-entropy, or the CRF negative log-likelihood when ``model.config.crf``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, words: Tensor, lengths: Tensor, tags: Tensor, mask: Tensor, chars: Tensor | None = None
    ) -> Tensor:
        batch = Batch(words=words, lengths=lengths, mask=mask, tags=tags, chars=chars)
        return sequence_loss(self.model, batch) * mask.sum()


def ddp_step(
    wrapped: nn.Module,
    batch: Batch,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    clip_norm: float | None = None,
) -> tuple[float, int]:
    """One optimizer step on this rank's ``batch``; all ranks must call it together.

    Args:
        wrapped: ``DistributedDataParallel(LossSum(model))`` (or a bare ``LossSum`` in one process).
        batch: this rank's :class:`~seqtag.batching.Batch` (any device: it is moved to ``device``).
        clip_norm: clip the gradients' global norm; after ``backward`` they are already averaged,
            so every rank clips the same gradients the same way.

    Returns:
        ``(loss_sum, num_tokens)`` of this rank, for logging.
    """
    batch = batch.to(device)
    optimizer.zero_grad(set_to_none=True)
    loss_sum = wrapped(batch.words, batch.lengths, batch.tags, batch.mask, batch.chars)
    global_token_mean(loss_sum, batch.num_tokens, device).backward()
    if clip_norm:
        torch.nn.utils.clip_grad_norm_(wrapped.parameters(), clip_norm)
    optimizer.step()
    return float(loss_sum.detach()), batch.num_tokens


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[float, int]:
    """Tagging accuracy over all ranks' shares of ``loader``: ``(accuracy, tokens)``.

    Each rank predicts its own batches (``model.predict``: Viterbi with a CRF); the counts of
    correct and real tokens are summed over ranks with one ``all_reduce``.
    """
    was_training = model.training
    model.eval()
    correct = total = 0
    for batch in loader:
        batch = batch.to(device)
        predicted = model.predict(batch.words, batch.lengths, batch.chars)
        correct += int(((predicted == batch.tags) & batch.mask).sum())
        total += batch.num_tokens
    model.train(was_training)
    correct_all, total_all = all_reduce_sum([correct, total], device)
    return correct_all / max(total_all, 1.0), int(total_all)


# ---------------------------------------------------------------------------------------------
# The training run behind `torchrun -m seqtag.distributed`


@dataclass
class DistConfig:
    """Everything ``python -m seqtag.distributed`` takes (also saved in the checkpoint)."""

    epochs: int = 2
    batch_size: int = 32
    lr: float = 2e-3
    clip_norm: float = 5.0
    min_freq: int = 2
    embedding_dim: int = 100
    hidden_size: int = 128
    dropout: float = 0.33
    crf: bool = False
    train_size: int = 0  # 0 = all training sentences (else a seeded random subset)
    dev_size: int = 0  # 0 = the whole dev set (else its first dev_size sentences)
    tagset: str = "upos"
    seed: int = 0
    device: str = "auto"  # auto: each rank's GPU (cuda:LOCAL_RANK) if there is one, else the CPU
    threads: int = 0  # torch threads per process; 0 = leave torch's default
    data_dir: str = ""
    out: str = ""  # checkpoint path (seqtag.train format), written by rank 0 only; "" = none
    json: bool = False  # print the result as one JSON line (rank 0)


def setup(device: str = "auto") -> tuple[int, int, torch.device]:
    """Join the process group that ``torchrun`` described in the environment.

    Picks NCCL and ``cuda:LOCAL_RANK`` on GPUs, gloo on CPUs. Without ``torchrun`` (no ``RANK`` in
    the environment) it starts no group and returns ``(0, 1, device)``.

    Returns:
        ``(rank, world_size, device)``.
    """
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for but no CUDA device is available here")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if "RANK" not in os.environ:
        return 0, 1, dev
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", device_id=dev if use_cuda else None)
    return dist.get_rank(), dist.get_world_size(), dev


def teardown() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _datasets(cfg: DistConfig) -> tuple[TaggingDataset, TaggingDataset, tuple[Vocab, Vocab, Vocab]]:
    from seqtag.data import load_ewt, tags_of

    data_dir = cfg.data_dir or None
    train = subset(load_ewt("train", data_dir), cfg.train_size or None, cfg.seed)
    dev = load_ewt("dev", data_dir)[: cfg.dev_size or None]
    # Same data, same seed on every rank -> the same vocabularies and ids everywhere.
    words, tags, chars = build_vocabs(train, cfg.tagset, cfg.min_freq)
    tagset = cfg.tagset  # type: ignore[assignment]
    train_ds = TaggingDataset([s.words for s in train], tags_of(train, tagset), words, tags)  # type: ignore[arg-type]
    dev_ds = TaggingDataset([s.words for s in dev], tags_of(dev, tagset), words, tags)  # type: ignore[arg-type]
    return train_ds, dev_ds, (words, tags, chars)


def run(cfg: DistConfig) -> dict[str, float]:
    """Train a BiLSTM tagger on UD English EWT in every process of the group.

    Returns:
        The run's log (the same on every rank): ``world_size``, ``steps_per_epoch``, ``epoch``,
        ``train_loss``, ``dev_accuracy`` (all ranks' counts reduced), ``train_seconds``.
    """
    rank, size, device = setup(cfg.device)
    try:
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)  # same seed everywhere (DDP also broadcasts rank 0's weights)
        train_ds, dev_ds, (words, tags, chars) = _datasets(cfg)
        train_sampler = DistributedBucketSampler(
            train_ds.lengths, cfg.batch_size, num_replicas=size, rank=rank, seed=cfg.seed
        )
        dev_sampler = DistributedBucketSampler(
            dev_ds.lengths, 256, num_replicas=size, rank=rank, shuffle=False
        )
        train_loader = DataLoader(train_ds, batch_sampler=train_sampler, collate_fn=collate)
        dev_loader = DataLoader(dev_ds, batch_sampler=dev_sampler, collate_fn=collate)
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
        start = time.perf_counter()
        for epoch in range(cfg.epochs):
            epoch_start = time.perf_counter()
            train_sampler.set_epoch(epoch)
            model.train()
            loss_sum = tokens = 0.0
            for batch in train_loader:
                ls, n = ddp_step(wrapped, batch, optimizer, device, cfg.clip_norm)
                loss_sum, tokens = loss_sum + ls, tokens + n
            loss_all, tokens_all = all_reduce_sum([loss_sum, tokens], device)
            seconds = time.perf_counter() - epoch_start
            accuracy, _ = evaluate(model, dev_loader, device)
            for key, value in (("train_loss", loss_all / tokens_all), ("dev_accuracy", accuracy),
                               ("seconds", seconds)):
                history[key].append(value)
            log.update(epoch=epoch + 1, train_loss=loss_all / tokens_all, dev_accuracy=accuracy)
            if rank == 0 and not cfg.json:
                print(f"epoch {epoch + 1}: train loss {loss_all / tokens_all:.4f}, dev accuracy "
                      f"{accuracy:.4f}, {seconds:.1f} s ({size} process(es))", flush=True)
        log["train_seconds"] = sum(history["seconds"])  # training steps only, no evaluation
        log["total_seconds"] = time.perf_counter() - start
        log["train_tokens_per_epoch"] = float(sum(train_ds.lengths))
        if rank == 0 and cfg.out:  # one writer: the weights are the same on every rank
            train_config = TrainConfig(
                epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, clip_norm=cfg.clip_norm,
                min_freq=cfg.min_freq, tagset=cfg.tagset, seed=cfg.seed,  # type: ignore[arg-type]
                device=cfg.device, max_sentences=cfg.train_size or None,
            )
            trained = TrainedTagger(model, words, tags, chars, cfg.tagset, train_config, history, cfg.epochs)
            trained.save(cfg.out)  # seqtag.train's format: `python -m seqtag tag` can load it
        if dist.is_initialized():
            dist.barrier()  # nobody leaves before the checkpoint is written
        if rank == 0 and cfg.json:
            print(json.dumps(log), flush=True)
        return log
    finally:
        teardown()


def parse_args(argv: Sequence[str] | None = None) -> DistConfig:
    defaults = DistConfig()
    ap = argparse.ArgumentParser(
        prog="python -m seqtag.distributed",
        description="Train the BiLSTM tagger on UD English EWT with DistributedDataParallel. "
        "Launch with: torchrun --standalone --nproc_per_node N -m seqtag.distributed [options] "
        "(gloo on CPUs, NCCL on GPUs); without torchrun it runs in one process.",
    )
    ap.add_argument("command", nargs="?", default="train", choices=["train"], help="what to do (train)")
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            ap.add_argument(flag, action="store_true", help=f"(default: {value})")
        else:
            ap.add_argument(flag, type=type(value), default=value, help=f"(default: {value!r})")
    args = vars(ap.parse_args(argv))
    args.pop("command")
    cfg = DistConfig(**args)
    if cfg.epochs < 1 or cfg.batch_size < 1:
        ap.error("--epochs and --batch-size must be >= 1")
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
