"""seqtag.rnn: the flipped path equals the packed one (same weights), for every RNN shape the
tagger builds; padding cannot change a real position's output."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqtag.models import Tagger, TaggerConfig
from seqtag.rnn import locked_dropout, reverse_padded, run_flipped, run_packed


def _batch(seed: int = 0, b: int = 5, t: int = 9, e: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([t, 1, 4, t - 2, 2][:b])
    x = torch.randn(b, t, e, generator=g)
    return x, lengths


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_flipped_equals_packed(cell: type[nn.RNNBase], layers: int, bidirectional: bool) -> None:
    torch.manual_seed(0)
    rnn = cell(6, 4, num_layers=layers, bidirectional=bidirectional, batch_first=True,
               dropout=0.5 if layers > 1 else 0.0).eval()
    x, lengths = _batch()
    packed, _ = run_packed(rnn, x, lengths)
    flipped = run_flipped(rnn, x, lengths)
    assert flipped.shape == packed.shape
    torch.testing.assert_close(flipped, packed, rtol=1e-5, atol=1e-6)
    # and the padding does not matter: garbage in the padded slots changes nothing real
    noisy = x.clone()
    for i, n in enumerate(lengths.tolist()):
        noisy[i, n:] = 1e3
    torch.testing.assert_close(run_flipped(rnn, noisy, lengths), packed, rtol=1e-5, atol=1e-6)


def test_flipped_padded_positions_are_zero_and_gradients_match() -> None:
    torch.manual_seed(1)
    rnn = nn.LSTM(6, 4, num_layers=2, bidirectional=True, batch_first=True)
    x, lengths = _batch(1)
    grads = []
    for run in (lambda: run_packed(rnn, x, lengths)[0], lambda: run_flipped(rnn, x, lengths)):
        rnn.zero_grad()
        out = run()
        out.pow(2).sum().backward()
        grads.append([p.grad.clone() for p in rnn.parameters()])
    for packed_grad, flipped_grad in zip(*grads, strict=True):
        torch.testing.assert_close(flipped_grad, packed_grad, rtol=1e-4, atol=1e-6)
    out = run_flipped(rnn, x, lengths)
    for i, n in enumerate(lengths.tolist()):
        assert out[i, n:].abs().sum() == 0


def test_reverse_padded_twice_is_identity_and_keeps_padding() -> None:
    x = torch.arange(12).view(2, 6)
    lengths = torch.tensor([6, 3])
    once = reverse_padded(x, lengths)
    assert once[1].tolist() == [8, 7, 6, 9, 10, 11]
    assert torch.equal(reverse_padded(once, lengths), x)


def test_tagger_flipped_option_gives_the_packed_scores() -> None:
    cfg = TaggerConfig(vocab_size=30, num_tags=5, embedding_dim=8, hidden_size=6, num_layers=2, char_vocab_size=12)
    torch.manual_seed(2)
    packed = Tagger(cfg).eval()
    flipped = Tagger(TaggerConfig.from_dict({**cfg.to_dict(), "flipped": True})).eval()
    flipped.load_state_dict(packed.state_dict())  # same parameters: a checkpoint loads either way
    lengths = torch.tensor([5, 2, 4])
    words = torch.randint(2, 30, (3, 5)).masked_fill(torch.arange(5) >= lengths[:, None], 0)
    chars = torch.randint(1, 12, (3, 5, 4)).masked_fill((words == 0)[..., None], 0)
    torch.testing.assert_close(flipped(words, lengths, chars), packed(words, lengths, chars), rtol=1e-5, atol=1e-6)


def test_run_flipped_rejects_what_it_cannot_run() -> None:
    with pytest.raises(ValueError, match="batch_first"):
        run_flipped(nn.LSTM(3, 2), torch.randn(2, 4, 3), torch.tensor([4, 2]))
    with pytest.raises(TypeError, match="LSTM or nn.GRU"):
        run_flipped(nn.RNN(3, 2, batch_first=True), torch.randn(2, 4, 3), torch.tensor([4, 2]))
    with pytest.raises(ValueError, match="length"):
        run_flipped(nn.LSTM(3, 2, batch_first=True), torch.randn(2, 4, 3), torch.tensor([5, 2]))


# ---------------------------------------------------------------- locked (variational) dropout


def test_locked_dropout_keeps_one_mask_per_sentence_and_feature() -> None:
    torch.manual_seed(0)
    x = torch.ones(4, 7, 50)
    out = locked_dropout(x, 0.4)
    assert out.shape == x.shape
    assert ((out == 0) | torch.isclose(out, torch.tensor(1 / 0.6))).all()  # dropped, or scaled up
    # every time step of a sentence has the same mask; sentences and features differ
    assert torch.equal(out, out[:, :1].expand_as(out))
    assert not torch.equal(out[0, 0], out[1, 0])
    assert 0.2 < (out[:, 0] == 0).float().mean() < 0.6
    # while per-word dropout draws a new mask at every step
    per_word = nn.functional.dropout(x, 0.4, training=True)
    assert not torch.equal(per_word, per_word[:, :1].expand_as(per_word))


def test_locked_dropout_is_the_identity_off_training_and_checks_its_input() -> None:
    x = torch.randn(2, 3, 4)
    assert locked_dropout(x, 0.5, training=False) is x
    assert locked_dropout(x, 0.0) is x
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        locked_dropout(x, 1.0)
    with pytest.raises(ValueError, match=r"\(B, T, D\)"):
        locked_dropout(torch.randn(2, 3), 0.5)


def test_run_flipped_locked_drops_whole_features_between_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    import seqtag.rnn as rnn_module

    seen: list[tuple[tuple[int, ...], float]] = []

    def spy(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
        seen.append((tuple(x.shape), p))
        return locked_dropout(x, p, training)

    monkeypatch.setattr(rnn_module, "locked_dropout", spy)
    rnn = nn.LSTM(6, 4, num_layers=3, bidirectional=True, batch_first=True, dropout=0.3)
    x, lengths = _batch()
    run_flipped(rnn, x, lengths, locked=True)
    assert seen == [((5, 9, 8), 0.3)] * 2  # before layers 2 and 3, on both directions' outputs
    seen.clear()
    run_flipped(rnn, x, lengths)  # per-word dropout, as nn.LSTM's own
    run_flipped(rnn.eval(), x, lengths, locked=True)  # no dropout in eval
    assert seen == []


def test_tagger_locked_dropout_masks_per_sentence_in_training_only() -> None:
    base = {"vocab_size": 30, "num_tags": 5, "embedding_dim": 8, "hidden_size": 6, "num_layers": 2,
            "dropout": 0.5, "rnn_dropout": 0.5, "flipped": True}
    torch.manual_seed(3)
    plain = Tagger(TaggerConfig(**base)).eval()  # type: ignore[arg-type]
    locked = Tagger(TaggerConfig(**{**base, "locked_dropout": True})).eval()  # type: ignore[arg-type]
    locked.load_state_dict(plain.state_dict())  # same weights: dropout is not part of them
    lengths = torch.tensor([5, 2, 4])
    words = torch.randint(2, 30, (3, 5)).masked_fill(torch.arange(5) >= lengths[:, None], 0)
    torch.testing.assert_close(locked(words, lengths), plain(words, lengths))
    locked.train()
    torch.manual_seed(1)
    a = locked(words, lengths)
    torch.manual_seed(1)
    torch.testing.assert_close(locked(words, lengths), a)  # same seed, same masks
    torch.manual_seed(2)
    assert not torch.allclose(locked(words, lengths), a)
    # the features the output layer reads: a dropped one is zero at every word of its sentence
    torch.manual_seed(4)
    h = locked.features(words, lengths)
    dropped = h[0, : lengths[0]] == 0
    assert dropped.any() and torch.equal(dropped, dropped[:1].expand_as(dropped))


def test_locked_dropout_between_stacked_layers_needs_the_flipped_path() -> None:
    base = {"vocab_size": 30, "num_tags": 5, "num_layers": 2, "rnn_dropout": 0.3, "locked_dropout": True}
    with pytest.raises(ValueError, match="locked_dropout between stacked layers needs flipped=True"):
        TaggerConfig(**base)  # type: ignore[arg-type]
    TaggerConfig(**{**base, "flipped": True})  # type: ignore[arg-type]
    TaggerConfig(**{**base, "rnn_dropout": 0.0})  # type: ignore[arg-type]  # nothing between the layers
    TaggerConfig(**{**base, "num_layers": 1})  # type: ignore[arg-type]


# ---------------------------------------------------------------- residual connections between layers


@pytest.mark.parametrize("bidirectional", [True, False])
def test_run_flipped_residual_adds_each_layers_input_from_the_second_layer_on(bidirectional: bool) -> None:
    torch.manual_seed(0)
    rnn = nn.LSTM(6, 4, num_layers=3, bidirectional=bidirectional, batch_first=True).eval()
    x, lengths = _batch()
    width = 4 * (2 if bidirectional else 1)
    # the same three layers as separate one-layer LSTMs, the sums written out
    layers = [nn.LSTM(6 if i == 0 else width, 4, bidirectional=bidirectional, batch_first=True).eval()
              for i in range(3)]
    for i, layer in enumerate(layers):
        for name, _ in layer.named_parameters():
            getattr(layer, name).data.copy_(getattr(rnn, name.replace("_l0", f"_l{i}")))
    h1 = run_flipped(layers[0], x, lengths)
    h2 = run_flipped(layers[1], h1, lengths) + h1
    h3 = run_flipped(layers[2], h2, lengths) + h2
    real = (torch.arange(x.size(1)) < lengths[:, None]).unsqueeze(-1)
    torch.testing.assert_close(run_flipped(rnn, x, lengths, residual=True), h3 * real)
    # and it changes the outputs: without it, layer 3 reads layer 2's states alone
    assert not torch.allclose(run_flipped(rnn, x, lengths), h3 * real)
    # one layer: nothing below to add
    single = nn.LSTM(6, 4, bidirectional=bidirectional, batch_first=True).eval()
    torch.testing.assert_close(run_flipped(single, x, lengths, residual=True), run_flipped(single, x, lengths))


def test_tagger_residual_needs_the_flipped_path_with_stacked_layers() -> None:
    base = {"vocab_size": 30, "num_tags": 5, "embedding_dim": 8, "hidden_size": 6, "num_layers": 2, "residual": True}
    with pytest.raises(ValueError, match="residual needs flipped=True"):
        TaggerConfig(**base)  # type: ignore[arg-type]
    TaggerConfig(**{**base, "num_layers": 1})  # type: ignore[arg-type]  # one layer: nothing to add
    torch.manual_seed(3)
    plain = Tagger(TaggerConfig(**{**base, "residual": False, "flipped": True})).eval()  # type: ignore[arg-type]
    residual = Tagger(TaggerConfig(**{**base, "flipped": True})).eval()  # type: ignore[arg-type]
    residual.load_state_dict(plain.state_dict())  # no new weights
    lengths = torch.tensor([5, 2, 4])
    words = torch.randint(2, 30, (3, 5)).masked_fill(torch.arange(5) >= lengths[:, None], 0)
    assert residual(words, lengths).shape == plain(words, lengths).shape == (3, 5, 5)
    assert not torch.allclose(residual(words, lengths), plain(words, lengths))
