"""Tag whole inputs with a :class:`~seqtag.tagger.TrainedTagger`: CoNLL-U or text in, CoNLL-U out.

What ``python -m seqtag tag`` does with its input, usable from Python::

    from seqtag.tagio import tag_conllu_lines, tag_text_lines
    with open("in.conllu", "rb") as f, open("out.conllu", "wb") as out:
        tag_conllu_lines(tagger, f, out, "in.conllu")    # the tag column(s) rewritten, every other byte kept

A jointly trained tagger (``tagger.aux_tagset`` set) writes both tag columns, UPOS (4) and XPOS
(5), from one forward pass; ``aux=False`` writes its main tag set's column only. Inputs are
streamed in groups of ``batch_size`` sentences, never held whole.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from seqtag.data import TAG_COLUMN, Sentence, format_conllu, iter_conllu

if TYPE_CHECKING:
    from seqtag.tagger import TrainedTagger

__all__ = ["output", "sniff", "tag_stream", "tag_conllu_lines", "tag_text_lines", "written_tagsets"]

_TOKEN_LINE = re.compile(rb"^\d+([.-]\d+)?\t")


@contextlib.contextmanager
def output(path: Path | None) -> Iterator[IO[bytes]]:
    """``path`` written atomically (:func:`seqtag.io.atomic_write`: all or nothing), or stdout when ``None``."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    from seqtag.io import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        yield f


def sniff(lines: Iterator[bytes], fmt: str = "auto") -> tuple[Iterator[bytes], str]:
    """Decide ``"conllu"`` or ``"text"`` from the first non-blank line, without losing any line.

    ``fmt`` other than ``"auto"`` is returned as it is. CoNLL-U: the first non-blank line is a
    comment (``#``) or a token line (``1\\t...``, ``1-2\\t...``, ``1.1\\t...``); else text.

    Returns:
        ``(lines, fmt)``: an iterator over every input line (the ones read to decide included).
    """
    if fmt != "auto":
        return lines, fmt
    seen: list[bytes] = []
    for line in lines:
        seen.append(line)
        if line.strip():
            fmt = "conllu" if line.lstrip().startswith(b"#") or _TOKEN_LINE.match(line) else "text"
            break
    return itertools.chain(seen, lines), ("text" if fmt == "auto" else fmt)


def written_tagsets(tagger: TrainedTagger, aux: bool = True) -> tuple[str, ...]:
    """The tag sets a tagger writes, in CoNLL-U column order: ``("upos",)``, ``("xpos",)``, or
    ``("upos", "xpos")`` for a jointly trained tagger (unless ``aux=False``)."""
    if aux and tagger.aux_tagset is not None:
        return ("upos", "xpos")
    return (tagger.tagset,)


def _predict(tagger: TrainedTagger, words: list[list[str]], batch_size: int, both: bool) -> list[list[tuple[str, ...]]]:
    """Per sentence, per word: the tags of :func:`written_tagsets` (one tuple per word)."""
    if both:
        return tagger.tag(words, batch_size, both=True)  # type: ignore[return-value]
    return [[(t,) for t in tags] for tags in tagger.tag(words, batch_size)]


def _batched(items: Iterable[Any], size: int, weight: Callable[[Any], int]) -> Iterator[list[Any]]:
    """Group ``items`` so that each group holds ``size`` weighted items (the last may hold fewer)."""
    group: list[Any] = []
    count = 0
    for item in items:
        group.append(item)
        count += weight(item)
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group


def tag_conllu_lines(
    tagger: TrainedTagger,
    lines: Iterable[bytes],
    out: IO[bytes],
    source: str = "<stream>",
    batch_size: int = 256,
    aux: bool = True,
) -> tuple[int, int]:
    """Tag CoNLL-U read line by line: the tagger's column(s) replaced, every other byte kept.

    Args:
        tagger: the trained tagger (its ``tagset`` names the column: UPOS 4, XPOS 5).
        lines: the input's raw lines (``bytes``, endings included), e.g. an open binary file.
        out: where the rewritten lines go (binary).
        source: the input's name in error messages.
        batch_size: sentences tagged together (the input is streamed, never held whole).
        aux: a jointly trained tagger also rewrites its second tag set's column (both UPOS and
            XPOS, from one forward pass); ``False``: the main tag set's column only.

    Returns:
        ``(sentences, tokens)`` tagged.

    Raises:
        seqtag.data.ConlluFormatError: a malformed line (``source:line: problem``).
    """
    tagsets = written_tagsets(tagger, aux)
    columns = [TAG_COLUMN[t] for t in tagsets]
    sentences = tokens = 0
    for group in _batched(iter_conllu(lines, source), batch_size, lambda c: c.sentence is not None):
        labelled = [c for c in group if c.sentence is not None]
        predicted = iter(_predict(tagger, [c.sentence.words for c in labelled], batch_size, len(tagsets) == 2))
        for chunk in group:
            if chunk.sentence is not None:
                for row, tags in zip(chunk.word_rows, next(predicted), strict=True):
                    cols = chunk.lines[row].split(b"\t")
                    for column, tag in zip(columns, tags, strict=True):
                        cols[column] = tag.encode("utf-8")
                    chunk.lines[row] = b"\t".join(cols)
                sentences, tokens = sentences + 1, tokens + len(chunk.word_rows)
            out.writelines(chunk.lines)
    return sentences, tokens


