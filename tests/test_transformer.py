"""seqtag.transformer: padding masks, positions, shapes and input checks of TransformerTagger."""

from __future__ import annotations

import pytest
import torch

from seqtag.batching import pad_batch
from seqtag.losses import masked_cross_entropy
from seqtag.transformer import TransformerConfig, TransformerTagger, sinusoidal_positions

pytestmark = pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")

SENTENCES = [[3, 4, 5, 6, 7, 8, 9], [10, 11], [12, 13, 14, 4]]


def make(positional: str = "sinusoidal", **kwargs: object) -> TransformerTagger:
    torch.manual_seed(0)
    config = TransformerConfig(
        vocab_size=20, num_tags=5, d_model=16, nhead=2, dim_feedforward=32, dropout=0.0,
        positional=positional, max_len=16, **kwargs,  # type: ignore[arg-type]
    )
    return TransformerTagger(config)


def test_shapes_and_predict() -> None:
    model = make()
    words, lengths, mask = pad_batch(SENTENCES)
    logits = model(words, lengths)
    assert logits.shape == (3, 7, 5) and logits.dtype == torch.float32
    predicted = model.predict(words, lengths)
    assert predicted.shape == (3, 7) and predicted.dtype == torch.int64
    assert (predicted[~mask] == 0).all() and (predicted[mask] != 0).all()


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", "none"])
@pytest.mark.parametrize("train", [True, False])
def test_masked_outputs_do_not_depend_on_padding(positional: str, train: bool) -> None:
    model = make(positional).train(train)
    words, lengths, _ = pad_batch(SENTENCES)
    batch = model(words, lengths)
    wider = torch.nn.functional.pad(words, (0, 5))  # five more pads for everyone
    for b, sentence in enumerate(SENTENCES):
        n = len(sentence)
        alone = model(torch.tensor([sentence]), torch.tensor([n]))[0]
        torch.testing.assert_close(batch[b, :n], alone)
        torch.testing.assert_close(model(wider, lengths)[b, :n], alone)


def test_without_the_mask_real_tokens_see_the_pads() -> None:
    model = make()
    words, lengths, _ = pad_batch(SENTENCES)
    unmasked = model(words, lengths, mask_padding=False)
    alone = model(torch.tensor([SENTENCES[1]]), torch.tensor([2]))[0]
    assert (unmasked[1, :2] - alone).abs().max() > 1e-3  # the short sentence changed
    # The longest sentence has no pads, so it is right either way.
    longest = model(torch.tensor([SENTENCES[0]]), torch.tensor([7]))[0]
    torch.testing.assert_close(unmasked[0], longest)


def test_eval_fast_path_zeroes_pads_and_keeps_real_tokens() -> None:
    model = make().eval()
    words, lengths, mask = pad_batch(SENTENCES)
    x = model.embed(words)
    slow = model.encoder(x, src_key_padding_mask=~mask)  # autograd on: the ordinary path
    with torch.no_grad():
        fast = model.encoder(x, src_key_padding_mask=~mask)  # nested tensors: pads dropped
    assert (fast[~mask] == 0).all() and (slow[~mask] != 0).any()
    torch.testing.assert_close(fast[mask], slow[mask].detach())


def test_positions_make_order_matter() -> None:
    words = torch.tensor([[3, 4, 5, 6]])
    flipped = words.flip(1)
    lengths = torch.tensor([4])
    for positional, equivariant in (("none", True), ("sinusoidal", False), ("learned", False)):
        model = make(positional)
        same = torch.allclose(model(words, lengths).flip(1), model(flipped, lengths), atol=1e-5)
        assert same == equivariant, positional


def test_sinusoidal_table() -> None:
    table = sinusoidal_positions(10, 6)
    assert table.shape == (10, 6)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1.0] * 3))
    assert torch.allclose(table.norm(dim=1), torch.full((10,), 3**0.5))


def test_trains_on_a_toy_batch() -> None:
    model = make()
    words, lengths, mask = pad_batch(SENTENCES)
    tags = ((words % 4) + 1).masked_fill(~mask, 0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = masked_cross_entropy(model(words, lengths), tags, mask)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    assert torch.equal(model.eval().predict(words, lengths), tags)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m(torch.zeros(2, 3), torch.tensor([3, 3])), "integer ids"),
        (lambda m: m(torch.zeros(3, dtype=torch.long), torch.tensor([3])), r"must be \(B, T\)"),
        (lambda m: m(torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 4])), "lengths do not match"),
        (lambda m: m(torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 0])), "at least one token"),
        (lambda m: m(torch.ones(1, 17, dtype=torch.long), torch.tensor([17])), "max_len=16"),
    ],
)
def test_bad_inputs(call: object, message: str) -> None:
    model = make()
    with pytest.raises(ValueError, match=message):
        call(model)  # type: ignore[operator]


def test_bad_configs() -> None:
    with pytest.raises(ValueError, match="must divide"):
        TransformerConfig(10, 3, d_model=10, nhead=4)
    with pytest.raises(ValueError, match="positional"):
        TransformerConfig(10, 3, positional="rotary")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pass chars"):
        make(char_vocab_size=10)(torch.ones(1, 2, dtype=torch.long), torch.tensor([2]))
    with pytest.raises(ValueError, match="unknown TransformerConfig fields"):
        TransformerConfig.from_dict({"vocab_size": 5, "num_tags": 3, "heads": 2})


def test_decode_from_one_forward_matches_predict_and_keeps_the_scores() -> None:
    model = make().eval()
    words, lengths, mask = pad_batch(SENTENCES)
    scores = model(words, lengths)
    kept = scores.clone()
    pred = model.decode(scores, mask)
    assert torch.equal(scores, kept)  # the same scores can also give the loss
    assert torch.equal(pred, model.predict(words, lengths))
    assert torch.all(pred[mask] != 0) and torch.all(pred[~mask] == 0)
    with pytest.raises(ValueError, match=r"mask \(B, T\) bool"):
        model.decode(scores, mask.long())
