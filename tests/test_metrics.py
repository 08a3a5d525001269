"""seqtag.metrics: one forward pass per batch gives the loss and the decode; counts stay on the
device until one transfer at the end; the loss is the per-token mean; summaries of confusions."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.data import DataLoader

from seqtag.batching import BucketBatchSampler, TaggingDataset, collate
from seqtag.losses import sequence_loss
from seqtag.metrics import evaluate, evaluate_joint, hardest_tags, top_confusions
from seqtag.models import Tagger, TaggerConfig
from seqtag.vocab import UNK_ID, Vocab

WORDS = Vocab(["the", "dog", "cat", "sees", "."])
TAGS = Vocab(["DET", "NOUN", "VERB", "PUNCT"], unk=False)
TAG_OF = {"the": "DET", "dog": "NOUN", "cat": "NOUN", "sees": "VERB", ".": "PUNCT", "gnu": "NOUN"}


def corpus(n: int, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    rng = random.Random(seed)
    sents = [[rng.choice(list(TAG_OF)) for _ in range(rng.randint(1, 7))] for _ in range(n)]
    return sents, [[TAG_OF[w] for w in s] for s in sents]


def loader(n: int, batch_size: int, seed: int = 0) -> DataLoader:
    sents, tags = corpus(n, seed)
    ds = TaggingDataset(sents, tags, WORDS, TAGS)
    return DataLoader(ds, batch_sampler=BucketBatchSampler(ds.lengths, batch_size, shuffle=False), collate_fn=collate)


def model(crf: bool = False) -> Tagger:
    torch.manual_seed(0)
    return Tagger(TaggerConfig(len(WORDS), len(TAGS), embedding_dim=8, hidden_size=8, crf=crf)).eval()


def count_calls(obj: object, name: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = getattr(obj, name)

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, counted)
    return calls


@pytest.mark.parametrize("crf", [False, True])
def test_one_forward_per_batch_gives_loss_and_decode(crf: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    m, data = model(crf), loader(40, 8)
    forwards = count_calls(m, "forward", monkeypatch)
    if crf:
        viterbis = count_calls(m.crf, "viterbi", monkeypatch)
    ev = evaluate(m, data, TAGS)
    batches = len(data)
    assert batches == 5
    assert len(forwards) == batches  # not 2 per batch (loss, then predict)
    if crf:
        assert len(viterbis) == batches
    assert ev.tokens == sum(len(s) for s in corpus(40)[0])


@pytest.mark.parametrize("crf", [False, True])
def test_evaluation_loss_is_the_per_token_mean(crf: bool) -> None:
    m, data = model(crf), loader(30, 7, seed=3)
    ev = evaluate(m, data, TAGS)
    with torch.no_grad():
        total = sum(float(sequence_loss(m, b, reduction="sum")) for b in data)
    tokens = sum(b.num_tokens for b in data)
    assert ev.loss == pytest.approx(total / tokens, rel=1e-5)
    assert ev.loss > 0


@pytest.mark.parametrize("crf", [False, True])
def test_predictions_and_counts_match_a_plain_recount(crf: bool) -> None:
    m = model(crf)
    sents, tags = corpus(25, seed=5)
    sents[0] = ["the", "gnu", "sees", "the", "gnu"]  # "gnu" is <unk>
    tags[0] = [TAG_OF[w] for w in sents[0]]
    ds = TaggingDataset(sents, tags, WORDS, TAGS)
    data = DataLoader(ds, batch_sampler=BucketBatchSampler(ds.lengths, 6, shuffle=False), collate_fn=collate)
    ev = evaluate(m, data, TAGS, unknown_ids=[UNK_ID])
    expected: list[list[str]] = [[] for _ in sents]
    for b in data:
        pred = m.predict(b.words, b.lengths, b.chars)
        for row, i, n in zip(pred, b.index.tolist(), b.lengths.tolist(), strict=True):
            expected[i] = TAGS.decode(row[:n])
    assert ev.predictions == expected
    gold = [t for s in tags for t in s]
    flat = [t for p in expected for t in p]
    assert ev.correct == sum(g == p for g, p in zip(gold, flat, strict=True))
    assert ev.oov_tokens == sum(w not in WORDS for s in sents for w in s) >= 2
    assert int(ev.confusion.sum()) == ev.tokens == len(gold)
    assert ev.confusion.device.type == "cpu" and ev.confusion.dtype == torch.int64


def test_evaluate_does_not_sync_per_batch(host_reads) -> None:  # noqa: ANN001
    """Reading a device value in Python (``.item()``, ``int(t)``, ``.tolist()``, ``.cpu()``...) waits
    for the GPU. Count those calls made by seqtag.metrics itself: the count must not grow with the
    number of batches (the counts accumulate on the device; one transfer at the end)."""
    calls = host_reads("metrics.py")
    m = model()
    evaluate(m, loader(4, 4), TAGS)
    one_batch = len(calls)
    calls.clear()
    evaluate(m, loader(40, 4), TAGS)
    assert len(calls) == one_batch, f"{one_batch} reads for 1 batch, {len(calls)} for 10"
    assert one_batch <= 12


def test_evaluate_checks_its_inputs() -> None:
    with pytest.raises(ValueError, match="labelled"):
        ds = TaggingDataset([["the"]], None, WORDS)
        evaluate(model(), DataLoader(ds, batch_size=1, collate_fn=collate), TAGS)
    with pytest.raises(ValueError, match="num_tags"):
        evaluate(model(), loader(3, 2), Vocab(["DET"], unk=False))


def test_top_confusions_and_hardest_tags() -> None:
    confusion = torch.tensor([[5, 2, 0], [7, 1, 0], [0, 0, 9]])
    labels = ["A", "B", "C"]
    assert top_confusions(confusion, labels, k=5) == [
        {"gold": "B", "predicted": "A", "count": 7},
        {"gold": "A", "predicted": "B", "count": 2},
    ]
    with pytest.raises(ValueError, match="C = len"):
        top_confusions(confusion, ["A", "B"])
    per_tag = {"A": {"f1": 0.5, "support": 60}, "B": {"f1": 0.1, "support": 10}, "C": {"f1": 0.9, "support": 99}}
    assert [r["tag"] for r in hardest_tags(per_tag, min_support=50)] == ["A", "C"]


# ---------------------------------------------------------------- both output layers in one pass

COARSE = Vocab(["W", "P"], unk=False)  # a second tag set: word or punctuation


def joint_loader(n: int, batch_size: int) -> DataLoader:
    sents, tags = corpus(n, seed=7)
    coarse = [["P" if w == "." else "W" for w in s] for s in sents]
    ds = TaggingDataset(sents, tags, WORDS, TAGS)
    for item, other in zip(ds.items, TaggingDataset(sents, coarse, WORDS, COARSE).items, strict=True):
        item["aux_tags"] = other["tags"]  # as TrainedTagger.dataset joins a second tag set
    return DataLoader(ds, batch_sampler=BucketBatchSampler(ds.lengths, batch_size, shuffle=False), collate_fn=collate)


def joint_model() -> Tagger:
    torch.manual_seed(0)
    return Tagger(TaggerConfig(len(WORDS), len(TAGS), embedding_dim=8, hidden_size=8, aux_num_tags=len(COARSE))).eval()


def test_evaluate_joint_is_both_evaluations_from_one_encoder_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    m, data = joint_model(), joint_loader(30, 7)
    first, second = evaluate(m, data, TAGS), evaluate(m, data, COARSE, aux=True)
    encoder = count_calls(m, "features", monkeypatch)
    both = evaluate_joint(m, data, TAGS, COARSE)
    assert len(encoder) == len(data) == 5  # one encoder pass per batch, not one per output layer
    for one, joint in zip((first, second), both, strict=True):
        assert joint.predictions == one.predictions
        assert (joint.correct, joint.tokens, joint.oov_tokens, joint.labels) == (one.correct, one.tokens, one.oov_tokens, one.labels)
        assert torch.equal(joint.confusion, one.confusion)
        assert joint.loss == pytest.approx(one.loss, rel=1e-6)
    assert both[1].labels == ["W", "P"] and both[0].labels == TAGS.itos[1:]


def test_evaluate_joint_checks_its_inputs() -> None:
    with pytest.raises(ValueError, match="second output layer"):
        evaluate_joint(model(), loader(3, 2), TAGS, COARSE)
    with pytest.raises(ValueError, match="aux_tags"):  # batches without the second tag set
        evaluate_joint(joint_model(), loader(3, 2), TAGS, COARSE)
    with pytest.raises(ValueError, match="num_tags"):
        evaluate_joint(joint_model(), joint_loader(3, 2), TAGS, Vocab(["W", "P", "X"], unk=False))
