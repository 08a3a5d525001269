"""Sampling for data-parallel training: disjoint, complete, equal-length shares of every epoch."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

import torch.distributed as dist
from torch.utils.data import Sampler

from seqtag.batching import BucketBatchSampler

__all__ = ["even_out", "DistributedBucketSampler"]


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

    def step_tokens(self) -> list[int]:
        """Real tokens of each step of the epoch over *all* ranks, in :meth:`steps` order.

        Every rank knows every rank's batches, so the global token count of a step (the
        denominator of the global token mean, :func:`seqtag.distributed.ddp.global_token_mean`)
        needs no communication.
        """
        lengths = self.bucket.lengths
        return [sum(lengths[i] for batch in step for i in batch) for step in self.steps()]

    def __iter__(self) -> Iterator[list[int]]:
        return iter([step[self.rank] for step in self.steps()])

    def __len__(self) -> int:
        return len(self.steps())
