"""Tests for seqtag.losses: masked cross-entropy against explicit references."""

import pytest
import torch
import torch.nn.functional as F

from seqtag.crf import CRF
from seqtag.losses import crf_nll, masked_cross_entropy, masked_nll


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 5, 4, generator=g, requires_grad=True)
    lengths = torch.tensor([5, 2, 3])
    mask = torch.arange(5)[None] < lengths[:, None]
    targets = torch.randint(1, 4, (3, 5), generator=g).masked_fill(~mask, 0)
    return logits, targets, mask


def test_token_mean_equals_ignore_index_reference():
    logits, targets, mask = _batch()
    ours = masked_cross_entropy(logits, targets, mask)
    ref = F.cross_entropy(logits.reshape(-1, 4), targets.reshape(-1), ignore_index=0)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(masked_nll(logits.log_softmax(-1), targets, mask), ref)


def test_sentence_mean_weighs_each_sentence_equally():
    logits, targets, mask = _batch(1)
    per_sentence = [
        F.cross_entropy(logits[b, : int(mask[b].sum())], targets[b, : int(mask[b].sum())])
        for b in range(3)
    ]
    ref = torch.stack(per_sentence).mean()
    torch.testing.assert_close(masked_cross_entropy(logits, targets, mask, "sentence_mean"), ref)


def test_padding_targets_and_scores_do_not_matter_and_get_no_gradient():
    logits, targets, mask = _batch(2)
    loss = masked_cross_entropy(logits, targets, mask, "sum")
    loss.backward()
    assert torch.all(logits.grad[~mask] == 0)
    assert torch.any(logits.grad[mask] != 0)
    garbage = logits.detach().clone()
    garbage[~mask] = 1e4
    other_targets = targets.masked_fill(~mask, 3)
    torch.testing.assert_close(
        masked_cross_entropy(garbage, other_targets, mask, "sum"), loss.detach()
    )


@pytest.mark.parametrize("garbage", [float("nan"), float("inf"), float("-inf"), 1e4])
@pytest.mark.parametrize("reduction", ["token_mean", "sentence_mean", "sum", "none"])
@pytest.mark.parametrize("fn", ["cross_entropy", "nll", "crf"])
def test_any_value_at_padded_positions_is_harmless(garbage, reduction, fn):
    """NaN/inf at a pad must not reach the loss nor any gradient (log_softmax's backward would
    otherwise multiply NaN by the mask's 0 and spread NaN over the whole row)."""
    clean, targets, mask = _batch(4)
    crf = CRF(4)
    loss_fn = {"cross_entropy": masked_cross_entropy, "nll": masked_nll,
               "crf": lambda *args: crf_nll(crf, *args)}[fn]

    def loss_and_grad(dirty: bool):
        # the leaf is what the loss receives: logits, or log-probabilities for masked_nll
        values = clean.detach().log_softmax(-1) if fn == "nll" else clean.detach()
        if dirty:
            values = values.masked_fill(~mask[..., None], garbage)
        leaf = values.clone().requires_grad_(True)
        loss = loss_fn(leaf, targets, mask, reduction)
        loss.sum().backward()
        return loss.detach(), leaf.grad

    ref_loss, ref_grad = loss_and_grad(False)
    loss, grad = loss_and_grad(True)
    assert torch.isfinite(loss).all()
    torch.testing.assert_close(loss, ref_loss)
    assert torch.isfinite(grad).all()
    assert torch.all(grad[~mask] == 0)
    torch.testing.assert_close(grad[mask], ref_grad[mask])


def test_all_padding_batch_gives_zero_not_nan():
    logits = torch.randn(2, 3, 4, requires_grad=True)
    mask = torch.zeros(2, 3, dtype=torch.bool)
    targets = torch.zeros(2, 3, dtype=torch.long)
    for reduction in ("token_mean", "sentence_mean", "sum"):
        loss = masked_cross_entropy(logits, targets, mask, reduction)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.all(logits.grad == 0)


def test_none_reduction_is_zero_on_padding():
    logits, targets, mask = _batch(3)
    per_token = masked_cross_entropy(logits, targets, mask, "none")
    assert per_token.shape == (3, 5)
    assert torch.all(per_token[~mask] == 0) and torch.all(per_token[mask] > 0)


def test_bad_inputs_name_the_problem():
    logits, targets, mask = _batch()
    with pytest.raises(ValueError, match=r"\(B, T, C\)"):
        masked_cross_entropy(logits[0], targets, mask)
    with pytest.raises(ValueError, match="must both be"):
        masked_cross_entropy(logits, targets[:, :3], mask)
    with pytest.raises(ValueError, match="integer class ids"):
        masked_cross_entropy(logits, targets.float(), mask)
    with pytest.raises(ValueError, match="mask must be bool"):
        masked_cross_entropy(logits, targets, mask.float())
    with pytest.raises(ValueError, match="unknown reduction"):
        masked_cross_entropy(logits, targets, mask, "mean")  # type: ignore[arg-type]


@pytest.mark.parametrize("s", [0.1, 0.3])
def test_label_smoothing_is_cross_entropy_against_smoothed_targets_over_the_real_tags(s):
    logits, targets, mask = _batch(3)
    c = logits.size(2)
    # the target distribution: 1 - s on the true tag, s spread evenly over tags 1..C-1, none on <pad> = 0
    q = torch.zeros(3, 5, c)
    q[:, :, 1:] = s / (c - 1)
    q.scatter_add_(2, targets.unsqueeze(2), torch.full((3, 5, 1), 1.0 - s))
    per_token = -(q * logits.log_softmax(-1)).sum(-1)
    ref = per_token[mask].mean()
    ours = masked_cross_entropy(logits, targets, mask, label_smoothing=s)
    torch.testing.assert_close(ours, ref)
    assert not torch.allclose(ours, masked_cross_entropy(logits, targets, mask))  # it changes the loss
    # padding still gets no gradient and no say
    (grad,) = torch.autograd.grad(masked_cross_entropy(logits, targets, mask, "sum", label_smoothing=s), logits)
    assert torch.all(grad[~mask] == 0)


def test_label_smoothing_zero_is_plain_cross_entropy_and_bad_values_are_named():
    logits, targets, mask = _batch(4)
    torch.testing.assert_close(masked_cross_entropy(logits, targets, mask, label_smoothing=0.0),
                               masked_cross_entropy(logits, targets, mask))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
            masked_cross_entropy(logits, targets, mask, label_smoothing=bad)
    with pytest.raises(ValueError, match="real classes 1..C-1"):
        masked_cross_entropy(logits[:, :, :1], targets * 0, mask, label_smoothing=0.1)
