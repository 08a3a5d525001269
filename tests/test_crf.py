"""seqtag.crf: forward algorithm, Viterbi and likelihood against brute force and pytorch-crf."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torchcrf

from seqtag.batching import Batch, lengths_to_mask
from seqtag.crf import CRF
from seqtag.losses import masked_cross_entropy, sequence_loss
from seqtag.models import Tagger, TaggerConfig


def random_crf(num_tags: int, seed: int) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(num_tags).double()
    with torch.no_grad():  # larger than the default init, so the transitions matter
        for p in crf.parameters():
            p.normal_(0, 1.0)
    return crf


def brute_force(crf: CRF, emissions: torch.Tensor) -> tuple[float, list[int], float]:
    """(log Z, best path, best score) of one sentence ``(L, C)`` by enumerating all C**L paths."""
    start, end, trans = (p.detach() for p in (crf.start_transitions, crf.end_transitions, crf.transitions))
    length, c = emissions.shape
    scores: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(c), repeat=length):
        s = float(start[path[0]] + end[path[-1]])
        s += sum(float(emissions[t, y]) for t, y in enumerate(path))
        s += sum(float(trans[a, b]) for a, b in itertools.pairwise(path))
        scores[path] = s
    best = max(scores, key=scores.__getitem__)
    log_z = math.log(sum(math.exp(v) for v in scores.values()))
    return log_z, list(best), scores[best]


def padded_batch(lengths: list[int], c: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Emissions ``(B, T, C)`` float64 with garbage (huge, inf, nan) on padded steps, and the mask."""
    gen = torch.Generator().manual_seed(seed)
    mask = lengths_to_mask(lengths)
    emissions = torch.randn(len(lengths), mask.size(1), c, generator=gen, dtype=torch.float64)
    garbage = torch.tensor([1e6, float("inf"), float("nan"), -float("inf")], dtype=torch.float64)
    fill = garbage[torch.randint(0, 4, emissions.shape, generator=gen)]
    return torch.where(mask.unsqueeze(2), emissions, fill), mask


@pytest.mark.parametrize(
    ("num_tags", "lengths"),
    [(1, [1, 3]), (2, [1]), (2, [4, 1, 3]), (3, [1, 2, 5, 3]), (4, [3, 4, 1])],
)
def test_log_partition_and_viterbi_equal_brute_force(num_tags: int, lengths: list[int]) -> None:
    crf = random_crf(num_tags, seed=num_tags)
    emissions, mask = padded_batch(lengths, num_tags, seed=len(lengths))
    log_z = crf.log_partition(emissions, mask)
    paths, best_scores = crf.viterbi(emissions, mask, pad_value=-1)
    decoded = crf.decode(emissions, mask)
    for b, n in enumerate(lengths):
        want_z, want_path, want_score = brute_force(crf, emissions[b, :n])
        assert log_z[b].item() == pytest.approx(want_z, rel=1e-9, abs=1e-9)
        assert decoded[b] == want_path
        assert paths[b, :n].tolist() == want_path and (paths[b, n:] == -1).all()
        assert best_scores[b].item() == pytest.approx(want_score, rel=1e-9, abs=1e-9)


def test_likelihood_is_a_probability_over_all_sequences() -> None:
    crf = random_crf(3, seed=1)
    emissions, mask = padded_batch([3], 3, seed=2)
    all_paths = torch.tensor(list(itertools.product(range(3), repeat=3)))
    llh = crf(emissions.expand(len(all_paths), -1, -1), all_paths, reduction="none")
    assert llh.exp().sum().item() == pytest.approx(1.0, rel=1e-9)


