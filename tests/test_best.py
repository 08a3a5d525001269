"""Tests for seqtag.experiments.best: error examples in context, unknown words, the analysis."""

from __future__ import annotations

import random

import pytest
import torch

from seqtag.config import TrainConfig
from seqtag.data import Sentence
from seqtag.experiments.best import analyse, error_examples, unknown_words
from seqtag.train import fit

UPOS = {"the": "DET", "a": "DET", "dog": "NOUN", "cat": "NOUN", "runs": "VERB", "sleeps": "VERB", "now": "ADV", ".": "PUNCT"}


def _sentence(words: list[str], sent_id: str) -> Sentence:
    return Sentence(words, [UPOS.get(w, "NOUN") for w in words], ["_"] * len(words), sent_id)


def _corpus(n: int, seed: int) -> list[Sentence]:
    rng = random.Random(seed)
    return [_sentence([rng.choice(["the", "a"]), rng.choice(["dog", "cat"]), rng.choice(["runs", "sleeps"]),
                       "now", "."], f"s{seed}-{i}") for i in range(n)]


def test_error_examples_keeps_only_sentences_with_errors_in_the_length_range() -> None:
    gold = [_sentence(["the", "dog", "runs", "."], "ok"),
            _sentence(["the", "dog", "runs", "."], "wrong"),
            _sentence(["a", "cat", "."], "short"),
            _sentence(["a", "cat", "sleeps", "."], "wrong2")]
    predicted = [["DET", "NOUN", "VERB", "PUNCT"],
                 ["DET", "VERB", "VERB", "PUNCT"],
                 ["DET", "VERB", "PUNCT"],  # an error, but too short
                 ["NOUN", "NOUN", "VERB", "NOUN"]]
    out = error_examples(gold, predicted, "upos", k=5, min_length=4, max_length=10)
    assert [e["sent_id"] for e in out] == ["wrong", "wrong2"]
    assert out[0]["errors"] == [1] and out[1]["errors"] == [0, 3]
    assert out[0]["gold"][1] == "NOUN" and out[0]["predicted"][1] == "VERB" and out[0]["unknown"] == []
    assert [e["sent_id"] for e in error_examples(gold, predicted, "upos", k=1, min_length=4)] == ["wrong"]
    flagged = error_examples(gold, predicted, "upos", unknown=lambda ws: [w == "dog" for w in ws], min_length=4)
    assert flagged[0]["unknown"] == [1] and flagged[1]["unknown"] == []


def test_error_examples_rejects_predictions_that_do_not_belong() -> None:
    gold = [_sentence(["the", "dog", "runs", "."], "a")]
    with pytest.raises(ValueError, match="1 sentences but 2 predictions"):
        error_examples(gold, [["DET"] * 4, ["DET"] * 4], "upos")
    with pytest.raises(ValueError, match="sentence a: 4 words but 3 predicted tags"):
        error_examples(gold, [["DET"] * 3], "upos")


def test_analyse_a_tiny_tagger() -> None:
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-2, device="cpu", min_freq=1, patience=0)
    tagger = fit(_corpus(30, 0), _corpus(6, 1), config, {"embedding_dim": 8, "hidden_size": 8}, progress=False)
    test = [*_corpus(6, 2), _sentence(["the", "Zorblax", "runs", "now", "."], "new-word")]
    result = analyse(tagger, test, k_errors=50)
    tokens = sum(len(s) for s in test)
    confusion = torch.tensor(result["confusion"])
    assert result["test"]["tokens"] == tokens == int(confusion.sum())
    assert result["test"]["accuracy"] == pytest.approx(int(confusion.diag().sum()) / tokens)
    assert result["labels"] == sorted(result["per_tag"], key=result["labels"].index)
    assert sum(v["support"] for v in result["per_tag"].values()) == tokens
    errors = sum(len(e["errors"]) for e in result["examples"])
    assert errors == tokens - int(confusion.diag().sum())  # every error of these short sentences
    assert sum(c["count"] for c in result["top_confusions"]) <= errors
    assert unknown_words(tagger)(["the", "Zorblax", "runs", "."]) == [False, True, False, False]


def test_analyse_takes_an_evaluation_already_made_by_the_joint_pass() -> None:
    xpos = {"DET": "DT", "NOUN": "NN", "VERB": "VBZ", "ADV": "RB", "PUNCT": "."}
    joint = [Sentence(s.words, s.upos, [xpos[t] for t in s.upos], s.sent_id) for s in _corpus(36, 3)]
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-2, device="cpu", min_freq=1, patience=0, aux_tagset="xpos")
    tagger = fit(joint[:30], joint[30:], config, {"embedding_dim": 8, "hidden_size": 8}, progress=False)
    test = [Sentence(s.words, s.upos, [xpos[t] for t in s.upos], s.sent_id) for s in _corpus(6, 4)]
    main, second = tagger.evaluate_joint(test)
    assert analyse(tagger, test, evaluation=main) == analyse(tagger, test)
    assert analyse(tagger, test, aux=True, evaluation=second) == analyse(tagger, test, aux=True)
    assert analyse(tagger, test, aux=True)["tagset"] == "xpos"


@pytest.mark.bad_input
def test_set_reads_name_and_json_value_and_names_a_bad_item(capsys: pytest.CaptureFixture[str]) -> None:
    from seqtag.experiments.best import main, parse_set

    assert parse_set("ema=0") == ("ema", 0)
    assert parse_set('lr_schedule="constant"') == ("lr_schedule", "constant")
    assert parse_set("aux_tagset=null") == ("aux_tagset", None)
    with pytest.raises(ValueError, match=r"--set lr_schedule=constant: the value must be JSON"):
        parse_set("lr_schedule=constant")
    with pytest.raises(ValueError, match=r"--set =1: write NAME=VALUE"):
        parse_set("=1")
    with pytest.raises(SystemExit):  # before any training or data
        main(["--json", "unused.json", "--set", "ema=zero"])
    assert "--set ema=zero: the value must be JSON" in capsys.readouterr().err
