"""seqtag.tagio: whole inputs tagged (CoNLL-U rewritten byte for byte, text to CoNLL-U), with one tag
set or both of a jointly trained tagger."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import seqtag
from seqtag.data import TAG_COLUMN, read_conllu
from seqtag.tagio import (
    output,
    sniff,
    tag_conllu_lines,
    tag_stream,
    tag_text_lines,
    written_tagsets,
)
from tests.test_tagger import joint_path, model_path  # noqa: F401 (the tiny models, trained once here)


def test_text_lines_to_conllu_and_conllu_rewritten(model_path: Path, tmp_path: Path) -> None:  # noqa: F811
    tagger = seqtag.load(model_path)
    out = io.BytesIO()
    assert tag_text_lines(tagger, [b"I don't know.\n", b"\n", b"It is late\n"], out, "in.txt", tokenize=True) == (2, 8)
    path = tmp_path / "out.conllu"
    path.write_bytes(out.getvalue())
    sentences = read_conllu(path, tagset="upos")
    assert [s.text for s in sentences] == ["I don't know.", "It is late"]
    assert sentences[0].words == ["I", "do", "n't", "know", "."] and b"# source = in.txt:3\n" in out.getvalue()
    rows = [line.split("\t") for line in out.getvalue().decode().splitlines() if line and not line.startswith("#")]
    assert all(row[4] == "_" for row in rows)  # one tag set: the other column stays empty
    glued = [row[9] == "SpaceAfter=No" for row in rows[:5]]
    assert glued == [False, True, False, True, False]  # do|n't and know|. touch in the text
    rebuilt = "".join(row[1] + ("" if row[9] == "SpaceAfter=No" else " ") for row in rows[:5]).strip()
    assert rebuilt == "I don't know."
    again = io.BytesIO()
    assert tag_conllu_lines(tagger, path.read_bytes().splitlines(keepends=True), again, str(path)) == (2, 8)
    assert again.getvalue() == out.getvalue()  # its own tags again: nothing changes


@pytest.mark.bad_input
def test_text_lines_errors_name_the_line(model_path: Path) -> None:  # noqa: F811
    tagger = seqtag.load(model_path)
    with pytest.raises(ValueError, match=r"^in\.txt:2: not UTF-8 \(byte 0xe9\)"):
        tag_text_lines(tagger, [b"ok\n", "caf\xe9\n".encode("latin-1")], io.BytesIO(), "in.txt")
    with pytest.raises(ValueError, match="no sentence to tag"):
        tag_text_lines(tagger, [b"\n", b"  \n"], io.BytesIO(), "in.txt")
    with pytest.raises(ValueError, match="--tokenize splits raw text"):
        tag_stream(tagger, [b"# c\n", b"1\tI\t_\t_\t_\t_\t_\t_\t_\t_\n"], io.BytesIO(), tokenize=True, fmt="conllu")


def test_sniff_keeps_every_line() -> None:
    for first, fmt in [(b"# sent_id = 1\n", "conllu"), (b"1\tI\t_\n", "conllu"), (b"1-2\tdon't\n", "conllu"),
                       (b"12 monkeys\n", "text"), (b"I know.\n", "text")]:
        lines, found = sniff(iter([b"\n", b"  \n", first, b"more\n"]))
        assert found == fmt and list(lines) == [b"\n", b"  \n", first, b"more\n"]
    assert sniff(iter([]))[1] == "text" and sniff(iter([b"x\n"]), "conllu")[1] == "conllu"


def test_output_is_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.conllu"
    with pytest.raises(RuntimeError), output(path) as f:
        f.write(b"half")
        raise RuntimeError("stop")
    assert not path.exists() and list((tmp_path / "sub").iterdir()) == []
    with output(path) as f:
        f.write(b"whole\n")
    assert path.read_bytes() == b"whole\n"


# --- a jointly trained tagger: both columns ----------------------------------------------------

ROW = "{}\t{}\tlemma\tXXX\tYYY\tNumber=Sing\t0\troot\t0:root\tSpaceAfter=No"
CONLLU = ("# header comment\r\n\r\n# sent_id = a\r\n1-2\tI do\t_\t_\t_\t_\t_\t_\t_\t_\r\n"
          + ROW.format(1, "I") + "\r\n" + ROW.format(2, "know") + "\r\n" + "2.1\tghost\t_\t_\t_\t_\t_\t_\t_\t_\r\n"
          + ROW.format(3, ".") + "\r\n\r\n\r\n" + ROW.format(1, "we") + "\r\n").encode()


def test_joint_conllu_rewrites_both_columns_and_keeps_every_other_byte(joint_path: Path) -> None:  # noqa: F811
    tagger = seqtag.load(joint_path)
    assert written_tagsets(tagger) == ("upos", "xpos") and written_tagsets(tagger, aux=False) == ("upos",)
    outputs = []
    for batch_size in (1, 256):
        out = io.BytesIO()
        assert tag_conllu_lines(tagger, io.BytesIO(CONLLU * 3), out, "in.conllu", batch_size) == (6, 12)
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]
    before, after = (CONLLU * 3).split(b"\r\n"), outputs[0].split(b"\r\n")
    changed = [(a.split(b"\t"), b.split(b"\t")) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 12  # the 4 words of each copy, nothing else
    for a, b in changed:
        assert a[:3] + a[5:] == b[:3] + b[5:] and (a[3], a[4]) == (b"XXX", b"YYY")
    expected = tagger.tag([["I", "know", "."], ["we"]] * 3, both=True)
    assert [(b[3].decode(), b[4].decode()) for _, b in changed] == [pair for s in expected for pair in s]
    only_main = io.BytesIO()
    tag_conllu_lines(tagger, io.BytesIO(CONLLU), only_main, aux=False)
    assert all(line.split(b"\t")[TAG_COLUMN["xpos"]] in (b"YYY", b"_") for line in only_main.getvalue().split(b"\r\n")
               if line[:1].isdigit())


def test_joint_text_fills_both_columns(joint_path: Path, tmp_path: Path) -> None:  # noqa: F811
    tagger = seqtag.load(joint_path)
    out = io.BytesIO()
    fmt, sentences, tokens = tag_stream(tagger, [b"I don't know.\n", b"\n", b"Is it late?\n"], out, "in.txt",
                                        tokenize=True)
    assert (fmt, sentences, tokens) == ("text", 2, 9)
    path = tmp_path / "tagged.conllu"
    path.write_bytes(out.getvalue())
    tagged = read_conllu(path, tagset="upos")
    expected = tagger.tag_batch(["I don't know.", "Is it late?"], both=True)
    assert [list(zip(s.words, s.upos, s.xpos, strict=True)) for s in tagged] == expected
    main_only = io.BytesIO()
    tag_stream(tagger, [b"I know.\n"], main_only, aux=False)
    assert [row.split("\t")[4] for row in main_only.getvalue().decode().splitlines()[3:] if row] == ["_", "_"]
