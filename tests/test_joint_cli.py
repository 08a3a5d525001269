"""python -m seqtag with a jointly trained tagger (--aux-tagset): train reports both tag sets, evaluate
scores both columns, tag writes both columns."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

import seqtag
from seqtag.cli import main
from seqtag.data import EWT_FILES, Sentence, format_conllu, read_conllu
from tests.test_cli import one_error_line, subparsers, toy, write_corpus

TINY = ("--epochs", "3", "--embedding-dim", "8", "--hidden-size", "16", "--min-freq", "1", "--lr", "0.02")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    for split, (n, seed) in {"train": (60, 1), "dev": (15, 2), "test": (15, 3)}.items():
        write_corpus(folder / EWT_FILES[split], toy(n, seed))
    return folder


@pytest.fixture(scope="module")
def trained(corpus: Path) -> dict:
    """The joint model trained by the command line, with what it printed and its results file."""
    out, results = corpus / "joint.pt", corpus / "joint.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):  # capsys is function-scoped
        code = main(["train", "--data", str(corpus), "--out", str(out), "--aux-tagset", "xpos", "--test",
                     "--results", str(results), *TINY])
    assert code == 0, stderr.getvalue()
    return {"model": out, "out": stdout.getvalue(), "err": stderr.getvalue(), "results": json.loads(results.read_text())}


def test_train_reports_both_tag_sets_every_epoch_and_at_the_end(trained: dict) -> None:
    numbers = trained["results"]
    history = numbers["history"]
    epochs = [line for line in trained["err"].replace("\r", "\n").splitlines() if line.startswith("epoch ")]
    epochs = [line for line in epochs if "dev accuracy" in line]
    assert len(epochs) == numbers["epochs_run"] == 3
    for k, line in enumerate(epochs):
        upos, xpos = history["dev_accuracy"][k], history["dev_aux_accuracy"][k]
        assert f"dev accuracy upos {upos:.4f}, xpos {xpos:.4f} (" in line, line
    lines = trained["out"].splitlines()
    aux = numbers["aux"]
    assert aux["tagset"] == "xpos" and numbers["tagset"] == "upos"
    assert lines[0].startswith(f"dev accuracy upos {numbers['dev_accuracy']:.4f}, xpos {aux['dev_accuracy']:.4f} "
                               f"(best epoch {numbers['best_epoch']} of 3, by their mean)")
    assert lines[1].startswith(f"test accuracy upos {numbers['test']['accuracy']:.4f} on ")
    assert lines[2].startswith(f"test accuracy xpos {aux['test']['accuracy']:.4f} on ")
    best = numbers["best_epoch"] - 1
    assert numbers["dev_accuracy_best_epoch"] == history["dev_accuracy"][best]
    assert aux["dev_accuracy_best_epoch"] == history["dev_aux_accuracy"][best]
    assert numbers["train_config"]["aux_tagset"] == "xpos" and numbers["tagger_config"]["aux_num_tags"] == 6


def test_evaluate_scores_both_columns(trained: dict, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test_file = corpus / EWT_FILES["test"]
    tokens = sum(len(s) for s in read_conllu(test_file))
    assert main(["evaluate", "--model", str(trained["model"]), str(test_file), "--json", "--per-tag"]) == 0
    report = json.loads(capsys.readouterr().out)
    numbers = trained["results"]
    assert report["tagset"] == "upos" and report["accuracy"] == numbers["test"]["accuracy"]
    assert report["aux"]["tagset"] == "xpos" and report["aux"]["accuracy"] == numbers["aux"]["test"]["accuracy"]
    assert report["tokens"] == report["aux"]["tokens"] == tokens
    assert set(report["per_tag"]) <= {"DET", "ADJ", "NOUN", "VERB", "PUNCT"}
    assert set(report["aux"]["per_tag"]) <= {"DT", "JJ", "NN", "VBZ", "."}
    assert main(["evaluate", "--model", str(trained["model"]), str(test_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"upos accuracy {report['accuracy']:.4f} on {tokens} tokens")
    assert lines[1].startswith(f"xpos accuracy {report['aux']['accuracy']:.4f} on {tokens} tokens")
    assert main(["evaluate", "--model", str(trained["model"]), str(test_file), "--no-aux", "--json"]) == 0
    assert "aux" not in json.loads(capsys.readouterr().out)


def test_tag_rewrites_both_columns_as_the_python_api_tags(
    trained: dict, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, tagged = corpus / EWT_FILES["test"], tmp_path / "tagged.conllu"
    assert main(["tag", "--model", str(trained["model"]), str(source), "--out", str(tagged)]) == 0
    assert "(conllu, upos and xpos)" in capsys.readouterr().err
    before, after = source.read_bytes().splitlines(), tagged.read_bytes().splitlines()
    for a, b in zip(before, after, strict=True):  # only columns 4 (UPOS) and 5 (XPOS) may differ
        assert a.split(b"\t")[:3] + a.split(b"\t")[5:] == b.split(b"\t")[:3] + b.split(b"\t")[5:]
    gold, out = read_conllu(source), read_conllu(tagged)
    expected = seqtag.load(trained["model"]).tag([s.words for s in gold], both=True)
    assert [list(zip(s.upos, s.xpos, strict=True)) for s in out] == expected
    # The tagged file holds the model's own predictions in both columns: both score 100 %.
    assert main(["evaluate", "--model", str(trained["model"]), str(tagged), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == report["aux"]["accuracy"] == 1.0
    # --no-aux: the main column only; text input: CoNLL-U with both columns filled.
    assert main(["tag", "--model", str(trained["model"]), str(source), "--no-aux", "--out", str(tmp_path / "u.conllu")]) == 0
    assert [s.xpos for s in read_conllu(tmp_path / "u.conllu")] == [s.xpos for s in gold]
    text = tmp_path / "text.txt"
    text.write_text("the dog sees a cat .\n", encoding="utf-8")
    assert main(["tag", "--model", str(trained["model"]), str(text)]) == 0
    rows = [r.split("\t") for r in capsys.readouterr().out.splitlines() if r[:1].isdigit()]
    assert [(r[3], r[4]) for r in rows] == expected_pairs(trained["model"], "the dog sees a cat .")


def expected_pairs(model: Path, text: str) -> list[tuple[str, str]]:
    return [(u, x) for _, u, x in seqtag.load(model).tag(text, tokenizer=str.split, both=True)]


@pytest.mark.bad_input
def test_gold_tags_the_joint_model_does_not_know_or_lacks_fail_with_file_and_line(
    trained: dict, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(trained["model"])
    sentences = toy(3, 7)
    sentences[2].xpos[1] = "NNS"  # a tag the model never saw, in the second column
    unknown_xpos = write_corpus(tmp_path / "nns.conllu", sentences)
    line = read_conllu(unknown_xpos)[2].line
    sentences = toy(3, 7)
    sentences[1].upos[0] = "PRON"
    unknown_upos = write_corpus(tmp_path / "pron.conllu", sentences)
    untagged = tmp_path / "untagged.conllu"
    untagged.write_text(format_conllu(Sentence(["the", "dog"], ["DET", "NOUN"], ["DT", "_"])), encoding="utf-8")
    dev = ["--dev", str(corpus / EWT_FILES["dev"])]
    cases = [
        (["evaluate", "--model", model, str(unknown_xpos)],
         f"{unknown_xpos}:{line}: gold XPOS tag 'NNS' (word '{sentences[2].words[1]}') is not one of the model's 5 XPOS tags"),
        (["evaluate", "--model", model, str(unknown_upos)], f"{unknown_upos}:{read_conllu(unknown_upos)[1].line}: gold UPOS tag 'PRON'"),
        (["evaluate", "--model", model, str(untagged)],
         f"{untagged}:3: word 'dog' has no XPOS tag (column 5 is '_'); the joint model is scored on that column"),
        (["train", "--out", str(tmp_path / "m.pt"), "--train", str(untagged), *dev, "--aux-tagset", "xpos", *TINY],
         f"{untagged}:3: word 'dog' has no XPOS tag (column 5 is '_'); --aux-tagset xpos learns that column"),
    ]
    for argv, expected in cases:
        one_error_line((main(argv), capsys.readouterr().err), expected)
    assert main(["evaluate", "--model", model, str(untagged), "--no-aux"]) == 0  # its UPOS column is complete
    assert main(["evaluate", "--model", model, str(unknown_xpos), "--no-aux"]) == 0
    assert not (tmp_path / "m.pt").exists()


def test_a_joint_preset_with_the_other_tagset_learns_the_preset_s_main_one_second(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from seqtag import presets

    monkeypatch.setitem(presets.PRESETS, "joint", {"aux_tagset": "xpos"})  # as --preset best
    out, results = tmp_path / "x.pt", tmp_path / "x.json"
    argv = ["train", "--data", str(corpus), "--out", str(out), "--preset", "joint", "--tagset", "xpos", "--results",
            str(results), *TINY[:2], "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    numbers = json.loads(results.read_text())
    assert numbers["tagset"] == "xpos" and numbers["aux"]["tagset"] == "upos"
    assert "dev accuracy xpos " in capsys.readouterr().out
    tagger = seqtag.load(out)
    assert (tagger.tagset, tagger.aux_tagset) == ("xpos", "upos")


def test_aux_tagset_none_turns_a_joint_preset_s_second_tag_set_off(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from seqtag import presets

    monkeypatch.setitem(presets.PRESETS, "joint", {"aux_tagset": "xpos"})  # as --preset best
    out, results = tmp_path / "x.pt", tmp_path / "x.json"
    argv = ["train", "--data", str(corpus), "--out", str(out), "--preset", "joint", "--aux-tagset", "none",
            "--results", str(results), *TINY[:2], "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "aux" not in json.loads(results.read_text())
    assert seqtag.load(out).aux_tagset is None


def test_the_joint_options_say_what_they_do() -> None:
    commands = subparsers()
    train = " ".join(commands["train"].format_help().split())
    assert "--aux-tagset {upos,xpos,None} joint tagging: also learn this second tag set" in train
    for name in ("tag", "evaluate"):
        text = " ".join(commands[name].format_help().split())
        assert "--aux, --no-aux a joint model (trained with --aux-tagset)" in text, text
