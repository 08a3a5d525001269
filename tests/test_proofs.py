"""Property-based proofs of the article's three tricks, as seqtag implements them.

* Packing: an RNN over a packed batch (:func:`seqtag.models.run_packed`) gives every sentence
  the outputs and final states it gets when run alone, without padding.
* Masking: :func:`seqtag.losses.masked_cross_entropy` equals an explicit loop over real tokens,
  gives padded positions exactly zero gradient, and gives 0 (not NaN) on an all-padding batch.
* The logits get the gradient of a loss over the real tokens alone, whatever the pads hold (NaN
  and inf included), for ``masked_cross_entropy`` and for the fix the bug index recommends,
  :func:`seqtag.article.fixes.masked_nll_fixed`; the article's own formula agrees on finite scores.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from seqtag.article.fixes import article_loss_fixed, masked_nll_fixed
from seqtag.batching import lengths_to_mask
from seqtag.losses import masked_cross_entropy
from seqtag.models import run_packed

E, H = 3, 4  # input and state sizes: small, the property does not depend on them


@st.composite
def padded_batches(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, lengths)``: ``(B, T, E)`` float inputs, random values at padded steps too."""
    batch = draw(st.integers(1, 5))
    lengths = draw(
        st.one_of(
            st.lists(st.integers(1, 7), min_size=batch, max_size=batch),
            st.integers(1, 7).map(lambda n: [n] * batch),  # all equal
        )
    )
    extra = draw(st.integers(0, 2))  # padded past the longest sentence (needs total_length)
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths) + extra, E, generator=g)
    return x, torch.tensor(lengths)


rnns = st.builds(
    lambda kind, bidirectional, layers, seed: (
        torch.manual_seed(seed),
        (nn.LSTM if kind == "lstm" else nn.GRU)(
            E, H, num_layers=layers, bidirectional=bidirectional, batch_first=True
        ),
    )[1],
    kind=st.sampled_from(["lstm", "gru"]),
    bidirectional=st.booleans(),
    layers=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)


