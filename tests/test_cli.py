"""python -m seqtag: train -> tag -> evaluate on a tiny corpus, and bad inputs fail cleanly."""

from __future__ import annotations

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
    assert out.startswith("# sent_id = 1\n# text = the dog sees a cat .\n1\tthe\t_\t")
    blocks = [b for b in out.split("\n\n") if b.strip()]
    assert len(blocks) == 2 and blocks[1].count("\n") == 2 + 6  # 2 comments, 7 words


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
        (["evaluate", "--model", str(model), str(wrong_tags)], "gold UPOS tag '_'"),
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
