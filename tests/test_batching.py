"""seqtag.batching: padding, collation, the dataset, and the length-bucketing sampler."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from seqtag.batching import (
    Batch,
    BucketBatchSampler,
    TaggingDataset,
    collate,
    encode_chars,
    lengths_to_mask,
    pad_batch,
    padding_fraction,
    random_batches,
)
from seqtag.vocab import PAD_ID, UNK_ID, Vocab

SENTS = [["the", "dog", "barks"], ["a", "cat"], ["Dogs", "bark", "in", "1999"]]
TAGS = [["DET", "NOUN", "VERB"], ["DET", "NOUN"], ["NOUN", "VERB", "ADP", "NUM"]]
WORDS = Vocab.build(SENTS)
TAGSET = Vocab.build(TAGS, unk=False)
CHARS = Vocab.build([list(w) for s in SENTS for w in s])


def dataset(chars: bool = True) -> TaggingDataset:
    return TaggingDataset(SENTS, TAGS, WORDS, TAGSET, CHARS if chars else None)


def zipf_lengths(n: int, seed: int = 0) -> list[int]:
    """Sentence lengths shaped like a real corpus: many short, a long tail."""
    rng = random.Random(seed)
    return [max(1, min(120, int(rng.lognormvariate(2.6, 0.7)))) for _ in range(n)]


# --- padding and masks --------------------------------------------------------------------------


def test_pad_batch_and_mask() -> None:
    ids, lengths, mask = pad_batch([[5, 6, 7], [8]])
    assert ids.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID]]
    assert lengths.tolist() == [3, 1] and mask.tolist() == [[True] * 3, [True, False, False]]
    assert torch.equal(lengths_to_mask(torch.tensor([2, 1]), 3), torch.tensor([[1, 1, 0], [1, 0, 0]]).bool())


@pytest.mark.parametrize(
    ("sequences", "expected"),
    [([], "empty batch"), ([[1], []], "sequence 1 is empty"), ([torch.tensor([1.0])], "holds floats")],
)
@pytest.mark.bad_input
def test_pad_batch_bad_inputs(sequences: list, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        pad_batch(sequences)


def test_lengths_to_mask_rejects_lengths_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="only 2 time steps"):
        lengths_to_mask([3, 1], max_len=2)
    with pytest.raises(ValueError, match="at least one token"):
        lengths_to_mask([3, 0])


# --- collate ------------------------------------------------------------------------------------


def test_collate_dtypes_devices_and_padding() -> None:
    ds = dataset()
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch.words.dtype == torch.int64 and batch.words.shape == (3, 4)
    assert batch.lengths.dtype == torch.int64 and batch.lengths.device.type == "cpu"
    assert batch.lengths.tolist() == [3, 2, 4]
    assert batch.mask.dtype == torch.bool and batch.mask.sum() == batch.num_tokens == 9
    assert batch.tags is not None and batch.tags.dtype == torch.int64
    assert batch.tags[~batch.mask].eq(PAD_ID).all() and batch.tags[batch.mask].ne(PAD_ID).all()
    assert batch.words[~batch.mask].eq(PAD_ID).all()
    assert batch.chars is not None and batch.chars.shape == (3, 4, 5)  # longest word: "barks"
    assert batch.chars[1, 2:].eq(0).all()  # padded words have only padded characters
    assert batch.index is not None and batch.index.tolist() == [0, 1, 2]


def test_batch_to_keeps_lengths_on_cpu() -> None:
    batch = collate([dataset()[0], dataset()[2]]).to("meta")
    assert batch.words.device.type == "meta" and batch.mask.device.type == "meta"
    assert batch.tags is not None and batch.tags.device.type == "meta"
    assert batch.lengths.device.type == "cpu" and batch.index is not None and batch.index.device.type == "cpu"


def test_collate_without_tags_or_chars() -> None:
    ds = TaggingDataset(SENTS, None, WORDS)
    batch = collate([ds[0], ds[1]])
    assert batch.tags is None and batch.chars is None and isinstance(batch, Batch)


@pytest.mark.bad_input
def test_collate_bad_inputs() -> None:
    with pytest.raises(ValueError, match="empty batch"):
        collate([])
    bad = {"words": torch.tensor([2, 3]), "tags": torch.tensor([1])}
    with pytest.raises(ValueError, match="example 0: 2 words but 1 tags"):
        collate([bad])


def test_dataset_encodes_with_normalised_words_and_unknowns() -> None:
    ds = TaggingDataset([["Dogs", "2001", "zebra"]], None, WORDS)
    ids = ds[0]["words"].tolist()
    assert ids[0] == WORDS.index("Dogs") and ids[1] == WORDS.index("0000") and ids[2] == UNK_ID
    assert encode_chars(["ab", "c"], CHARS).shape == (2, 2)


@pytest.mark.parametrize(
    ("sentences", "tags", "tagset", "expected"),
    [
        ([["a"], []], None, None, "sentence 1 is empty"),
        ([["a", "cat"]], [["DET"]], TAGSET, "sentence 0: 2 words but 1 tags"),
        ([["a"]], [["VERB"], ["NOUN"]], TAGSET, "1 sentences but 2 tag sequences"),
        ([["a"]], [["DET"]], None, "without a tag vocabulary"),
        ([["a"]], [["PROPN"]], TAGSET, "sentence 0: unknown token 'PROPN'"),
    ],
)
@pytest.mark.bad_input
def test_dataset_bad_inputs(sentences: list, tags: list | None, tagset: Vocab | None, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        TaggingDataset(sentences, tags, WORDS, tagset)


def test_dataloader_with_sampler_and_collate_sees_every_sentence() -> None:
    ds = dataset()
    loader = DataLoader(ds, batch_sampler=BucketBatchSampler(ds.lengths, 2, seed=1), collate_fn=collate)
    seen = [int(i) for batch in loader for i in batch.index]  # type: ignore[union-attr]
    assert sorted(seen) == [0, 1, 2]


# --- the bucketing sampler ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 60), min_size=1, max_size=300),
    batch_size=st.integers(1, 40),
    pool_factor=st.integers(1, 8),
    use_max_tokens=st.booleans(),
    seed=st.integers(0, 10),
    epoch=st.integers(0, 3),
)
def test_every_sentence_exactly_once_and_limits_respected(
    lengths: list[int], batch_size: int, pool_factor: int, use_max_tokens: bool, seed: int, epoch: int
) -> None:
    max_tokens = max(lengths) * 3 if use_max_tokens else None
    sampler = BucketBatchSampler(
        lengths, batch_size, max_tokens=max_tokens, pool_factor=pool_factor, seed=seed
    )
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert Counter(i for b in batches for i in b) == Counter(range(len(lengths)))
    assert len(sampler) == len(batches)
    for b in batches:
        assert 1 <= len(b) <= batch_size
        if max_tokens is not None:
            assert len(b) * max(lengths[i] for i in b) <= max_tokens


def test_deterministic_given_seed_and_different_across_epochs_and_seeds() -> None:
    lengths = zipf_lengths(500)
    a, b = BucketBatchSampler(lengths, 16, seed=3), BucketBatchSampler(lengths, 16, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and sorted(map(sorted, a)) != sorted(map(sorted, first))
    assert list(BucketBatchSampler(lengths, 16, seed=4)) != first


def test_bucketing_pads_less_than_random_batches() -> None:
    lengths = zipf_lengths(2000, seed=1)
    bucketed = padding_fraction(list(BucketBatchSampler(lengths, 32, seed=0)), lengths)
    plain = padding_fraction(random_batches(len(lengths), 32, seed=0), lengths)
    assert 0.0 <= bucketed < plain / 5  # sorting inside big pools removes most of the padding
    assert plain > 0.3


def test_padding_fraction_value() -> None:
    assert padding_fraction([[0, 1]], [1, 3]) == pytest.approx(1 - 4 / 6)
    assert padding_fraction([], []) == 0.0


def test_no_shuffle_is_length_sorted_and_len_matches() -> None:
    lengths = [5, 1, 3, 3, 2, 9, 1]
    sampler = BucketBatchSampler(lengths, 3, shuffle=False)
    batches = list(sampler)
    flat = [i for b in batches for i in b]
    assert [lengths[i] for i in flat] == sorted(lengths) and len(sampler) == len(batches) == 3


def test_drop_last_drops_only_the_epoch_remainder() -> None:
    # Regression: drop_last used to drop the short last batch of every pool, i.e. the longest
    # sentences of each pool.
    lengths = zipf_lengths(1000)
    sampler = BucketBatchSampler(lengths, 32, max_tokens=600, pool_factor=2, drop_last=True)
    kept = sum(len(b) for b in sampler)
    assert len(lengths) - kept < 32
    assert len(list(BucketBatchSampler(lengths, 32, shuffle=False, drop_last=True))) == 1000 // 32


def test_lengths_may_be_a_generator() -> None:
    # Regression: the max_tokens check used to use up a generator before it was stored.
    sampler = BucketBatchSampler((n for n in [2, 3, 4]), 2, max_tokens=8)
    assert sorted(i for b in sampler for i in b) == [0, 1, 2]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"lengths": [3, 2], "batch_size": 0}, "batch_size must be >= 1"),
        ({"lengths": [3, 2], "batch_size": 2, "pool_factor": 0}, "pool_factor must be >= 1"),
        ({"lengths": [3, 0], "batch_size": 2}, r"lengths\[1\] = 0"),
        ({"lengths": [3, 2.5], "batch_size": 2}, r"lengths\[1\] = 2.5"),
        ({"lengths": [3, 7], "batch_size": 2, "max_tokens": 5}, "smaller than the longest sentence"),
    ],
)
@pytest.mark.bad_input
def test_sampler_bad_inputs(kwargs: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        BucketBatchSampler(**kwargs)


def test_random_batches_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        random_batches(10, 0)
    assert sorted(i for b in random_batches(10, 3) for i in b) == list(range(10))


def test_lengths_to_mask_goes_to_the_device_asked_for() -> None:
    mask = lengths_to_mask([3, 1], 4, device="meta")  # built on the CPU, copied once
    assert mask.device.type == "meta" and mask.shape == (2, 4) and mask.dtype == torch.bool
    assert lengths_to_mask([3, 1]).device.type == "cpu"