def _h(state: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return state[0] if isinstance(state, tuple) else state


def _bilstm() -> nn.LSTM:
    torch.manual_seed(0)
    return nn.LSTM(E, H, batch_first=True, bidirectional=True)


# Always checked, whatever Hypothesis draws: one word; equal lengths padded past their length.
ONE_WORD = (torch.randn(1, 1, E), torch.tensor([1]))
ALL_EQUAL = (torch.randn(3, 5, E), torch.tensor([4, 4, 4]))


@settings(max_examples=40, deadline=None)
@given(batch=padded_batches(), rnn=rnns)
@example(batch=ONE_WORD, rnn=_bilstm())
@example(batch=ALL_EQUAL, rnn=_bilstm())
def test_packed_batch_equals_each_sentence_alone(
    batch: tuple[torch.Tensor, torch.Tensor], rnn: nn.RNNBase
) -> None:
    x, lengths = batch
    with torch.no_grad():
        out, state = run_packed(rnn, x, lengths)
        assert out.shape[:2] == x.shape[:2]  # total_length kept T
        for b, n in enumerate(lengths.tolist()):
            alone_out, alone_state = rnn(x[b : b + 1, :n])
            torch.testing.assert_close(out[b, :n], alone_out[0])
            assert bool((out[b, n:] == 0).all()), "padded steps must be zeros"
            states = state if isinstance(state, tuple) else (state,)
            alones = alone_state if isinstance(alone_state, tuple) else (alone_state,)
            for s, a in zip(states, alones, strict=True):
                torch.testing.assert_close(s[:, b], a[:, 0])


@settings(max_examples=40, deadline=None)
@given(batch=padded_batches(), rnn=rnns)
@example(batch=ONE_WORD, rnn=_bilstm())
@example(batch=ALL_EQUAL, rnn=_bilstm())
def test_final_state_is_last_word_forward_and_first_word_backward(
    batch: tuple[torch.Tensor, torch.Tensor], rnn: nn.RNNBase
) -> None:
    x, lengths = batch
    with torch.no_grad():
        out, state = run_packed(rnn, x, lengths)
    h_n = _h(state).view(rnn.num_layers, 2 if rnn.bidirectional else 1, x.size(0), H)[-1]
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(h_n[0, b], out[b, n - 1, :H])  # forward: its last real word
        if rnn.bidirectional:
            torch.testing.assert_close(h_n[1, b], out[b, 0, H:])  # backward: its first word


def test_bidirectional_without_packing_is_wrong_for_short_sentences() -> None:
    """The counter-example: fed the padded tensor, the backward direction reads the pads first."""
    torch.manual_seed(0)
    rnn = nn.LSTM(E, H, batch_first=True, bidirectional=True)
    x, lengths = torch.randn(3, 7, E), torch.tensor([7, 2, 2])
    with torch.no_grad():
        unpacked, _ = run_packed(rnn, x, lengths, packed=False)
        packed, _ = run_packed(rnn, x, lengths)
    mask = lengths_to_mask(lengths)
    assert torch.allclose(unpacked[0], packed[0])  # the longest sentence has no padding
    assert (unpacked[1:][mask[1:]] - packed[1:][mask[1:]]).abs().max() > 1e-3


@st.composite
def scored_batches(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(logits (B, T, C), targets (B, T), mask (B, T))``, sentences may be empty."""
    batch, t, c = draw(st.integers(1, 5)), draw(st.integers(1, 6)), draw(st.integers(2, 6))
    lengths = draw(st.lists(st.integers(0, t), min_size=batch, max_size=batch))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    logits = torch.randn(batch, t, c, generator=g, dtype=torch.float64) * 3
    targets = torch.randint(0, c, (batch, t), generator=g)
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    return logits, targets, mask


def _reference(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, how: str) -> float:
    """The masked loss by explicit loops over sentences and real tokens."""
    per_sentence: list[list[float]] = []
    for b in range(logits.size(0)):
        losses = []
        for t in range(logits.size(1)):
            if mask[b, t]:
                log_p = logits[b, t] - torch.logsumexp(logits[b, t], 0)
                losses.append(-float(log_p[targets[b, t]]))
        per_sentence.append(losses)
    tokens = [x for s in per_sentence for x in s]
    if how == "token_mean":
        return sum(tokens) / len(tokens) if tokens else 0.0
    means = [sum(s) / len(s) for s in per_sentence if s]
    return sum(means) / len(means) if means else 0.0


@settings(max_examples=60, deadline=None)
@given(batch=scored_batches(), how=st.sampled_from(["token_mean", "sentence_mean"]))
def test_masked_cross_entropy_equals_explicit_loop(
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], how: str
) -> None:
    logits, targets, mask = batch
    got = masked_cross_entropy(logits, targets, mask, reduction=how)
    assert math.isclose(float(got), _reference(logits, targets, mask, how), rel_tol=1e-9, abs_tol=1e-9)
    if how == "token_mean" and mask.any():
        flat = targets.masked_fill(~mask, -100).view(-1)
        ignore = F.cross_entropy(logits.view(-1, logits.size(-1)), flat, ignore_index=-100)
        torch.testing.assert_close(got, ignore)


@settings(max_examples=60, deadline=None)
@given(batch=scored_batches(), how=st.sampled_from(["token_mean", "sentence_mean", "sum"]))
def test_padded_positions_get_exactly_zero_gradient(
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], how: str
) -> None:
    logits, targets, mask = batch
    logits.requires_grad_(True)
    loss = masked_cross_entropy(logits, targets, mask, reduction=how)
    loss.backward()
    assert logits.grad is not None
    assert bool((logits.grad[~mask] == 0).all())
    assert bool(torch.isfinite(logits.grad).all())


@settings(max_examples=20, deadline=None)
@given(
    batch=st.integers(1, 4), t=st.integers(1, 5),
    how=st.sampled_from(["token_mean", "sentence_mean", "sum"]),
)
def test_all_padding_batch_gives_zero_not_nan(batch: int, t: int, how: str) -> None:
    logits = torch.randn(batch, t, 3, requires_grad=True)
    targets = torch.zeros(batch, t, dtype=torch.long)
    mask = torch.zeros(batch, t, dtype=torch.bool)
    loss = masked_cross_entropy(logits, targets, mask, reduction=how)
    assert loss.item() == 0.0
    loss.backward()
    assert bool((logits.grad == 0).all())


GARBAGE = st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e30, -1e30, 0.0])


def _logit_grad(loss_fn, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scores = logits.detach().clone().requires_grad_(True)
    loss = loss_fn(scores)
    loss.backward()
    assert scores.grad is not None
    return loss.detach(), scores.grad


@settings(max_examples=60, deadline=None)
@given(batch=scored_batches(), garbage=GARBAGE, loss_name=st.sampled_from(["masked_cross_entropy", "masked_nll_fixed"]))
def test_logits_get_the_gradient_of_the_real_tokens_alone_whatever_the_pads_hold(
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], garbage: float, loss_name: str
) -> None:
    logits, targets, mask = batch
    loss_fn = {"masked_cross_entropy": masked_cross_entropy, "masked_nll_fixed": masked_nll_fixed}[loss_name]
    poisoned = logits.masked_fill(~mask[..., None], garbage)
    loss, grad = _logit_grad(lambda s: loss_fn(s, targets, mask), poisoned)
    assert math.isclose(float(loss), _reference(logits, targets, mask, "token_mean"), rel_tol=1e-9, abs_tol=1e-9)
    assert bool(torch.isfinite(grad).all()) and bool((grad[~mask] == 0).all())
    if mask.any():  # the same gradient as a loss that never sees a pad
        _, alone = _logit_grad(lambda s: F.cross_entropy(s[mask], targets[mask]), logits)
        torch.testing.assert_close(grad, alone)


@settings(max_examples=40, deadline=None)
@given(batch=scored_batches())
def test_the_article_formula_fixed_agrees_on_finite_scores(
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    logits, targets, mask = batch
    if not mask.any():
        return  # the article's formula divides 0 by 0 there: the bug index's all_padding_nan
    # The article marks pads by the label <PAD> = 0: give every real token a label >= 1.
    labels = (targets % (logits.size(-1) - 1) + 1).masked_fill(~mask, 0)
    loss, grad = _logit_grad(lambda s: article_loss_fixed(F.log_softmax(s, -1), labels), logits)
    fixed_loss, fixed_grad = _logit_grad(lambda s: masked_nll_fixed(s, labels, mask), logits)
    torch.testing.assert_close(loss, fixed_loss)
    torch.testing.assert_close(grad, fixed_grad)
