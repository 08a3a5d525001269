"""A batched, masked linear-chain conditional random field (CRF), in log space.

A softmax tagger picks each tag on its own; a CRF scores whole tag *sequences*:

    score(x, y) = start[y_0] + sum_t emissions[t, y_t] + sum_{t>=1} transitions[y_{t-1}, y_t] + end[y_{L-1}]

and is trained on ``log p(y | x) = score(x, y) - log Z(x)``, where the log-partition ``log Z`` sums
over all ``C ** L`` tag sequences with the forward algorithm in ``O(L C^2)``. Decoding picks the best
sequence with the Viterbi algorithm. Both run over a padded batch at once: a sentence's score never
depends on what lies in its padded positions (the book's third lesson, "don't let the loss see
pads", applied to a structured loss).

The API follows ``pytorch-crf`` (``torchcrf.CRF``): ``CRF(num_tags, batch_first=True)``,
``crf(emissions, tags, mask, reduction)`` is the log-likelihood and ``crf.decode(emissions, mask)``
returns lists of tag ids. Masks are bool, ``True`` = real token, each row a prefix of ``True``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["CRF", "CRFReduction", "check_prefix_mask", "check_values"]

CRFReduction = Literal["sum", "mean", "token_mean", "none"]


def check_values(t: Tensor) -> bool:
    """Whether argument checks may read ``t``'s values: only on the CPU, and not while compiling.

    Reading a value of a GPU tensor in Python (``bool(t.any())``) waits until the GPU has caught up
    with everything queued before it: done at every step it stalls the pipeline. So checks on
    *values* (a mask's shape of prefix, tag ids in range) run where they are free, on CPU tensors
    (the tests, ``device="cpu"`` training, anything you debug on the CPU); on a GPU only shapes,
    dtypes and devices are checked. To debug values on a GPU, run the same batch on the CPU.
    """
    return t.device.type == "cpu" and not torch.compiler.is_compiling()


def check_prefix_mask(mask: Tensor, shape: tuple[int, int], device: torch.device) -> None:
    """Check that ``mask`` is a bool ``(B, T)`` tensor whose rows are ``True...True False...False``.

    Args:
        mask: ``(B, T)`` bool, ``True`` on real tokens.
        shape: the ``(B, T)`` the mask must have.
        device: the device the mask must be on (that of the scores).

    Raises:
        ValueError: wrong dtype, shape or device; and, for CPU masks (see :func:`check_values`), an
            empty sentence or a real token after padding.
    """
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool (True = real token), got {mask.dtype}; use mask.bool()")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask has shape {tuple(mask.shape)} but the scores need (B, T) = {shape}")
    if mask.device != device:
        raise ValueError(f"mask is on {mask.device} but the scores are on {device}: move it there")
    if mask.size(1) == 0:
        raise ValueError("the mask has no time steps: every sentence needs length >= 1")
    if not check_values(mask):
        return
    if not bool(mask[:, 0].all()):
        bad = 0 if mask.size(1) == 0 else int(torch.nonzero(~mask[:, 0])[0])
        raise ValueError(
            f"sentence {bad} has no real token (mask[{bad}, 0] is False): every sentence needs "
            "length >= 1 and its tokens first; drop empty sentences before batching"
        )
    gaps = mask[:, 1:] & ~mask[:, :-1]  # True after False: a real token behind padding
    if bool(gaps.any()):
        b, t = (int(v) for v in torch.nonzero(gaps)[0])
        raise ValueError(
            f"sentence {b} has a real token at position {t + 1} after padding at position {t}: "
            "masks must be left-aligned (each row True...True then False...False); "
            "build them with seqtag.batching.lengths_to_mask"
        )


class CRF(nn.Module):
    """Linear-chain CRF over ``num_tags`` tags, batched and masked.

    Args:
        num_tags: ``C``, the number of tags (``<pad>`` included if it is a tag id).
        batch_first: ``True`` (default here, unlike ``torchcrf``): tensors are ``(B, T, ...)``;
            ``False``: ``(T, B, ...)``.

    Attributes:
        start_transitions: ``(C,)`` score of starting a sentence with each tag.
        end_transitions: ``(C,)`` score of ending a sentence with each tag.
        transitions: ``(C, C)``; ``transitions[i, j]`` scores tag ``j`` right after tag ``i``.
    """

    def __init__(self, num_tags: int, batch_first: bool = True) -> None:
        if not isinstance(num_tags, int) or num_tags < 1:
            raise ValueError(f"num_tags must be a positive int, got {num_tags!r}")
        super().__init__()
        self.num_tags = num_tags
        self.batch_first = batch_first
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in ``[-0.1, 0.1]``, as ``torchcrf`` does."""
        for p in (self.start_transitions, self.end_transitions, self.transitions):
            nn.init.uniform_(p, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}, batch_first={self.batch_first}"

    # ----------------------------------------------------------------------------------------
    # input handling
    def _prepare(
        self, emissions: Tensor, tags: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """Validate and return batch-first ``(emissions, tags, mask)`` with pads neutralised."""
        if not isinstance(emissions, Tensor) or emissions.dim() != 3:
            shape = tuple(emissions.shape) if isinstance(emissions, Tensor) else type(emissions)
            order = "(B, T, C)" if self.batch_first else "(T, B, C)"
            raise ValueError(f"emissions must be {order}, got {shape}")
        if not emissions.is_floating_point():
            raise ValueError(f"emissions must be float scores, got {emissions.dtype}")
        if emissions.size(2) != self.num_tags:
            raise ValueError(
                f"emissions have {emissions.size(2)} scores per token but the CRF has "
                f"num_tags={self.num_tags}"
            )
        if not self.batch_first:
            emissions = emissions.transpose(0, 1)
            tags = None if tags is None else tags.transpose(0, 1)
            mask = None if mask is None else mask.transpose(0, 1)
        shape = (emissions.size(0), emissions.size(1))
        if emissions.size(0) == 0:
            raise ValueError("empty batch: emissions have batch size 0")
        if mask is None:
            mask = torch.ones(shape, dtype=torch.bool, device=emissions.device)
        check_prefix_mask(mask, shape, emissions.device)
        if tags is not None:
            if tuple(tags.shape) != shape:
                raise ValueError(f"tags have shape {tuple(tags.shape)}, expected (B, T) = {shape}")
            if tags.is_floating_point() or tags.dtype == torch.bool:
                raise ValueError(f"tags must be integer tag ids, got {tags.dtype}; use tags.long()")
            if tags.device != emissions.device:
                raise ValueError(f"tags are on {tags.device} but emissions on {emissions.device}")
            tags = tags.long().masked_fill(~mask, 0)  # padded tags may hold anything (-100...)
            if check_values(tags) and bool(((tags < 0) | (tags >= self.num_tags)).any()):
                b, t = (int(v) for v in torch.nonzero((tags < 0) | (tags >= self.num_tags))[0])
                raise ValueError(
                    f"tag id {int(tags[b, t])} at sentence {b}, position {t} is outside "
                    f"[0, {self.num_tags}): num_tags too small for the tag vocabulary?"
                )
        # Zero the padded emissions: garbage (even inf/NaN) there can reach neither value nor grad.
        emissions = emissions.masked_fill(~mask.unsqueeze(2), 0.0)
        return emissions, tags, mask

    # ----------------------------------------------------------------------------------------
    # the three algorithms, on batch-first validated inputs
    def _path_score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """``score(x, y)`` of the given tags, ``(B,)``."""
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
        trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1): y_{t-1} -> y_t
        steps = (emit * mask).sum(1) + (trans * mask[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)  # (B,)
        return self.start_transitions[tags[:, 0]] + steps + self.end_transitions[last]

    def _log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Forward algorithm: ``log Z(x)`` for every sentence, ``(B,)``."""
        alpha = self.start_transitions + emissions[:, 0]  # (B, C): log-sum of paths ending in tag
        for t in range(1, emissions.size(1)):
            # (B, C_prev, 1) + (C_prev, C_next) -> logsumexp over C_prev -> (B, C_next)
            step = torch.logsumexp(alpha.unsqueeze(2) + self.transitions, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t : t + 1], step, alpha)  # pads carry alpha through
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

    def _viterbi(self, emissions: Tensor, mask: Tensor, pad_value: int) -> tuple[Tensor, Tensor]:
        """Best path ``(B, T)`` int64 (``pad_value`` on padding) and its score ``(B,)``."""
        b, t_max, c = emissions.shape
        score = self.start_transitions + emissions[:, 0]  # (B, C): best path ending in each tag
        identity = torch.arange(c, device=emissions.device).expand(b, c)
        backpointers = []
        for t in range(1, t_max):
            best, prev = (score.unsqueeze(2) + self.transitions).max(dim=1)  # (B, C_next)
            real = mask[:, t : t + 1]
            score = torch.where(real, best + emissions[:, t], score)
            # On padding the pointer is the identity, so the backtrack walks through unchanged.
            backpointers.append(torch.where(real, prev, identity))
        best_score, current = (score + self.end_transitions).max(dim=1)  # (B,), (B,)
        path = torch.empty(b, t_max, dtype=torch.long, device=emissions.device)
        path[:, t_max - 1] = current
        for t in range(t_max - 1, 0, -1):
            current = backpointers[t - 1].gather(1, current.unsqueeze(1)).squeeze(1)
            path[:, t - 1] = current
        return path.masked_fill(~mask, pad_value), best_score

    # ----------------------------------------------------------------------------------------
    # public API
    def forward(
        self,
        emissions: Tensor,
        tags: Tensor,
        mask: Tensor | None = None,
        reduction: CRFReduction = "sum",
    ) -> Tensor:
        """Log-likelihood ``log p(tags | emissions)`` (maximise it; the loss is its negative).

        Args:
            emissions: ``(B, T, C)`` float scores per token and tag (``(T, B, C)`` if not
                ``batch_first``), any device; values at padded positions are ignored.
            tags: ``(B, T)`` integer gold tag ids in ``[0, C)`` on real tokens (any value on padding).
            mask: ``(B, T)`` bool, ``True`` on real tokens, each row a prefix of ``True`` (length
                >= 1); ``None`` means no padding.
            reduction: ``"sum"`` over sentences (``torchcrf``'s default), ``"mean"`` over sentences,
                ``"token_mean"`` (sum divided by the number of real tokens), ``"none"`` ``(B,)``.

        Returns:
            A scalar, or ``(B,)`` for ``"none"``, in the emissions' dtype and device.
        """
        if reduction not in ("sum", "mean", "token_mean", "none"):
            raise ValueError(f"unknown reduction {reduction!r}: use sum, mean, token_mean or none")
        emissions, tags, mask = self._prepare(emissions, tags, mask)
        assert tags is not None
        llh = self._path_score(emissions, tags, mask) - self._log_partition(emissions, mask)
        if reduction == "none":
            return llh
        if reduction == "sum":
            return llh.sum()
        if reduction == "mean":
            return llh.mean()
        return llh.sum() / mask.sum()

    def log_partition(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """``log Z`` per sentence, ``(B,)``: log-sum-exp of the scores of all tag sequences."""
        emissions, _, mask = self._prepare(emissions, None, mask)
        return self._log_partition(emissions, mask)

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """Unnormalised score of the given tag sequences, ``(B,)``."""
        emissions, tags, mask = self._prepare(emissions, tags, mask)
        assert tags is not None
        return self._path_score(emissions, tags, mask)

    @torch.no_grad()
    def viterbi(
        self, emissions: Tensor, mask: Tensor | None = None, pad_value: int = 0
    ) -> tuple[Tensor, Tensor]:
        """Best tag sequences as a tensor.

        Returns:
            ``(paths, scores)``: ``paths`` ``(B, T)`` int64 on the emissions' device (always
            batch-first), ``pad_value`` on padded positions; ``scores`` ``(B,)`` their scores.
        """
        emissions, _, mask = self._prepare(emissions, None, mask)
        return self._viterbi(emissions, mask, pad_value)

    def decode(self, emissions: Tensor, mask: Tensor | None = None) -> list[list[int]]:
        """Best tag sequence of every sentence (Viterbi), as ``B`` lists of its own length."""
        paths, _ = self.viterbi(emissions, mask)
        lengths = (
            torch.full((paths.size(0),), paths.size(1)) if mask is None
            else (mask.sum(0) if not self.batch_first else mask.sum(1)).cpu()
        )
        return [row[:n].tolist() for row, n in zip(paths.cpu(), lengths.tolist(), strict=True)]