def test_padding_changes_no_sentence_score() -> None:
    crf = random_crf(5, seed=3)
    lengths = [2, 6, 1, 4]
    emissions, mask = padded_batch(lengths, 5, seed=4)
    emissions.requires_grad_(True)
    tags = torch.randint(1, 5, mask.shape).masked_fill(~mask, -100)  # ignore-index style pads
    llh = crf(emissions, tags, mask, reduction="none")
    alone = torch.stack([
        crf(emissions[b : b + 1, :n].detach(), tags[b : b + 1, :n], reduction="none")[0]
        for b, n in enumerate(lengths)
    ])
    torch.testing.assert_close(llh, alone)
    assert crf.decode(emissions, mask) == [
        crf.decode(emissions[b : b + 1, :n])[0] for b, n in enumerate(lengths)
    ]
    llh.sum().backward()
    assert torch.isfinite(emissions.grad).all()
    assert (emissions.grad[~mask] == 0).all()


@pytest.mark.filterwarnings("ignore:where received a uint8:UserWarning")  # inside torchcrf
@pytest.mark.parametrize("batch_first", [True, False])
def test_matches_pytorch_crf(batch_first: bool) -> None:
    torch.manual_seed(5)
    ours, oracle = CRF(6, batch_first=batch_first), torchcrf.CRF(6, batch_first=batch_first)
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0, 1.0)
    oracle.load_state_dict(ours.state_dict())  # same start/end/transition parameters
    lengths = [7, 3, 1, 5, 7]
    mask = lengths_to_mask(lengths)
    emissions = torch.randn(*mask.shape, 6)
    tags = torch.randint(0, 6, mask.shape)
    if not batch_first:
        emissions, tags, mask = emissions.transpose(0, 1), tags.t(), mask.t()
    for reduction in ("sum", "mean", "token_mean", "none"):
        torch.testing.assert_close(
            ours(emissions, tags, mask, reduction=reduction),
            oracle(emissions, tags, mask, reduction=reduction),
        )
    assert ours.decode(emissions, mask) == oracle.decode(emissions, mask)
    assert ours.decode(emissions) == oracle.decode(emissions)  # no mask = no padding


def test_gradients_flow_and_are_right() -> None:
    crf = random_crf(3, seed=6)
    emissions, mask = padded_batch([3, 1, 2], 3, seed=7)
    emissions = emissions.masked_fill(~mask.unsqueeze(2), 0.0).requires_grad_(True)
    tags = torch.randint(0, 3, mask.shape)
    loss = -crf(emissions, tags, mask, reduction="token_mean")
    loss.backward()
    for name, p in crf.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert emissions.grad is not None and emissions.grad[mask].abs().sum() > 0
    # Analytic gradients equal finite differences, for the emissions and the transitions.
    assert torch.autograd.gradcheck(
        lambda e: -crf(e, tags, mask, reduction="token_mean"), (emissions.detach().requires_grad_(),)
    )

    def with_transitions(trans: torch.Tensor) -> torch.Tensor:
        inputs = (emissions.detach(), tags, mask)
        return torch.func.functional_call(crf, {"transitions": trans}, inputs, {"reduction": "sum"})

    assert torch.autograd.gradcheck(with_transitions, (crf.transitions.detach().clone().requires_grad_(),))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mask": torch.ones(2, 3, dtype=torch.uint8)}, "mask must be bool"),
        ({"mask": torch.tensor([[True, False, True], [True, True, True]])}, "after padding"),
        ({"mask": torch.tensor([[False, False, False], [True, True, True]])}, "sentence 0 has no real"),
        ({"mask": torch.ones(2, 4, dtype=torch.bool)}, "mask has shape"),
        ({"tags": torch.full((2, 3), 4)}, "outside"),
        ({"tags": torch.zeros(2, 3)}, "integer tag ids"),
        ({"tags": torch.zeros(3, 2, dtype=torch.long)}, "tags have shape"),
        ({"emissions": torch.zeros(2, 3, 5)}, "num_tags=4"),
        ({"emissions": torch.zeros(2, 3)}, "emissions must be"),
        ({"reduction": "avg"}, "unknown reduction"),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs: dict, message: str) -> None:
    crf = CRF(4)
    args = {"emissions": torch.zeros(2, 3, 4), "tags": torch.zeros(2, 3, dtype=torch.long), "mask": None}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        crf(**args)


