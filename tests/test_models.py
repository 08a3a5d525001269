"""Tests for seqtag.models: the tagger's options (GRU, bidirectional, layers, dropout, char-CNN,
pretrained embeddings) and the packed RNN helper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqtag.batching import TaggingDataset, collate, encode_chars
from seqtag.models import CharCNN, CharLSTM, Tagger, TaggerConfig, run_packed
from seqtag.vocab import PAD_ID, Vocab

V, C = 20, 5


def _batch(lengths: list[int], vocab_size: int = V, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    words = torch.randint(2, vocab_size, (len(lengths), t), generator=g)
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    return words.masked_fill(~mask, PAD_ID), torch.tensor(lengths)


def _model(**kw: object) -> Tagger:
    torch.manual_seed(0)
    base = {"vocab_size": V, "num_tags": C, "embedding_dim": 8, "hidden_size": 6}
    return Tagger(TaggerConfig(**{**base, **kw})).eval()  # type: ignore[arg-type]


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"rnn": "rnn"}, "rnn must be 'lstm' or 'gru'"),
        ({"hidden_size": 0}, "hidden_size must be >= 1"),
        ({"num_layers": 0}, "num_layers must be >= 1"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"rnn_dropout": -0.1}, r"rnn_dropout must be in \[0, 1\)"),
        ({"vocab_size": 1}, "vocab_size and num_tags must count <pad>"),
        ({"char_encoder": "gru"}, "char_encoder must be 'cnn' or 'lstm'"),
        ({"char_encoder": "lstm", "char_filters": 7}, "make it even, got 7"),
        ({"head_hidden": -1}, "head_hidden must be >= 0"),
    ],
)
def test_config_rejects_bad_values(kw: dict[str, object], message: str) -> None:
    base = {"vocab_size": V, "num_tags": C}
    with pytest.raises(ValueError, match=message):
        TaggerConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_config_round_trips_and_names_unknown_fields() -> None:
    cfg = TaggerConfig(V, C, rnn="gru", num_layers=2, char_vocab_size=30)
    assert TaggerConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"unknown TaggerConfig fields \['hiden_size'\]"):
        TaggerConfig.from_dict({**cfg.to_dict(), "hiden_size": 3})


# ---------------------------------------------------------------- output layers


def test_head_hidden_puts_a_relu_layer_with_dropout_before_each_tag_sets_scores() -> None:
    plain = _model(aux_num_tags=4)
    mlp = _model(aux_num_tags=4, head_hidden=7, dropout=0.5)
    words, lengths = _batch([5, 3])
    h = mlp.features(words, lengths)  # eval: no dropout anywhere
    for layer, n in ((mlp.output, C), (mlp.aux_output, 4)):
        assert isinstance(layer, nn.Sequential)
        first, last = layer[0], layer[-1]
        assert (first.in_features, first.out_features, last.in_features, last.out_features) == (12, 7, 7, n)
        torch.testing.assert_close(layer(h), last(torch.relu(first(h))))
    main, second = mlp.forward_heads(words, lengths)
    assert main.shape == (2, 5, C) and second is not None and second.shape == (2, 5, 4)
    torch.testing.assert_close(main, mlp(words, lengths))
    # each head gains width*hidden + hidden + hidden*tags + tags weights instead of width*tags + tags
    extra = sum((12 * 7 + 7 + 7 * n + n) - (12 * n + n) for n in (C, 4))
    assert mlp.num_parameters() - plain.num_parameters() == extra
    # the hidden layer's dropout is on in training only
    mlp.train()
    torch.manual_seed(0)
    a = mlp.output(h)
    torch.manual_seed(1)
    assert not torch.allclose(a, mlp.output(h))
    assert isinstance(plain.output, nn.Linear)


# ---------------------------------------------------------------- GRU / LSTM, directions, layers


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_output_shapes_for_every_rnn_option(rnn: str, bidirectional: bool, num_layers: int) -> None:
    model = _model(rnn=rnn, bidirectional=bidirectional, num_layers=num_layers)
    assert isinstance(model.rnn, nn.LSTM if rnn == "lstm" else nn.GRU)
    assert model.rnn.num_layers == num_layers and model.rnn.bidirectional == bidirectional
    directions = 2 if bidirectional else 1
    assert model.output.in_features == directions * 6
    words, lengths = _batch([5, 3, 1])
    assert model(words, lengths).shape == (3, 5, C)
    out, state = run_packed(model.rnn, model.embedding(words), lengths)
    assert out.shape == (3, 5, directions * 6)
    # LSTM state is (h_n, c_n); GRU state is h_n alone. Both (layers * directions, B, H).
    if rnn == "lstm":
        h_n, c_n = state
        assert c_n.shape == h_n.shape
    else:
        h_n = state
        assert isinstance(h_n, torch.Tensor)
    assert h_n.shape == (num_layers * directions, 3, 6)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_final_state_is_the_last_real_step(rnn: str) -> None:
    """Packing makes h_n the state at each sentence's own last word, not at the padding."""
    model = _model(rnn=rnn, bidirectional=False)
    words, lengths = _batch([5, 2])
    out, state = run_packed(model.rnn, model.embedding(words), lengths)
    h_n = state[0] if rnn == "lstm" else state
    torch.testing.assert_close(h_n[-1, 0], out[0, 4])
    torch.testing.assert_close(h_n[-1, 1], out[1, 1])
    assert torch.all(out[1, 2:] == 0)  # padded steps are zeros


