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
  each rank's *sum* over its real tokens divided by the global token count, times the world size
  to undo DDP's averaging: the step is then exactly the single-process step. The global token
  count needs no communication: every rank knows every rank's batches
  (:meth:`DistributedBucketSampler.step_tokens`).

The sub-package has three modules: :mod:`~seqtag.distributed.sampler` (who gets which batch),
:mod:`~seqtag.distributed.ddp` (process group, the exact global loss, one step, evaluation) and
:mod:`~seqtag.distributed.training` (the run behind ``python -m seqtag.distributed``).
"""

from seqtag.distributed.ddp import (
    LossSum,
    all_reduce_sum,
    ddp_step,
    evaluate,
    global_token_mean,
    setup,
    teardown,
    world,
)
from seqtag.distributed.sampler import DistributedBucketSampler, even_out
from seqtag.distributed.training import DistConfig, main, parse_args, run

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
    "world",
    "run",
    "parse_args",
    "main",
]
