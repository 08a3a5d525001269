"""seqtag.tagger's Python API: seqtag.load(path).tag(text) / tag_batch(texts), on a tiny model trained here."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

import seqtag
from seqtag.config import TrainConfig
from seqtag.data import Sentence
from seqtag.tagger import TrainedTagger
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


# --- a jointly trained tagger (UPOS + XPOS): both tag sets from one forward pass ------------------

# XPOS is not a function of UPOS here: AUX is VBP or VBZ, and RB is both PART and ADV.
XPOS = {"I": "PRP", "it": "PRP", "we": "PRP", "do": "VBP", "is": "VBZ", "n't": "RB", "too": "RB", "now": "RB",
        "think": "VB", "know": "VB", "see": "VB", "late": "JJ", "good": "JJ", ".": ".", "?": "."}


def joint_toy(n: int, seed: int) -> list[Sentence]:
    return [Sentence(s.words, s.upos, [XPOS[w] for w in s.words], line=k + 1) for k, s in enumerate(toy(n, seed))]


def train_joint(path: Path, tagset: str = "upos", aux_tagset: str = "xpos", epochs: int = 6) -> TrainedTagger:
    config = TrainConfig(epochs=epochs, lr=0.03, min_freq=1, batch_size=8, num_threads=1, device="cpu", tagset=tagset,
                         aux_tagset=aux_tagset)  # type: ignore[arg-type]
    return fit(joint_toy(120, 1), joint_toy(30, 2), config, {"embedding_dim": 16, "hidden_size": 16},
               checkpoint=path, progress=False)


@pytest.fixture(scope="module")
def joint_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("joint") / "joint.pt"
    train_joint(path)
    return path


def test_joint_tag_both_gives_word_upos_xpos_from_one_encoder_pass(joint_path: Path) -> None:
    tagger = seqtag.load(joint_path)
    assert tagger.tagset == "upos" and tagger.aux_tagset == "xpos" and tagger.aux_tags is not None
    text = "I don't think it's too late."
    triples = tagger.tag(text, both=True)
    assert [(w, u) for w, u, _ in triples] == tagger.tag(text)  # the main tag set, as without both
    assert all(u in tagger.tags.itos and x in tagger.aux_tags.itos for _, u, x in triples)
    texts = [" ".join(["we"] * n) for n in (7, 1, 12, 4, 9, 2, 11, 5, 3, 10, 6, 8)]
    encoder, heads = [], []
    hooks = [tagger.model.rnn.register_forward_hook(lambda m, i, o: encoder.append(1))]
    forward_heads = tagger.model.forward_heads

    def spy(words, lengths, chars=None):  # type: ignore[no-untyped-def]
        heads.append(sorted(lengths.tolist()))
        return forward_heads(words, lengths, chars)

    tagger.model.forward_heads = spy  # type: ignore[method-assign]
    try:
        result = tagger.tag_batch(texts, batch_size=4, both=True)
    finally:
        del tagger.model.forward_heads
        for hook in hooks:
            hook.remove()
    assert heads == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]  # bucketed like training
    assert len(encoder) == 3  # one encoder pass per batch gives both tag sets
    assert [len(r) for r in result] == [7, 1, 12, 4, 9, 2, 11, 5, 3, 10, 6, 8]  # the input order
    assert all(len(triple) == 3 for r in result for triple in r)


def test_joint_tags_are_those_each_head_is_scored_on(joint_path: Path) -> None:
    tagger = seqtag.load(joint_path)
    dev = joint_toy(30, 2)
    pairs = tagger.tag([s.words for s in dev], batch_size=7, both=True)
    assert [[u for u, _ in p] for p in pairs] == tagger.evaluate(dev).predictions == tagger.tag([s.words for s in dev])
    assert [[x for _, x in p] for p in pairs] == tagger.evaluate(dev, aux=True).predictions
    assert tagger.evaluate(dev, aux=True).accuracy > 0.9  # the second head learnt XPOS, not UPOS again


def test_joint_tag_batch_keeps_the_order_and_matches_one_by_one(joint_path: Path) -> None:
    tagger = seqtag.load(joint_path)
    texts = ["Is it too late now?", "", "We don't see it, do we?", "It is good."] * 2
    batched = tagger.tag_batch(texts, batch_size=3, both=True)
    assert batched[1] == [] and batched == [tagger.tag(t, both=True) for t in texts]
    assert [[(w, u) for w, u, _ in triples] for triples in batched] == tagger.tag_batch(texts)


def test_joint_checkpoint_round_trip_tags_the_same(tmp_path: Path) -> None:
    trained = train_joint(tmp_path / "j.pt", epochs=2)
    loaded = TrainedTagger.load(tmp_path / "j.pt")
    assert loaded.aux_tagset == "xpos" and loaded.aux_tags.itos == trained.aux_tags.itos  # type: ignore[union-attr]
    words = [s.words for s in joint_toy(20, 3)]
    assert loaded.tag(words, both=True) == trained.tag(words, both=True)


def test_both_is_in_column_order_whichever_tag_set_is_the_main_one(tmp_path: Path) -> None:
    tagger = train_joint(tmp_path / "x.pt", tagset="xpos", aux_tagset="upos", epochs=2)
    assert tagger.tagset == "xpos" and tagger.aux_tags is not None
    triples = tagger.tag("I do n't know .", tokenizer=str.split, both=True)
    assert [x for _, _, x in triples] == [t for _, t in tagger.tag("I do n't know .", tokenizer=str.split)]
    assert all(u in tagger.aux_tags.itos and x in tagger.tags.itos for _, u, x in triples)  # (word, UPOS, XPOS)


def test_one_host_read_per_call_however_many_batches(
    model_path: Path, joint_path: Path, host_reads: Callable[..., list[str]]
) -> None:
    texts = [" ".join(["we"] * n) for n in range(1, 13)]
    for path, both in [(model_path, False), (joint_path, True)]:
        tagger = seqtag.load(path)
        reads = host_reads("seqtag/tagger.py")
        counts = []
        for batch_size in (1, 4, 64):  # 12, 3 and 1 batches
            reads.clear()
            tagger.tag_batch(texts, batch_size=batch_size, both=both)
            counts.append(len(reads))
        assert counts[0] == counts[1] == counts[2] <= 3, counts  # predictions, then CPU index and lengths


@pytest.mark.bad_input
def test_joint_misuse_and_unknown_gold_tags_say_where(model_path: Path, joint_path: Path) -> None:
    single, joint = seqtag.load(model_path), seqtag.load(joint_path)
    with pytest.raises(ValueError, match=r"learns one tag set \(upos\): both=True needs a jointly trained"):
        single.tag("I know.", both=True)
    with pytest.raises(ValueError, match="no second one to check"):
        single.check_gold(joint_toy(2, 1), aux=True)
    good = joint_toy(3, 4)
    joint.check_gold(good, "f.conllu")
    joint.check_gold(good, "f.conllu", aux=True)
    bad_xpos = Sentence(["we", "know"], ["PRON", "VERB"], ["PRP", "VBD"], line=7)
    with pytest.raises(ValueError, match=r"^f\.conllu:7: gold XPOS tag 'VBD' \(word 'know'\) is not one of the model's"):
        joint.check_gold([*good, bad_xpos], "f.conllu", aux=True)
    joint.check_gold([bad_xpos], "f.conllu")  # its UPOS column is fine
    bad_upos = Sentence(["we"], ["NOUN"], ["PRP"], line=3)
    with pytest.raises(ValueError, match=r"^f\.conllu:3: gold UPOS tag 'NOUN' \(word 'we'\).*tagged with upos\?$"):
        joint.check_gold([bad_upos], "f.conllu")