def test_tagger_with_crf_trains_and_decodes_with_viterbi() -> None:
    torch.manual_seed(0)
    config = TaggerConfig(vocab_size=12, num_tags=5, embedding_dim=16, hidden_size=16, crf=True)
    model = Tagger(config)
    assert isinstance(model.crf, CRF) and Tagger(TaggerConfig(12, 5)).crf is None
    lengths = torch.tensor([5, 2, 4])
    mask = lengths_to_mask(lengths)
    words = torch.randint(2, 12, mask.shape).masked_fill(~mask, 0)
    tags = ((words % 4) + 1).masked_fill(~mask, 0)  # tags 1..4, a function of the word
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    batch = Batch(words=words, lengths=lengths, mask=mask, tags=tags)
    for _ in range(60):
        optimizer.zero_grad()
        loss = sequence_loss(model, batch)  # the CRF's NLL, since config.crf
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    model.eval()
    predicted = model.predict(words, lengths)
    assert torch.equal(predicted, tags)  # Viterbi path, PAD_ID on padding
    logits = model(words, lengths)
    logits[..., 0] = float("-inf")
    assert predicted.tolist() == [
        row + [0] * (mask.size(1) - len(row)) for row in model.crf.decode(logits, mask)
    ]


def test_sequence_loss_uses_the_crf_when_the_tagger_has_one() -> None:
    torch.manual_seed(1)
    lengths = torch.tensor([4, 1, 3])
    mask = lengths_to_mask(lengths)
    words = torch.randint(2, 12, mask.shape).masked_fill(~mask, 0)
    tags = torch.randint(1, 5, mask.shape).masked_fill(~mask, 0)
    batch = Batch(words=words, lengths=lengths, mask=mask, tags=tags)
    model = Tagger(TaggerConfig(vocab_size=12, num_tags=5, embedding_dim=8, hidden_size=8, crf=True))
    logits = model(words, lengths)
    nll = -model.crf(logits, tags, mask, reduction="none")
    torch.testing.assert_close(sequence_loss(model, batch), nll.sum() / 8)
    torch.testing.assert_close(sequence_loss(model, batch, "sum"), nll.sum())
    torch.testing.assert_close(sequence_loss(model, batch, "none"), nll)
    torch.testing.assert_close(sequence_loss(model, batch, "sentence_mean"), (nll / lengths).mean())
    # With all transition scores zero the CRF factorises over tokens: its NLL is the cross-entropy.
    with torch.no_grad():
        for p in model.crf.parameters():
            p.zero_()
    torch.testing.assert_close(sequence_loss(model, batch), masked_cross_entropy(logits, tags, mask))
    plain = Tagger(TaggerConfig(vocab_size=12, num_tags=5, embedding_dim=8, hidden_size=8))
    torch.testing.assert_close(
        sequence_loss(plain, batch), masked_cross_entropy(plain(words, lengths), tags, mask)
    )


def test_no_value_is_read_back_from_a_device_in_the_hot_path() -> None:
    """On a GPU, reading a value (``bool(t.any())`` in an argument check) waits for the device at
    every step. The "meta" device stands in for any non-CPU device here: it has shapes but no
    values, so any read raises. Loss and Viterbi must run on it; the value checks run on the CPU."""
    crf = CRF(5).to("meta")
    emissions = torch.empty(3, 4, 5, device="meta")
    tags = torch.empty(3, 4, dtype=torch.long, device="meta")
    mask = torch.empty(3, 4, dtype=torch.bool, device="meta")
    assert crf(emissions, tags, mask, reduction="token_mean").shape == ()
    paths, scores = crf.viterbi(emissions, mask)
    assert paths.shape == (3, 4) and scores.shape == (3,)


def test_value_checks_still_run_on_the_cpu() -> None:
    crf = CRF(5)
    emissions = torch.randn(2, 3, 5)
    with pytest.raises(ValueError, match="outside"):
        crf(emissions, torch.tensor([[1, 7, 1], [1, 1, 1]]), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="left-aligned"):
        crf(emissions, torch.ones(2, 3, dtype=torch.long), torch.tensor([[True, False, True], [True] * 3]))
