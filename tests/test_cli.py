"""python -m seqtag: train -> tag -> evaluate on a tiny corpus, and bad inputs fail cleanly."""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import types
from pathlib import Path

import pytest

from seqtag.cli import main
from seqtag.data import EWT_FILES, Sentence, format_conllu, read_conllu

WORDS = {
    "DET": ["the", "a", "every"],
    "ADJ": ["big", "small", "red", "old"],
    "NOUN": ["dog", "cat", "bird", "house", "tree"],
    "VERB": ["sees", "likes", "finds", "eats"],
}
XPOS = {"DET": "DT", "ADJ": "JJ", "NOUN": "NN", "VERB": "VBZ", "PUNCT": "."}


def toy(n: int, seed: int) -> list[Sentence]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        tags = ["DET"] + ["ADJ"] * rng.randint(0, 1) + ["NOUN", "VERB", "DET", "NOUN", "PUNCT"]
        words = ["." if t == "PUNCT" else rng.choice(WORDS[t]) for t in tags]
        out.append(Sentence(words, tags, [XPOS[t] for t in tags], f"toy-{seed}-{k}"))
    return out


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("SEQTAG_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "seqtag", *args], input=stdin, capture_output=True, env=env, timeout=120, check=False
    )


def one_error_line(proc: subprocess.CompletedProcess[bytes] | tuple[int, str], expected: str) -> None:
    code, err = (proc.returncode, proc.stderr.decode()) if not isinstance(proc, tuple) else proc
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and expected in lines[0], lines[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    for split, (n, seed) in {"train": (80, 1), "dev": (20, 2), "test": (20, 3)}.items():
        (folder / EWT_FILES[split]).write_text("".join(format_conllu(s) for s in toy(n, seed)), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def model(corpus: Path) -> Path:
    out = corpus / "model.pt"
    results = corpus / "results.json"
    proc = run("train", "--data", str(corpus), "--out", str(out), "--epochs", "4", "--embedding-dim", "16",
               "--hidden-size", "16", "--min-freq", "1", "--lr", "0.01", "--quiet", "--test", "--results", str(results))
    assert proc.returncode == 0, proc.stderr.decode()
    assert "dev accuracy" in proc.stdout.decode() and "test accuracy" in proc.stdout.decode()
    numbers = json.loads(results.read_text())
    assert numbers["tagset"] == "upos" and numbers["epochs_run"] == 4 and 0.0 <= numbers["test"]["accuracy"] <= 1.0
    assert numbers["tagger_config"]["hidden_size"] == 16 and numbers["tagger_config"]["dropout"] == 0.33  # preset
    assert numbers["files"] == {"train": "EWT train", "dev": "EWT dev", "test": "EWT test"}
    return out


def test_train_tag_evaluate_round_trip(
    model: Path, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = corpus / EWT_FILES["test"]
    tagged = tmp_path / "tagged.conllu"
    proc = run("tag", "--model", str(model), str(source), "--out", str(tagged))
    assert proc.returncode == 0 and "tokens/s" in proc.stderr.decode() and proc.stdout == b""
    assert tagged.stat().st_mode & 0o777 == source.stat().st_mode & 0o777  # the usual mode, not 0600
    before, after = source.read_bytes().splitlines(), tagged.read_bytes().splitlines()
    assert len(before) == len(after)
    for a, b in zip(before, after, strict=True):  # only column 4 (UPOS) may differ
        ca, cb = a.split(b"\t"), b.split(b"\t")
        assert ca[:3] + ca[4:] == cb[:3] + cb[4:]
    proc = run("evaluate", "--model", str(model), str(source), "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["tokens"] == sum(len(s) for s in read_conllu(source))
    assert {"accuracy", "oov_accuracy", "tokens"} <= set(report) and report["accuracy"] > 0.5
    # Without a file, evaluate scores EWT test (here the toy file under that name in --data).
    assert main(["evaluate", "--model", str(model), "--data", str(corpus), "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["file"] == "EWT test" and default["accuracy"] == report["accuracy"]
    # The tagged file's UPOS column is the model's own prediction: it scores 100 %.
    assert main(["evaluate", "--model", str(model), str(tagged), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0


def test_tag_plain_text_from_stdin(
    model: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    text = b"the dog sees a cat .\n\n  a  big bird eats the tree .\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text)))
    assert main(["tag", "--model", str(model)]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert out.startswith("# sent_id = 1\n# source = <stdin>:1\n# text = the dog sees a cat .\n1\tthe\t_\t")
    blocks = [b for b in out.split("\n\n") if b.strip()]
    assert len(blocks) == 2 and blocks[1].count("\n") == 3 + 6  # 3 comments, 7 words
    assert "# source = <stdin>:3\n# text = a  big bird eats the tree .\n" not in out  # spaces normalised
    assert "# source = <stdin>:3\n# text = a big bird eats the tree .\n" in out


def test_tag_keeps_every_other_byte_and_streams(model: Path, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    row = "{}\t{}\tlemma\tXXX\tNN\tNumber=Sing\t0\troot\t0:root\tSpaceAfter=No"
    text = ("# header comment\r\n\r\n# sent_id = a\r\n1-2\tthe dog\t_\t_\t_\t_\t_\t_\t_\t_\r\n"
            + row.format(1, "the") + "\r\n" + row.format(2, "dog") + "\r\n"
            + "2.1\tghost\t_\t_\t_\t_\t_\t_\t_\t_\r\n\r\n\r\n" + row.format(1, "cat") + "\r\n")
    source = tmp_path / "in.conllu"
    source.write_bytes(text.encode() * 3)
    outputs = []
    for batch in ("1", "256"):
        assert main(["tag", "--model", str(model), str(source), "--batch-size", batch]) == 0
        outputs.append(capsysbinary.readouterr().out)
    assert outputs[0] == outputs[1]
    out_lines, in_lines = outputs[0].split(b"\r\n"), source.read_bytes().split(b"\r\n")
    changed = [(a, b) for a, b in zip(in_lines, out_lines, strict=True) if a != b]
    assert len(changed) == 9  # the 3 words of each copy, nothing else
    assert all(a.replace(b"\tXXX\t", b"\t" + b.split(b"\t")[3] + b"\t") == b for a, b in changed)


@pytest.mark.bad_input
def test_tag_never_overwrites_its_input(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "text.txt"
    source.write_bytes(b"the dog sees a cat .\n")
    one_error_line(run("tag", "--model", str(model), str(source), "--out", str(source)), "never overwrites its input")
    other_spelling = tmp_path / "." / ".." / tmp_path.name / "text.txt"
    code = main(["tag", "--model", str(model), str(source), "--out", str(other_spelling)])
    one_error_line((code, capsys.readouterr().err), "never overwrites its input")
    assert source.read_bytes() == b"the dog sees a cat .\n"


@pytest.mark.bad_input
def test_malformed_input_leaves_no_output(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = format_conllu(toy(1, 5)[0])
    source = tmp_path / "bad.conllu"
    source.write_text(good * 300 + "1\tbroken line\n", encoding="utf-8")
    out = tmp_path / "out.conllu"
    code = main(["tag", "--model", str(model), str(source), "--out", str(out), "--batch-size", "8"])
    expected = f"{source}:{good.count(chr(10)) * 300 + 1}: expected 10 tab-separated columns"
    one_error_line((code, capsys.readouterr().err), expected)
    assert list(tmp_path.iterdir()) == [source]  # neither the output nor a temporary file


@pytest.mark.bad_input
def test_bad_inputs_fail_with_one_line(model: Path, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(model.read_bytes()[:1000])
    latin = tmp_path / "latin.txt"
    latin.write_bytes("the caf\xe9 .\n".encode("latin-1"))
    wrong_tags = tmp_path / "xpos-only.conllu"
    wrong_tags.write_text(format_conllu(Sentence(["the", "dog"], ["_", "_"], ["DT", "NN"])), encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"\n\n")
    cases = [
        (["tag", "--model", str(tmp_path / "none.pt"), "-"], "no such checkpoint file"),
        (["tag", "--model", str(truncated), "-"], "truncated or corrupt"),
        (["tag", "--model", str(model), str(tmp_path / "missing.txt")], "no such input file"),
        (["tag", "--model", str(model), str(latin)], ":1: not UTF-8"),
        (["tag", "--model", str(model), str(empty)], "no sentence to tag"),
        (["evaluate", "--model", str(model), str(wrong_tags)], f"{wrong_tags}:2: word 'the' has no UPOS tag"),
        (["evaluate", "--model", str(model), str(tmp_path / "missing.conllu")], "no such CoNLL-U file"),
        (["train", "--out", str(tmp_path / "m.pt"), "--preset", "fastest"], "unknown preset 'fastest'"),
        (["train", "--out", str(tmp_path / "m.pt"), "--data", str(tmp_path)], "not found in data folder"),
        (["train", "--out", str(tmp_path), "--data", str(corpus)], "is a folder"),
        (["train", "--out", str(tmp_path / "m.pt"), "--data", str(corpus), "--epochs", "0"], "epochs must be >= 1"),
    ]
    for argv, expected in cases:
        code = main(argv)
        one_error_line((code, capsys.readouterr().err), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.pt", "empty.txt", "latin.txt", "xpos-only.conllu"]


@pytest.mark.bad_input
def test_usage_errors_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["train", "--hidden-size", "many", "--out", "x.pt"], ["train", "--out", "x.pt", "--hiden-size", "3"],
                 ["tag"], ["frobnicate"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        one_error_line((int(info.value.code or 0), capsys.readouterr().err), "error:")
    for command in ("train", "tag", "evaluate"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0 and "usage: python -m seqtag " + command in capsys.readouterr().out


def test_bench_is_delegated(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    fake = types.ModuleType("seqtag.bench", "Fake benchmark.")
    fake.add_arguments = lambda p: p.add_argument("--quick", action="store_true")  # type: ignore[attr-defined]
    fake.main = lambda args: seen.update(quick=args.quick)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "seqtag.bench", fake)
    import seqtag

    monkeypatch.setattr(seqtag, "bench", fake, raising=False)
    assert main(["bench", "--quick"]) == 0 and seen == {"quick": True}


def test_bench_missing_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "seqtag.bench", None)  # makes `from seqtag import bench` fail
    import seqtag

    monkeypatch.delattr(seqtag, "bench", raising=False)
    one_error_line((main(["bench"]), capsys.readouterr().err), "needs seqtag.bench")


# --- own files, either tag column --------------------------------------------------------------


def write_corpus(path: Path, sentences: list[Sentence]) -> Path:
    path.write_text("".join(format_conllu(s) for s in sentences), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def own_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("own")
    return {split: write_corpus(folder / f"my-{split}.conllu", toy(n, seed))
            for split, (n, seed) in {"train": (60, 11), "dev": (15, 12), "test": (15, 13)}.items()}


TINY = ("--epochs", "2", "--embedding-dim", "8", "--hidden-size", "8", "--min-freq", "1", "--lr", "0.02", "--quiet")


def test_train_and_evaluate_on_own_files_in_the_xpos_column(own_files: dict[str, Path], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out, results = tmp_path / "xpos.pt", tmp_path / "xpos.json"
    code = main(["train", "--train", str(own_files["train"]), "--dev", str(own_files["dev"]), "--test",
                 str(own_files["test"]), "--tagset", "xpos", "--out", str(out), "--results", str(results), *TINY])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "(xpos, best epoch" in printed.out and "test accuracy" in printed.out
    numbers = json.loads(results.read_text())
    assert numbers["tagset"] == "xpos" and numbers["files"]["train"] == str(own_files["train"])
    assert numbers["train_sentences"] == 60 and numbers["test"]["tokens"] == sum(len(s) for s in read_conllu(own_files["test"]))
    assert "machine" in numbers
    assert main(["evaluate", "--model", str(out), str(own_files["test"]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tagset"] == "xpos" and report["accuracy"] == numbers["test"]["accuracy"]
    assert report["file"] == str(own_files["test"])


@pytest.mark.bad_input
def test_own_files_with_problems_fail_with_one_line_and_write_nothing(
    own_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    untagged = write_corpus(tmp_path / "untagged.conllu", [Sentence(["the", "dog"], ["DET", "_"], ["DT", "NN"])])
    nine_columns = tmp_path / "nine.conllu"
    nine_columns.write_text("1\tthe\tthe\tDET\tDT\t_\t0\t_\t_\n\n", encoding="utf-8")
    latin = tmp_path / "latin.conllu"
    latin.write_bytes("1\tcaf\xe9\t_\tNOUN\tNN\t_\t0\t_\t_\t_\n\n".encode("latin-1"))
    counts = tmp_path / "counts.conllu"
    counts.write_text("1-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\t_\tAUX\tVBP\t_\t0\t_\t_\t_\n"
                      "2\tn't\t_\tPART\tRB\t_\t1\t_\t_\t_\n\n", encoding="utf-8")
    out = tmp_path / "m.pt"
    train = ["train", "--out", str(out), *TINY]
    dev = ["--dev", str(own_files["dev"])]
    cases = [
        ([*train, "--train", str(untagged), *dev], f"{untagged}:3: word 'dog' has no UPOS tag (column 4 is '_')"),
        ([*train, "--train", str(nine_columns), *dev], f"{nine_columns}:1: expected 10 tab-separated columns, found 9"),
        ([*train, "--train", str(latin), *dev], f"{latin}:1: not UTF-8 (byte 0xe9"),
        ([*train, "--train", str(counts), *dev], f"{counts}:1: multi-word token 1-3 spans words 1 to 3, but the sentence has 2"),
        ([*train, "--train", str(own_files["train"])], "needs --dev FILE"),
        ([*train, "--train", str(tmp_path / "nope.conllu"), *dev], "no such CoNLL-U file"),
        ([*train, "--train", str(own_files["train"]), "--dev", str(untagged), "--tagset", "xpos"], None),  # xpos: fine
    ]
    for argv, expected in cases:
        code = main(argv)
        err = capsys.readouterr().err
        if expected is None:
            assert code == 0, err
            out.unlink()
            continue
        one_error_line((code, err), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counts.conllu", "latin.conllu", "nine.conllu", "untagged.conllu"]


# --- raw text ----------------------------------------------------------------------------------


def test_tag_tokenize_splits_raw_text_and_says_where_each_sentence_came_from(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "raw.txt"
    source.write_text("I don't think it's too late.\n\nMail joe@x.com :)\n", encoding="utf-8")
    out = tmp_path / "raw.conllu"
    assert main(["tag", "--model", str(model), "--tokenize", str(source), "--out", str(out)]) == 0
    assert "tokenized" in capsys.readouterr().err
    blocks = [b.splitlines() for b in out.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    assert blocks[0][:3] == ["# sent_id = 1", f"# source = {source}:1", "# text = I don't think it's too late."]
    assert [row.split("\t")[1] for row in blocks[0][3:]] == ["I", "do", "n't", "think", "it", "'s", "too", "late", "."]
    assert blocks[1][1] == f"# source = {source}:3"
    assert [row.split("\t")[1] for row in blocks[1][3:]] == ["Mail", "joe@x.com", ":)"]
    assert all(row.split("\t")[3] != "_" for b in blocks for row in b[3:])  # every token tagged (upos)
    tagged = read_conllu(out)
    assert [s.text for s in tagged] == ["I don't think it's too late.", "Mail joe@x.com :)"]
    # Without --tokenize, text is split at spaces: don't stays one (unknown) word.
    assert main(["tag", "--model", str(model), str(source)]) == 0
    assert "\tdon't\t" in capsys.readouterr().out


@pytest.mark.bad_input
def test_tokenize_refuses_conllu_input(model: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["tag", "--model", str(model), "--tokenize", "--format", "conllu", str(corpus / EWT_FILES["test"])])
    one_error_line((code, capsys.readouterr().err), "--tokenize splits raw text")


# --- bug 7: the printed dev accuracy is the saved model's ----------------------------------------


def test_train_prints_the_dev_accuracy_of_the_saved_model_after_vocabulary_expansion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(0)
    train_set, dev_set = toy(40, 21), toy(30, 22)
    for s in dev_set:  # dev nouns the training set never saw, which the vector file knows
        s.words = [rng.choice(["wolf", "fox", "owl", "hen"]) if t == "NOUN" else w for w, t in zip(s.words, s.upos, strict=True)]
    vectors = tmp_path / "vectors.txt"
    nouns = WORDS["NOUN"] + ["wolf", "fox", "owl", "hen"]
    lines = [" ".join([w] + [f"{rng.gauss(1.0 if w in nouns else -1.0, 0.1):.3f}" for _ in range(8)])
             for w in nouns + [w for t in ("DET", "ADJ", "VERB") for w in WORDS[t]] + ["."]]
    vectors.write_text("\n".join(lines) + "\n", encoding="utf-8")
    train_file, dev_file = write_corpus(tmp_path / "t.conllu", train_set), write_corpus(tmp_path / "d.conllu", dev_set)
    out, results = tmp_path / "m.pt", tmp_path / "r.json"
    code = main(["train", "--train", str(train_file), "--dev", str(dev_file), "--out", str(out), "--results", str(results),
                 "--embeddings", str(vectors), "--expand-vocab", "10", "--min-freq", "2", "--epochs", "3",
                 "--embedding-dim", "8", "--hidden-size", "8", "--lr", "0.02", "--quiet", "--no-unk-signatures"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    numbers = json.loads(results.read_text())
    assert main(["evaluate", "--model", str(out), str(dev_file), "--json"]) == 0
    saved = json.loads(capsys.readouterr().out)["accuracy"]
    assert numbers["dev_accuracy"] == saved and f"dev accuracy {saved:.4f}" in printed
    assert "after vocabulary expansion" in printed
    # The number the old code printed (the best epoch, before expansion) is another one.
    assert numbers["dev_accuracy_best_epoch"] != saved


# --- every command explains itself; no abbreviations ------------------------------------------


def subparsers() -> dict[str, argparse.ArgumentParser]:
    from seqtag.cli import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_of_every_command_says_what_it_does() -> None:
    commands = subparsers()
    assert set(commands) == {"train", "tag", "evaluate", "bench"}
    for name, parser in commands.items():
        if name == "bench":
            continue  # a pass-through to seqtag.bench's own parser, checked below
        options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
        assert len(options) >= (30 if name == "train" else 5)
        for action in options:
            text = action.help or ""
            assert len(text.split()) >= 3 and not text.startswith("(default"), (name, action.option_strings, text)
    from seqtag import bench
    from seqtag.options import ArgumentParser

    bench_parser = ArgumentParser(prog="python -m seqtag bench")  # what cmd_bench builds
    bench.add_arguments(bench_parser)
    for action in (a for a in bench_parser._actions if a.option_strings and a.dest != "help"):
        assert len((action.help or "").split()) >= 3, ("bench", action.option_strings, action.help)
    help_text = " ".join(commands["train"].format_help().split())
    assert "--embeddings EMBEDDINGS pretrained word vectors loaded before training: 'glove50'" in help_text
    assert "--dev FILE CoNLL-U file on which the best epoch is chosen (default: EWT dev)" in help_text


@pytest.mark.parametrize(
    ("argv", "prefix"),
    [(["train", "--out", "m.pt", "--dev", "d.conllu", "--devi", "cpu"], "--devi"),  # --device, abbreviated
     (["train", "--out", "m.pt", "--hidden", "8"], "--hidden"),
     (["tag", "--model", "m.pt", "--tok"], "--tok"),
     (["evaluate", "--model", "m.pt", "--per"], "--per")],
)
@pytest.mark.bad_input
def test_no_command_takes_an_abbreviated_option(argv: list[str], prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    one_error_line((int(info.value.code or 0), capsys.readouterr().err), f"unrecognized arguments: {prefix}")


def test_dev_is_never_taken_for_device() -> None:
    args = subparsers()["train"].parse_args(["--out", "m.pt", "--dev", "d.conllu"])
    assert args.dev == Path("d.conllu") and "device" not in vars(args)


@pytest.mark.bad_input
def test_bench_parser_takes_no_abbreviations(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fake = types.ModuleType("seqtag.bench", "Fake benchmark.")
    fake.add_arguments = lambda p: p.add_argument("--quick", action="store_true")  # type: ignore[attr-defined]
    fake.main = lambda args: 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "seqtag.bench", fake)
    import seqtag

    monkeypatch.setattr(seqtag, "bench", fake, raising=False)
    with pytest.raises(SystemExit):
        main(["bench", "--qui"])
    assert "unrecognized arguments: --qui" in capsys.readouterr().err