def _text_sentences(lines: Iterable[bytes], source: str) -> Iterator[tuple[int, str]]:
    for lineno, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8").removeprefix("\ufeff") if lineno == 1 else raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{source}:{lineno}: not UTF-8 (byte 0x{raw[exc.start]:02x}); convert the input to UTF-8") from None
        if text.strip():
            yield lineno, text.strip()


def tag_text_lines(
    tagger: TrainedTagger,
    lines: Iterable[bytes],
    out: IO[bytes],
    source: str = "<stream>",
    batch_size: int = 256,
    tokenize: bool = False,
    aux: bool = True,
) -> tuple[int, int]:
    """Tag text, one sentence per non-blank line; write one CoNLL-U block per line.

    Each block says where its words came from: ``# source = SOURCE:LINE``, ``# text =`` the
    line as typed, and ``SpaceAfter=No`` in the MISC column of a token glued to the next one
    (UD's convention: the text can be rebuilt from the tokens). With ``tokenize``, lines are
    split by :func:`seqtag.tokenize.tokenize` (``don't`` -> ``do n't``); else at spaces. The
    tagger's column is filled (both UPOS and XPOS for a jointly trained tagger, unless
    ``aux=False``), the other one is ``_``.

    Returns:
        ``(sentences, tokens)`` tagged.

    Raises:
        ValueError: a line that is not UTF-8 (``source:line``), or no sentence at all.
    """
    def spans(text: str) -> list[tuple[int, int]]:
        if tokenize:
            from seqtag.tokenize import token_spans

            return token_spans(text)
        return [m.span() for m in re.finditer(r"\S+", text)]

    tagsets = written_tagsets(tagger, aux)
    sentences = tokens = 0
    for group in _batched(_text_sentences(lines, source), batch_size, lambda _: 1):
        cuts = [spans(text) for _, text in group]
        words = [[text[a:b] for a, b in cut] for (_, text), cut in zip(group, cuts, strict=True)]
        predicted = _predict(tagger, words, batch_size, len(tagsets) == 2)
        for (lineno, text), ws, cut, tags in zip(group, words, cuts, predicted, strict=True):
            sentences += 1
            tokens += len(ws)
            column = {"upos": ["_"] * len(ws), "xpos": ["_"] * len(ws)}
            for k, tagset in enumerate(tagsets):
                column[tagset] = [t[k] for t in tags]
            glued = ["SpaceAfter=No" if b == a2 else "_" for (_, b), (a2, _) in zip(cut, cut[1:], strict=False)]
            block = format_conllu(Sentence(ws, column["upos"], column["xpos"], sent_id=str(sentences), line=lineno,
                                           text=text), {"source": f"{source}:{lineno}"}, [*glued, "_"])
            out.write(block.encode("utf-8"))
    if sentences == 0:
        raise ValueError(f"{source}: no sentence to tag (the input is empty or blank)")
    return sentences, tokens


def tag_stream(
    tagger: TrainedTagger,
    lines: Iterable[bytes],
    out: IO[bytes],
    source: str = "<stream>",
    fmt: str = "auto",
    tokenize: bool = False,
    batch_size: int = 256,
    aux: bool = True,
) -> tuple[str, int, int]:
    """Tag a whole input, CoNLL-U or text (``fmt="auto"``: :func:`sniff`; raw text when ``tokenize``).

    Returns:
        ``(fmt, sentences, tokens)``: the format read (``"conllu"`` or ``"text"``) and the counts of
        :func:`tag_conllu_lines` or :func:`tag_text_lines`, which get the other arguments.
    """
    stream, fmt = sniff(iter(lines), "text" if tokenize and fmt == "auto" else fmt)
    if fmt == "conllu":
        if tokenize:
            raise ValueError("--tokenize splits raw text; CoNLL-U input is already split into words (drop --tokenize)")
        return fmt, *tag_conllu_lines(tagger, stream, out, source, batch_size, aux)
    return fmt, *tag_text_lines(tagger, stream, out, source, batch_size, tokenize, aux)
