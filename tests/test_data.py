"""seqtag.data and seqtag.download: CoNLL-U parsing edge cases, data folders, the downloader's faults.

The downloader is tested against a local HTTP server on 127.0.0.1 only: no test touches the network.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqtag import data
from seqtag.data import (
    ConlluFormatError,
    CorpusNotFoundError,
    Sentence,
    ewt_path,
    format_conllu,
    iter_conllu,
    load_ewt,
    read_conllu,
    tags_of,
)
from seqtag.download import DownloadError, fetch

ROW = "{i}\t{form}\t{form}\t{upos}\t{xpos}\t_\t0\t_\t_\t_"
GOOD = (
    "# newdoc id = d1\n"
    "# sent_id = s1\n"
    "# text = I'm here.\n"
    "1-2\tI'm\t_\t_\t_\t_\t_\t_\t_\t_\n"
    + ROW.format(i=1, form="I", upos="PRON", xpos="PRP") + "\n"
    + ROW.format(i=2, form="'m", upos="AUX", xpos="VBP") + "\n"
    + ROW.format(i=3, form="here", upos="ADV", xpos="RB") + "\n"
    + "3.1\tsilent\tsilent\tVERB\tVB\t_\t_\t_\t_\t_\n"
    + ROW.format(i=4, form=".", upos="PUNCT", xpos=".") + "\n"
    "\n"
    "# sent_id = s2\n"
    + ROW.format(i=1, form="Go", upos="VERB", xpos="_") + "\n"
    "\n"
)


def write(tmp_path: Path, text: str | bytes, name: str = "x.conllu") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


# --- parsing ----------------------------------------------------------------------------------


def test_reads_words_tags_and_ids_skipping_multiword_tokens_and_empty_nodes(tmp_path: Path) -> None:
    sents = read_conllu(write(tmp_path, GOOD))
    assert [s.words for s in sents] == [["I", "'m", "here", "."], ["Go"]]
    assert sents[0].upos == ["PRON", "AUX", "ADV", "PUNCT"]
    assert sents[0].xpos == ["PRP", "VBP", "RB", "."]
    assert sents[1].xpos == ["_"]  # an empty XPOS column stays visible as "_"
    assert [s.sent_id for s in sents] == ["s1", "s2"]
    assert [s.line for s in sents] == [1, 11]
    assert tags_of(sents, "upos")[1] == ["VERB"] and tags_of(sents, "xpos")[0][0] == "PRP"


def test_chunks_give_back_the_exact_bytes_and_word_rows(tmp_path: Path) -> None:
    raw = GOOD.replace("\n", "\r\n").encode()  # CRLF line endings survive too
    chunks = list(iter_conllu(raw.splitlines(keepends=True), "mem"))
    assert b"".join(line for c in chunks for line in c.lines) == raw
    first = next(c for c in chunks if c.sentence is not None)
    assert first.sentence is not None and first.sentence.words == ["I", "'m", "here", "."]
    assert [first.lines[k].split(b"\t")[1] for k in first.word_rows] == [b"I", b"'m", b"here", b"."]


def test_comment_only_blocks_are_skipped_and_sentence_without_final_blank_line_is_read(tmp_path: Path) -> None:
    text = "# a file header\n\n" + ROW.format(i=1, form="Hi", upos="INTJ", xpos="UH")  # no final \n
    sents = read_conllu(write(tmp_path, text))
    assert [s.words for s in sents] == [["Hi"]] and sents[0].line == 3


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ("2\tword\tword\tNOUN", "expected 10 tab-separated columns, found 4"),
        ("2 word word NOUN NN _ 0 _ _ _", "found 1"),
        ("x\tword\tword\tNOUN\tNN\t_\t0\t_\t_\t_", "not a valid ID"),
        ("3\tword\tword\tNOUN\tNN\t_\t0\t_\t_\t_", "word id 3 where 2 was expected"),
        ("3-2\tword\t_\t_\t_\t_\t_\t_\t_\t_", "'3-2' is not a valid ID"),
        ("2\t\tword\tNOUN\tNN\t_\t0\t_\t_\t_", "bad FORM"),
    ],
)
@pytest.mark.bad_input
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, expected: str) -> None:
    text = "# c\n" + ROW.format(i=1, form="ok", upos="X", xpos="FW") + "\n" + bad_line + "\n\n"
    path = write(tmp_path, text)
    with pytest.raises(ConlluFormatError, match=expected) as info:
        read_conllu(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert info.value.line == 3


@pytest.mark.bad_input
def test_only_multiword_tokens_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n\n")
    with pytest.raises(ConlluFormatError, match=r":1: sentence has token lines but no word"):
        read_conllu(path)


@pytest.mark.bad_input
def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    latin1 = GOOD.replace("\there\t", "\tcaf\u00e9\t").encode("latin-1")
    path = write(tmp_path, latin1)
    with pytest.raises(ConlluFormatError, match=r":7: not UTF-8 \(byte 0xe9"):
        read_conllu(path)


@pytest.mark.parametrize(("tagset", "line", "column"), [("upos", 2, "column 4 is '_'"), ("xpos", 3, "column 5 is '_'")])
@pytest.mark.bad_input
def test_a_word_without_a_tag_in_the_chosen_column_names_file_and_line(
    tmp_path: Path, tagset: str, line: int, column: str
) -> None:
    text = ("# sent_id = a\n" + ROW.format(i=1, form="Go", upos="_", xpos="VB") + "\n"
            + ROW.format(i=2, form="now", upos="ADV", xpos="_") + "\n\n")
    path = write(tmp_path, text.replace("\tADV\t_\t", "\tADV\t_\t") if tagset == "upos" else
                 text.replace("\t_\tVB\t", "\tVERB\tVB\t"))
    with pytest.raises(ConlluFormatError) as info:
        read_conllu(path, tagset=tagset)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: word ") and column in message and "--tagset" in message
    assert len(message.splitlines()) == 1
    assert len(read_conllu(path)) == 1  # without a tagset, untagged words are fine (for tagging)


def test_both_tag_columns_are_read_when_complete(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("\tGo\tGo\tVERB\t_", "\tGo\tGo\tVERB\tVB"))
    assert tags_of(read_conllu(path, tagset="xpos"), "xpos") == [["PRP", "VBP", "RB", "."], ["VB"]]
    assert [s.text for s in read_conllu(path, tagset="upos")] == ["I'm here.", None]
    with pytest.raises(ValueError, match="tagset must be"):
        read_conllu(path, tagset="pos")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mwt", "expected"),
    [("1-3", "multi-word token 1-3 spans words 1 to 3, but the sentence has 2 word"),
     ("2-3", "multi-word token 2-3 spans words 2 to 3, but the sentence has 2 word"), ("1-2x", "not a valid ID")],
)
@pytest.mark.bad_input
def test_multiword_range_must_match_the_word_count(tmp_path: Path, mwt: str, expected: str) -> None:
    text = (f"{mwt}\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n" + ROW.format(i=1, form="do", upos="AUX", xpos="VBP")
            + "\n" + ROW.format(i=2, form="n't", upos="PART", xpos="RB") + "\n\n")
    with pytest.raises(ConlluFormatError) as info:
        read_conllu(write(tmp_path, text))
    assert expected in str(info.value) and str(info.value).startswith(f"{tmp_path / 'x.conllu'}:1: ")


@pytest.mark.bad_input
def test_a_missing_column_names_file_and_line(tmp_path: Path) -> None:
    row = ROW.format(i=1, form="Go", upos="VERB", xpos="VB")
    path = write(tmp_path, "# c\n" + row.rsplit("\t", 1)[0] + "\n\n")  # 9 columns
    with pytest.raises(ConlluFormatError, match=r"x\.conllu:2: expected 10 tab-separated columns, found 9"):
        read_conllu(path, tagset="upos")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty file"),
        ("# only\n# comments\n", "no sentence in 2 line"),
        ("\n\n  \n", "no sentence in 3 line"),
    ],
)
@pytest.mark.bad_input
def test_empty_and_sentenceless_files(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConlluFormatError, match=expected) as info:
        read_conllu(path)
    assert str(info.value).startswith(str(path))


@pytest.mark.bad_input
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such CoNLL-U file"):
        read_conllu(tmp_path / "nope.conllu")


def test_format_conllu_round_trips(tmp_path: Path) -> None:
    sents = [Sentence(["Hi", "there", "!"], ["INTJ", "ADV", "PUNCT"], ["UH", "RB", "."], "a-1"), Sentence(["Go"], ["VERB"], ["VB"])]
    path = write(tmp_path, "".join(format_conllu(s) for s in sents))
    back = read_conllu(path)
    assert [(s.words, s.upos, s.xpos, s.sent_id) for s in back] == [(s.words, s.upos, s.xpos, s.sent_id) for s in sents]
    with pytest.raises(ValueError, match="holds a tab"):
        format_conllu(Sentence(["a\tb"], ["X"], ["FW"]))


def test_format_conllu_comments_text_and_misc() -> None:
    s = Sentence(["do", "n't"], ["AUX", "PART"], ["VBP", "RB"], "7", text="don't")
    block = format_conllu(s, {"source": "in.txt:3"}, ["SpaceAfter=No", ""])
    assert block == ("# sent_id = 7\n# source = in.txt:3\n# text = don't\n"
                     "1\tdo\t_\tAUX\tVBP\t_\t_\t_\t_\tSpaceAfter=No\n2\tn't\t_\tPART\tRB\t_\t_\t_\t_\t_\n\n")
    with pytest.raises(ValueError, match="misc has 1 entries for 2 words"):
        format_conllu(s, misc=["_"])


def test_tags_of_rejects_unknown_tagset() -> None:
    with pytest.raises(ValueError, match="'upos' or 'xpos'"):
        tags_of([Sentence(["a"], ["X"], ["FW"])], "deprel")  # type: ignore[arg-type]


# --- where the files come from ----------------------------------------------------------------


@pytest.mark.parametrize("layout", ["subfolder", "flat"])
def test_seqtag_data_folder_both_layouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    folder = tmp_path / "ud-english-ewt" if layout == "subfolder" else tmp_path
    folder.mkdir(exist_ok=True)
    target = write(folder, GOOD, data.EWT_FILES["dev"])
    monkeypatch.setenv("SEQTAG_DATA", str(tmp_path))
    assert ewt_path("dev") == target
    assert [s.words for s in load_ewt("dev")][1] == ["Go"]


def test_data_dir_argument_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write(tmp_path, GOOD, data.EWT_FILES["test"])
    monkeypatch.setenv("SEQTAG_DATA", str(tmp_path / "elsewhere"))
    assert ewt_path("test", tmp_path) == target


@pytest.mark.bad_input
def test_missing_file_in_data_folder_names_both_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQTAG_DATA", str(tmp_path))
    with pytest.raises(CorpusNotFoundError, match="ud-english-ewt/en_ewt-ud-train.conllu and") as info:
        ewt_path("train")
    assert "unset SEQTAG_DATA" in str(info.value)


def test_unknown_split() -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        ewt_path("validation")  # type: ignore[arg-type]


def test_load_ewt_returns_fresh_copies(tmp_path: Path) -> None:
    write(tmp_path, GOOD, data.EWT_FILES["dev"])
    first = load_ewt("dev", tmp_path)
    first[0].words.append("CHANGED")
    assert load_ewt("dev", tmp_path)[0].words == ["I", "'m", "here", "."]


# --- the downloader, against a local server -----------------------------------------------------

BODY = GOOD.encode()
BODY_SHA = hashlib.sha256(BODY).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    mode = "ok"  # "ok" | "404" | "truncated" | "wrong"
    hits = 0

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).hits += 1
        if self.mode == "404":
            self.send_error(404, "Not Found")
            return
        body = BODY.replace(b"here", b"HERE") if self.mode == "wrong" else BODY
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.mode == "truncated" else body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:  # keep pytest output quiet
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.mode, Handler.hits = "ok", 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/r2.16"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("fault", "expected"),
    [("404", "HTTP 404"), ("truncated", "interrupted or truncated"), ("wrong", "checksum mismatch")],
)
@pytest.mark.bad_input
def test_download_fault_leaves_nothing_then_retry_succeeds(
    server: str, tmp_path: Path, fault: str, expected: str
) -> None:
    cache = tmp_path / "cache"
    Handler.mode = fault
    with pytest.raises(DownloadError, match=expected) as info:
        fetch("f.conllu", BODY_SHA, base_url=server, cache=cache, timeout=5)
    assert f"{server}/f.conllu" in str(info.value)
    assert cache_files(cache) == []  # no partial or temporary file left behind

    Handler.mode = "ok"
    path = fetch("f.conllu", BODY_SHA, base_url=server, cache=cache, timeout=5)
    assert path.read_bytes() == BODY and path.parent == cache / "ud-english-ewt"
    assert cache_files(cache) == ["f.conllu"]


def test_download_happens_once_then_cache_is_used(server: str, tmp_path: Path) -> None:
    for _ in range(2):
        fetch("f.conllu", BODY_SHA, base_url=server, cache=tmp_path, timeout=5)
    assert Handler.hits == 1


def test_ewt_path_downloads_when_no_data_folder(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEQTAG_DATA", "")  # empty = unset
    monkeypatch.setenv("SEQTAG_CACHE", str(tmp_path))
    monkeypatch.setenv("SEQTAG_DATA_URL", server)
    monkeypatch.setitem(data.EWT_SHA256, "dev", BODY_SHA)
    path = ewt_path("dev")
    assert path == tmp_path / "ud-english-ewt" / data.EWT_FILES["dev"]
    assert [s.words[0] for s in load_ewt("dev")] == ["I", "Go"]


@pytest.mark.bad_input
def test_unreachable_server_is_a_download_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port on 127.0.0.1 that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="interrupted or truncated"):
        fetch("f.conllu", BODY_SHA, base_url=f"http://127.0.0.1:{port}", cache=tmp_path, timeout=5)
    assert cache_files(tmp_path) == []


# --- the real treebank (when a data folder is there) -------------------------------------------

SHARED = Path(os.environ.get("SEQTAG_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
#: whether SHARED holds the treebank in either layout load_ewt reads: SHARED/ud-english-ewt/ or the files in SHARED
HAVE_EWT = (SHARED / "ud-english-ewt").is_dir() or (SHARED / "en_ewt-ud-dev.conllu").is_file()


@pytest.mark.skipif(not HAVE_EWT, reason="UD English EWT not available here")
def test_real_ewt_dev_matches_the_published_counts() -> None:
    dev = load_ewt("dev", SHARED)
    assert len(dev) == 2001 and sum(len(s) for s in dev) == 25147
    path = ewt_path("dev", SHARED)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == data.EWT_SHA256["dev"]
    assert {t for s in dev for t in s.upos} <= {
        "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
        "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
    }