def test_bidirectional_backward_half_ignores_padding() -> None:
    """Each sentence's outputs are the same alone and in a padded batch (both directions)."""
    model = _model(bidirectional=True, num_layers=2)
    words, lengths = _batch([6, 3])
    batched = model(words, lengths)
    alone = model(words[1:, :3], lengths[1:])
    torch.testing.assert_close(batched[1, :3], alone[0])


def test_unpacked_backward_direction_sees_padding() -> None:
    """packed=False is the article's bug for a BiLSTM: padding leaks into the backward direction."""
    model = _model(bidirectional=True, packed=False)
    words, lengths = _batch([6, 3])
    assert not torch.allclose(model(words, lengths)[1, :3], model(words[1:, :3], lengths[1:])[0])


def test_stacked_layers_add_parameters() -> None:
    one, two = _model(num_layers=1), _model(num_layers=2)
    assert two.num_parameters() > one.num_parameters()
    assert _model(num_layers=2, rnn_dropout=0.5).rnn.dropout == 0.5
    assert _model(num_layers=1, rnn_dropout=0.5).rnn.dropout == 0.0  # no warning, no effect


def test_gru_has_three_quarters_of_the_lstm_weights() -> None:
    lstm, gru = _model(rnn="lstm"), _model(rnn="gru")
    rnn_params = [sum(p.numel() for p in m.rnn.parameters()) for m in (lstm, gru)]
    assert rnn_params[1] * 4 == rnn_params[0] * 3


# ---------------------------------------------------------------- dropout


def test_dropout_eval_is_deterministic_and_train_is_not() -> None:
    model = _model(dropout=0.5, num_layers=2, rnn_dropout=0.5)
    words, lengths = _batch([7, 4, 2])
    model.eval()
    torch.testing.assert_close(model(words, lengths), model(words, lengths), rtol=0, atol=0)
    model.train()
    torch.manual_seed(1)
    a = model(words, lengths)
    torch.manual_seed(2)
    b = model(words, lengths)
    assert not torch.allclose(a, b)
    torch.manual_seed(1)
    torch.testing.assert_close(model(words, lengths), a)  # same seed, same masks


def test_no_dropout_train_equals_eval() -> None:
    model = _model(dropout=0.0)
    words, lengths = _batch([4, 2])
    eval_out = model(words, lengths)
    torch.testing.assert_close(model.train()(words, lengths), eval_out)


# ---------------------------------------------------------------- char-CNN


def _chars_of(sentences: list[list[str]], chars: Vocab) -> torch.Tensor:
    ds = TaggingDataset(sentences, None, Vocab(), chars=chars)
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch.chars is not None
    return batch.chars


