"""Tests for seqtag.vocab: reserved ids, building, encoding, JSON round trips, bad input."""

import json
from collections import Counter

import pytest
import torch

from seqtag.vocab import PAD, PAD_ID, UNK, UNK_ID, Vocab, normalize_word


def test_reserved_ids_and_order():
    v = Vocab(["is", "it"])
    assert v.itos[:2] == [PAD, UNK] and (PAD_ID, UNK_ID) == (0, 1)
    assert v.encode(["is", "it"]) == [2, 3]
    tags = Vocab(["VB", "PRP"], unk=False)
    assert tags.itos == [PAD, "VB", "PRP"] and len(tags) == 3


def test_unknown_words_map_to_unk_but_unknown_tags_raise():
    v = Vocab(["is"])
    assert v.encode(["is", "sorry"]) == [2, UNK_ID]
    tags = Vocab(["VB"], unk=False)
    with pytest.raises(KeyError, match="unknown token 'XX'"):
        tags.encode(["XX"])


def test_from_counts_respects_min_freq_and_orders_by_frequency_then_alphabet():
    counts = Counter({"b": 3, "a": 3, "c": 1, "d": 2})
    v = Vocab.from_counts(counts, min_freq=2)
    assert v.itos[2:] == ["a", "b", "d"]
    assert "c" not in v
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.from_counts(counts, min_freq=0)


def test_build_counts_sentences_and_rejects_strings():
    v = Vocab.build([["ooh", "ooh"], ["sorry", "yeah"]], min_freq=2)
    assert v.itos[2:] == ["ooh"]
    with pytest.raises(TypeError, match="lists of tokens"):
        Vocab.build(["is it too late"])


def test_decode_accepts_tensors_and_checks_range():
    v = Vocab(["is", "it"])
    assert v.decode(torch.tensor([2, 3, 0])) == ["is", "it", PAD]
    with pytest.raises(IndexError, match="out of range"):
        v.decode([99])


def test_encode_rejects_a_plain_string():
    with pytest.raises(TypeError, match="split it first"):
        Vocab(["a"]).encode("a b")


def test_duplicates_and_non_strings_are_errors():
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(["a", "a"])
    with pytest.raises(TypeError, match="tokens must be str, got int: 3"):
        Vocab(["a", 3])  # type: ignore[list-item]


def test_json_round_trip(tmp_path):
    for v in (Vocab(["is", "it", "é", "🙂"]), Vocab(["VB"], unk=False)):
        path = tmp_path / "v.json"
        v.save(path)
        assert Vocab.load(path) == v
        assert not list(tmp_path.glob("*.tmp"))


def test_loading_bad_files_names_the_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON vocabulary"):
        Vocab.load(bad)
    bad.write_text(json.dumps({"itos": ["x", "<unk>"], "unk": True}))
    with pytest.raises(ValueError, match="must start with"):
        Vocab.load(bad)
    bad.write_text(json.dumps({"unk": True}))
    with pytest.raises(ValueError, match="missing"):
        Vocab.load(bad)


def test_normalize_word_keeps_case_and_maps_digits():
    assert normalize_word("Bieber") == "Bieber"
    assert normalize_word("1984") == normalize_word("2016") == "0000"
    assert normalize_word("3.5km") == "0.0km"


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    import os

    path = tmp_path / "words.json"
    Vocab(["old"]).save(path)
    stale = tmp_path / "words.json.tmp"  # another writer's temporary file: not ours to touch
    stale.write_text("someone else's")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        Vocab(["new"]).save(path)
    monkeypatch.undo()
    assert Vocab.load(path) == Vocab(["old"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["words.json", "words.json.tmp"]
    assert stale.read_text() == "someone else's"
