"""seqtag.tagger's Python API: seqtag.load(path).tag(text) / tag_batch(texts), on a tiny model trained here."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

import seqtag
from seqtag.config import TrainConfig
from seqtag.data import Sentence, read_conllu
from seqtag.tagger import TrainedTagger, tag_conllu_lines, tag_text_lines
from seqtag.tokenize import tokenize
from seqtag.train import fit

WORDS = {"PRON": ["I", "it", "we"], "AUX": ["do", "is"], "PART": ["n't"], "VERB": ["think", "know", "see"],
         "ADV": ["too", "now"], "ADJ": ["late", "good"], "PUNCT": [".", "?"]}
PATTERNS = [["PRON", "AUX", "PART", "VERB", "PUNCT"], ["PRON", "AUX", "ADV", "ADJ", "PUNCT"],
            ["PRON", "VERB", "PRON", "PUNCT"], ["AUX", "PRON", "ADJ", "ADV", "PUNCT"]]


def toy(n: int, seed: int) -> list[Sentence]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tags = rng.choice(PATTERNS)
        words = [rng.choice(WORDS[t]) for t in tags]
        out.append(Sentence(words, list(tags), ["_"] * len(tags)))
    return out


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tagger") / "tiny.pt"
    config = TrainConfig(epochs=6, lr=0.03, min_freq=1, batch_size=8, num_threads=1, device="cpu")
    fit(toy(120, 1), toy(30, 2), config, {"embedding_dim": 16, "hidden_size": 16}, checkpoint=path, progress=False)
    return path


def test_load_then_tag_raw_text_gives_word_tag_pairs(model_path: Path) -> None:
    tagger = seqtag.load(model_path)
    assert isinstance(tagger, TrainedTagger)
    pairs = tagger.tag("I don't think it's too late.")
    assert [w for w, _ in pairs] == ["I", "do", "n't", "think", "it", "'s", "too", "late", "."]
    assert all(isinstance(t, str) and t in tagger.tags.itos for _, t in pairs)
    assert dict(tagger.tag("I don't know."))["n't"] == "PART"  # learnt from the toy data
    assert tagger.tag("   ") == []


def test_tag_batch_keeps_the_order_and_matches_one_by_one(model_path: Path) -> None:
    tagger = seqtag.load(model_path)
    texts = ["Is it too late now?", "I know.", "", "We don't see it, do we?", "It is good."] * 3
    batched = tagger.tag_batch(texts, batch_size=4)  # several length buckets
    assert len(batched) == len(texts) and batched[2] == []
    assert batched == [tagger.tag(t) for t in texts]
    assert [[w for w, _ in p] for p in batched] == [tokenize(t) for t in texts]


def test_word_lists_and_a_custom_tokenizer(model_path: Path) -> None:
    tagger = seqtag.load(model_path)
    assert tagger.tag([["I", "do", "n't", "know", "."], ["It", "is", "late"]]) == [
        [t for _, t in tagger.tag("I don't know.")], [t for _, t in tagger.tag("It is late")]]
    assert [w for w, _ in tagger.tag("I don't know.", tokenizer=str.split)] == ["I", "don't", "know."]


@pytest.mark.bad_input
def test_wrong_argument_types_say_what_to_call(model_path: Path) -> None:
    tagger = seqtag.load(model_path)
    with pytest.raises(TypeError, match="use tag_batch"):
        tagger.tag(["I know.", "It is."])  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="use tag\\(text\\)"):
        tagger.tag_batch("I know.")
    with pytest.raises(ValueError, match="empty sentence"):
        tagger.tag([["I"], []])


def test_text_lines_to_conllu_and_conllu_rewritten(model_path: Path, tmp_path: Path) -> None:
    tagger = seqtag.load(model_path)
    out = io.BytesIO()
    assert tag_text_lines(tagger, [b"I don't know.\n", b"\n", b"It is late\n"], out, "in.txt", tokenize=True) == (2, 8)
    path = tmp_path / "out.conllu"
    path.write_bytes(out.getvalue())
    sentences = read_conllu(path, tagset="upos")
    assert [s.text for s in sentences] == ["I don't know.", "It is late"]
    assert sentences[0].words == ["I", "do", "n't", "know", "."] and b"# source = in.txt:3\n" in out.getvalue()
    rows = [line.split("\t") for line in out.getvalue().decode().splitlines() if line and not line.startswith("#")]
    glued = [row[9] == "SpaceAfter=No" for row in rows[:5]]
    assert glued == [False, True, False, True, False]  # do|n't and know|. touch in the text
    rebuilt = "".join(row[1] + ("" if row[9] == "SpaceAfter=No" else " ") for row in rows[:5]).strip()
    assert rebuilt == "I don't know."
    again = io.BytesIO()
    assert tag_conllu_lines(tagger, path.read_bytes().splitlines(keepends=True), again, str(path)) == (2, 8)
    assert again.getvalue() == out.getvalue()  # its own tags again: nothing changes


@pytest.mark.bad_input
def test_text_lines_errors_name_the_line(model_path: Path) -> None:
    tagger = seqtag.load(model_path)
    with pytest.raises(ValueError, match=r"^in\.txt:2: not UTF-8 \(byte 0xe9\)"):
        tag_text_lines(tagger, [b"ok\n", "caf\xe9\n".encode("latin-1")], io.BytesIO(), "in.txt")
    with pytest.raises(ValueError, match="no sentence to tag"):
        tag_text_lines(tagger, [b"\n", b"  \n"], io.BytesIO(), "in.txt")


def test_tag_batch_buckets_by_length_like_training(model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tagger = seqtag.load(model_path)
    texts = [" ".join(["we"] * n) for n in (7, 1, 12, 4, 9, 2, 11, 5, 3, 10, 6, 8)]  # lengths, shuffled
    seen: list[list[int]] = []
    predict = tagger.model.predict

    def spy(words, lengths, chars=None):  # type: ignore[no-untyped-def]
        seen.append(sorted(lengths.tolist()))
        return predict(words, lengths, chars)

    monkeypatch.setattr(tagger.model, "predict", spy)
    result = tagger.tag_batch(texts, batch_size=4)
    assert seen == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]  # similar lengths together: little padding
    assert [len(pairs) for pairs in result] == [7, 1, 12, 4, 9, 2, 11, 5, 3, 10, 6, 8]  # the input order
