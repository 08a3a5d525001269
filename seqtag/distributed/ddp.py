"""Process group helpers, the exact global token-mean loss, one DDP step, evaluation over ranks.

Everything here also works in a plain single process (no process group): the reductions then
return their input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from seqtag.batching import Batch
from seqtag.losses import sequence_loss

__all__ = ["world", "all_reduce_sum", "global_token_mean", "LossSum", "ddp_step", "evaluate", "setup", "teardown"]


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_sum(values: Sequence[float | Tensor], device: torch.device) -> list[float]:
    """Sum numbers over all ranks with one ``all_reduce``, then read them back (one host sync).

    ``values`` may be Python numbers or 0-d tensors already on ``device`` (they are stacked there,
    without reading them first). ``device`` must be one the backend can reduce on: CPU for gloo,
    the rank's GPU for NCCL. Without a process group the values come back unchanged.
    """
    t = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for v in values])
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def global_token_mean(
    loss_sum: Tensor, num_tokens: int, device: torch.device, global_tokens: int | None = None
) -> Tensor:
    """Turn this rank's summed loss into its share of the global batch's token mean.

    Args:
        loss_sum: scalar, this rank's loss summed over its real tokens.
        num_tokens: this rank's number of real tokens.
        global_tokens: all ranks' real tokens at this step, if known
            (:meth:`~seqtag.distributed.sampler.DistributedBucketSampler.step_tokens`: no
            communication); ``None`` sums ``num_tokens`` over the ranks (one all-reduce and a sync).

    Returns:
        ``loss_sum * world_size / global_tokens``: after DDP averages the gradients over ranks,
        they are the gradients of (sum over all ranks' tokens) / (all ranks' tokens).
    """
    _, size = world()
    if global_tokens is None:
        (total,) = all_reduce_sum([num_tokens], device)
    else:
        total = float(global_tokens)
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
        return sequence_loss(self.model, batch, reduction="sum")


def ddp_step(
    wrapped: nn.Module,
    batch: Batch,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    clip_norm: float | None = None,
    global_tokens: int | None = None,
) -> tuple[Tensor, int]:
    """One optimizer step on this rank's ``batch``; all ranks must call it together.

    Args:
        wrapped: ``DistributedDataParallel(LossSum(model))`` (or a bare ``LossSum`` in one process).
        batch: this rank's :class:`~seqtag.batching.Batch` (any device: it is moved to ``device``,
            ``non_blocking`` from pinned memory).
        clip_norm: clip the gradients' global norm; after ``backward`` they are already averaged,
            so every rank clips the same gradients the same way.
        global_tokens: all ranks' real tokens at this step (see :func:`global_token_mean`);
            ``None`` costs one extra all-reduce.

    Returns:
        ``(loss_sum, num_tokens)`` of this rank: ``loss_sum`` a detached 0-d tensor on ``device``
        (not read, so the step never waits for the device), ``num_tokens`` an int.
    """
    batch = batch.to(device, non_blocking=device.type == "cuda")
    optimizer.zero_grad(set_to_none=True)
    loss_sum = wrapped(batch.words, batch.lengths, batch.tags, batch.mask, batch.chars)
    global_token_mean(loss_sum, batch.num_tokens, device, global_tokens).backward()
    if clip_norm:
        torch.nn.utils.clip_grad_norm_(wrapped.parameters(), clip_norm)
    optimizer.step()
    return loss_sum.detach(), batch.num_tokens


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[Batch], device: torch.device) -> tuple[float, int]:
    """Tagging accuracy over all ranks' shares of ``loader``: ``(accuracy, tokens)``.

    Each rank predicts its own batches (``model.predict``: Viterbi with a CRF); the counts of
    correct and real tokens stay on the device and are summed over ranks with one ``all_reduce``.
    """
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    total = 0
    for batch in loader:
        batch = batch.to(device, non_blocking=device.type == "cuda")
        predicted = model.predict(batch.words, batch.lengths, batch.chars)
        correct += ((predicted == batch.tags) & batch.mask).sum()
        total += batch.num_tokens  # lengths live on the CPU: no sync
    model.train(was_training)
    correct_all, total_all = all_reduce_sum([correct, total], device)
    return correct_all / max(total_all, 1.0), int(total_all)


def setup(device: str = "auto") -> tuple[int, int, torch.device]:
    """Join the process group that ``torchrun`` described in the environment.

    Picks NCCL and ``cuda:LOCAL_RANK`` on GPUs, gloo on CPUs. Without ``torchrun`` (no ``RANK`` in
    the environment) it starts no group and returns ``(0, 1, device)``.

    Returns:
        ``(rank, world_size, device)``.
    """
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for but no CUDA device is available here; use 'cpu'")
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