CHARS = Vocab(sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,'")))


@pytest.mark.parametrize("kernel_size", [2, 3, 4, 5])
def test_charcnn_word_vector_does_not_depend_on_its_batch(kernel_size: int) -> None:
    torch.manual_seed(0)
    cnn = CharCNN(len(CHARS), 6, 7, kernel_size).eval()
    alone = cnn(_chars_of([["cat"]], CHARS))[0, 0]
    batches = [
        [["cat"]],
        [["the", "cat", "sat"], ["Extraordinarily", "long", "words"]],
        [["a", "b"], ["I", "saw", "a", "cat", "yesterday", "."]],
        [["cat"], ["x"], ["supercalifragilistic", "cat"]],
    ]
    for sentences in batches:
        feats = cnn(_chars_of(sentences, CHARS))
        for b, sent in enumerate(sentences):
            for t, word in enumerate(sent):
                if word == "cat":
                    torch.testing.assert_close(feats[b, t], alone, rtol=0, atol=1e-6)


def test_charcnn_shapes_and_padding_words_are_zero() -> None:
    torch.manual_seed(0)
    cnn = CharCNN(len(CHARS), 6, 7, 3)
    chars = _chars_of([["a", "bb", "ccc"], ["dddd"]], CHARS)
    assert chars.shape == (2, 3, 4)
    feats = cnn(chars)
    assert feats.shape == (2, 3, 7) and cnn.out_dim == 7
    assert torch.all(feats[1, 1:] == 0)  # sentence padding: all-padding words
    feats.sum().backward()  # no NaN from the -inf masking
    assert all(torch.isfinite(p.grad).all() for p in cnn.parameters() if p.grad is not None)


def test_charcnn_single_char_words_and_encode_chars() -> None:
    ids = encode_chars(["I", "am"], CHARS)
    assert ids.tolist() == [[CHARS.index("I"), 0], [CHARS.index("a"), CHARS.index("m")]]
    cnn = CharCNN(len(CHARS), 4, 5, 3).eval()
    out = cnn(ids.unsqueeze(0))
    assert out.shape == (1, 2, 5) and torch.isfinite(out).all()


def test_tagger_with_chars_needs_chars_and_widens_the_rnn_input() -> None:
    model = _model(char_vocab_size=len(CHARS), char_filters=7, embedding_dim=8)
    assert model.rnn.input_size == 8 + 7
    words, lengths = _batch([3, 2])
    with pytest.raises(ValueError, match="has a char-CNN: pass chars"):
        model(words, lengths)
    chars = _chars_of([["ab", "c", "d"], ["ef", "g"]], CHARS)
    out = model(words, lengths, chars)
    assert out.shape == (2, 3, C)


# ---------------------------------------------------------------- char-LSTM


@pytest.mark.parametrize("deduplicate", [True, False])
def test_charlstm_is_a_bilstm_over_each_words_own_characters(deduplicate: bool) -> None:
    torch.manual_seed(0)
    enc = CharLSTM(len(CHARS), 6, 8).eval()
    sentences = [["the", "cat", "sat"], ["Extraordinarily", "long", "words", "cat"], ["a"]]
    feats = enc.encode(_chars_of(sentences, CHARS), deduplicate=deduplicate)
    assert feats.shape == (3, 4, 8) and enc.out_dim == 8
    for b, sent in enumerate(sentences):
        for t, word in enumerate(sent):  # the word alone, no padding: a plain nn.LSTM reads it
            x = enc.embedding(torch.tensor([CHARS.encode(list(word))]))  # (1, L, 6)
            out, _ = enc.rnn(x)  # (1, L, 8)
            expected = torch.cat([out[0, -1, :4], out[0, 0, 4:]])  # left-to-right's last, right-to-left's first
            torch.testing.assert_close(feats[b, t], expected, rtol=0, atol=1e-6)
        assert torch.all(feats[b, len(sent):] == 0)  # sentence padding: zeros


def test_charlstm_rejects_an_odd_width_and_bad_chars() -> None:
    with pytest.raises(ValueError, match="even number >= 2, got 5"):
        CharLSTM(10, 4, 5)
    with pytest.raises(ValueError, match=r"must be \(B, T, W\)"):
        CharLSTM(10, 4, 6)(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer ids"):
        CharLSTM(10, 4, 6)(torch.zeros(1, 2, 3))


def test_tagger_with_a_charlstm_widens_the_rnn_input_and_learns_through_it() -> None:
    model = _model(char_vocab_size=len(CHARS), char_filters=6, char_encoder="lstm").train()
    assert model.char_lstm is not None and model.char_cnn is None and model.rnn.input_size == 8 + 6
    words, lengths = _batch([3, 2])
    with pytest.raises(ValueError, match="has a char-LSTM: pass chars"):
        model(words, lengths)
    out = model(words, lengths, _chars_of([["ab", "c", "d"], ["ef", "g"]], CHARS))
    assert out.shape == (2, 3, C)
    out.sum().backward()
    grads = [p.grad for p in model.char_lstm.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_tagger_with_chars_predictions_do_not_depend_on_batch_mates() -> None:
    model = _model(char_vocab_size=len(CHARS), bidirectional=True)
    sentences = [["I", "saw", "it"], ["Extraordinarily", "long", "sentences", "are", "here", "."]]
    words = Vocab.build(sentences)
    ds = TaggingDataset(sentences, None, words, chars=CHARS)
    both = collate([ds[0], ds[1]])
    alone = collate([ds[0]])
    out_both = model(both.words, both.lengths, both.chars)
    out_alone = model(alone.words, alone.lengths, alone.chars)
    torch.testing.assert_close(out_both[0, :3], out_alone[0], rtol=0, atol=1e-6)


# ---------------------------------------------------------------- inputs, predictions, pretrained


def test_forward_rejects_bad_words() -> None:
    model = _model()
    with pytest.raises(ValueError, match=r"words must be \(B, T\)"):
        model(torch.tensor([1, 2]), torch.tensor([2]))
    with pytest.raises(ValueError, match="words must be integer ids"):
        model(torch.ones(1, 2), torch.tensor([2]))


def test_predict_pads_and_never_predicts_pad() -> None:
    model = _model()
    with torch.no_grad():
        model.output.bias[PAD_ID] = 100.0  # make <pad> the top score everywhere
    words, lengths = _batch([4, 2])
    pred = model.predict(words, lengths)
    assert pred.shape == (2, 4) and pred.dtype == torch.int64
    assert torch.all(pred[0] != PAD_ID) and torch.all(pred[1, :2] != PAD_ID)
    assert torch.all(pred[1, 2:] == PAD_ID)


def test_load_pretrained_copies_found_rows_and_checks_shape() -> None:
    model = _model()
    vectors = torch.randn(V, 8)
    found = torch.zeros(V, dtype=torch.bool)
    found[[0, 3, 5]] = True
    found_copy = found.clone()
    before = model.embedding.weight.detach().clone()
    model.load_pretrained(vectors, found)
    weight = model.embedding.weight.detach()
    assert torch.equal(found, found_copy)  # the caller's mask is left alone
    torch.testing.assert_close(weight[[3, 5]], vectors[[3, 5]])
    assert torch.equal(weight[PAD_ID], before[PAD_ID])  # <pad> stays zero
    assert torch.equal(weight[[1, 2, 4]], before[[1, 2, 4]])
    with pytest.raises(ValueError, match=r"do not match the embedding \(20, 8\)"):
        model.load_pretrained(torch.randn(V, 9))


def test_freeze_embeddings_excludes_them_from_training() -> None:
    frozen, tuned = _model(freeze_embeddings=True), _model(freeze_embeddings=False)
    assert tuned.num_parameters() - frozen.num_parameters() == V * 8
    assert frozen.num_parameters(trainable_only=False) == tuned.num_parameters()


def test_word_dropout_replaces_words_by_unk_in_training_only() -> None:
    from seqtag.vocab import UNK_ID

    model = _model(word_dropout=0.999999)
    words, lengths = _batch([5, 3])
    all_unk = torch.where(words != PAD_ID, torch.full_like(words, UNK_ID), words)
    expected = model(all_unk, lengths)
    assert not torch.allclose(model(words, lengths), expected)  # eval: the words themselves
    torch.testing.assert_close(model.train()(words, lengths), expected)  # train: <unk> everywhere
    with pytest.raises(ValueError, match=r"word_dropout must be in \[0, 1\)"):
        TaggerConfig(V, C, word_dropout=1.0)


def test_char_cnn_reads_no_value_back_from_a_device() -> None:
    """torch.unique (deduplicating words) must wait for the device to know its output size: on a
    GPU it is skipped. "meta" stands in for any non-CPU device (any read raises)."""
    from seqtag.models import CharCNN

    cnn = CharCNN(10, 4, 6, 3)
    chars = torch.randint(0, 10, (2, 5, 7))
    expected = cnn(chars)  # the CPU path (deduplicated)
    out = cnn.to("meta")(chars.to("meta"))
    assert out.shape == expected.shape == (2, 5, 6)


def test_char_cnn_same_result_with_and_without_deduplication() -> None:
    from seqtag.models import CharCNN

    torch.manual_seed(0)
    cnn = CharCNN(10, 4, 6, 3)
    chars = torch.randint(0, 10, (3, 6, 5))
    chars[0, 1] = chars[2, 3]  # a repeated word
    chars[1, 4:] = 0  # sentence padding
    torch.testing.assert_close(cnn(chars), cnn.encode(chars, deduplicate=False))
