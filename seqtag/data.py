"""Corpora: find them, download them (pooch, checksummed), parse them (the ``conllu`` package).

The book's real corpus is the Universal Dependencies English Web Treebank (UD English EWT,
release 2.16, CC BY-SA 4.0: https://github.com/UniversalDependencies/UD_English-EWT).

Where :func:`ewt_path` looks, in this order:

1. a folder given as argument, else the folder named by the environment variable
   ``SEQTAG_DATA`` (an empty value counts as unset): ``<folder>/ud-english-ewt/<file>`` or
   ``<folder>/<file>``. Files found there are used as they are (no checksum: it may be your
   own corpus in the same format);
2. the user cache (``SEQTAG_CACHE``, default :func:`platformdirs.user_cache_dir`), filled on
   first use by :func:`seqtag.download.fetch` from the official URLs (``SEQTAG_DATA_URL``
   overrides the base URL). Every download is checked against its known sha256 and written
   atomically: a failed download leaves nothing behind.

A CoNLL-U file is parsed sentence by sentence with :func:`conllu.parse_token_and_metadata`;
multi-word token lines (``8-9``) and empty nodes (``8.1``) are skipped, since neither is a
tagged word. Errors name the file and the line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Literal

import conllu
from conllu.exceptions import ParseException

from seqtag.download import EWT_FOLDER, cache_dir, env_path, fetch

__all__ = [
    "Sentence",
    "ConlluChunk",
    "ConlluFormatError",
    "CorpusNotFoundError",
    "EWT_FILES",
    "EWT_SHA256",
    "Split",
    "TagsetName",
    "iter_conllu",
    "read_conllu",
    "format_conllu",
    "ewt_path",
    "load_ewt",
    "tags_of",
    "subset",
]

Split = Literal["train", "dev", "test"]
TagsetName = Literal["upos", "xpos"]

EWT_FILES: dict[str, str] = {
    "train": "en_ewt-ud-train.conllu",
    "dev": "en_ewt-ud-dev.conllu",
    "test": "en_ewt-ud-test.conllu",
}
EWT_SHA256: dict[str, str] = {
    "train": "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b",
    "dev": "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6",
    "test": "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd",
}
# Only the columns we use: skipping FEATS/DEPS/MISC parsing makes reading twice as fast.
_FIELDS = ("id", "form", "lemma", "upos", "xpos")
# CoNLL-U column (0-based) that holds each tag set; the `tag` command writes predictions there.
TAG_COLUMN: dict[str, int] = {"upos": 3, "xpos": 4}


class ConlluFormatError(ValueError):
    """A CoNLL-U file that cannot be read; the message starts with ``file:line:``."""

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        self.source, self.line, self.problem = source, line, problem
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}")


class CorpusNotFoundError(FileNotFoundError):
    """A corpus file is neither in the data folder nor obtainable."""


@dataclass
class Sentence:
    """One sentence of a CoNLL-U file: its words and both tag columns, aligned.

    Attributes:
        words: FORM of each word (multi-word tokens and empty nodes excluded).
        upos: column 4 (universal POS, 17 tags); ``"_"`` where the file has none.
        xpos: column 5 (language-specific POS: Penn Treebank tags for English); ``"_"`` if none.
        sent_id: the ``# sent_id = ...`` comment, or ``None``.
        line: 1-based line number where the sentence's block starts (for error messages).
        text: the ``# text = ...`` comment (the raw sentence), or ``None``.
    """

    words: list[str]
    upos: list[str]
    xpos: list[str]
    sent_id: str | None = None
    line: int = 0
    text: str | None = None

    def __len__(self) -> int:
        return len(self.words)

    def tags(self, tagset: TagsetName) -> list[str]:
        """The tags of ``tagset`` (``"upos"`` or ``"xpos"``)."""
        if tagset not in TAG_COLUMN:
            raise ValueError(f"tagset must be 'upos' or 'xpos', got {tagset!r}")
        return self.upos if tagset == "upos" else self.xpos


@dataclass
class ConlluChunk:
    """A run of raw lines of a CoNLL-U file: one sentence block, or a blank/comment-only run.

    Attributes:
        line: 1-based number of the first line.
        lines: the raw lines, line endings included: joining all chunks gives the file back.
        sentence: the parsed sentence, or ``None`` for blank lines and comment-only blocks.
        word_rows: for each word of ``sentence``, its index in ``lines``.
    """

    line: int
    lines: list[bytes]
    sentence: Sentence | None = None
    word_rows: list[int] = field(default_factory=list)


def _decode(raw: bytes, source: str, lineno: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConlluFormatError(
            source,
            lineno,
            f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
            "CoNLL-U files must be UTF-8: convert it, e.g. with iconv -t UTF-8",
        ) from None
    if lineno == 1:
        text = text.removeprefix("\ufeff")  # a byte-order mark is harmless
    return text.rstrip("\r\n")


def _parse_block(
    lines: list[str], first: int, source: str, tagset: str | None = None
) -> tuple[Sentence | None, list[int]]:
    """Parse one block of non-blank lines (comments + token lines) with the conllu package.

    With ``tagset``, every word must have a tag in that column (not empty, not ``_``).
    """
    token_rows = [k for k, line in enumerate(lines) if not line.lstrip().startswith("#")]
    if not token_rows:
        return None, []  # a comment-only block (e.g. a file header): nothing to tag
    for k in token_rows:
        cols = lines[k].split("\t")
        if len(cols) != 10:
            raise ConlluFormatError(
                source,
                first + k,
                f"expected 10 tab-separated columns, found {len(cols)} ({lines[k][:60]!r}); "
                "CoNLL-U separates columns with single tabs and writes _ for empty fields",
            )
    try:
        tokens = conllu.parse_token_and_metadata("\n".join(lines), fields=_FIELDS)
    except ParseException as exc:
        for k in token_rows:  # find the line conllu objected to
            try:
                conllu.parser.parse_line(lines[k].strip(), _FIELDS)
            except ParseException as line_exc:
                raise ConlluFormatError(source, first + k, str(line_exc)) from None
        raise ConlluFormatError(source, first, str(exc)) from None
    words: list[str] = []
    upos: list[str] = []
    xpos: list[str] = []
    word_rows: list[int] = []
    ranges: list[tuple[int, int, int]] = []  # (line, first word, last word) of multi-word tokens
    for k, token in zip(token_rows, tokens, strict=True):
        if isinstance(token["id"], tuple) and token["id"][1] == "-":
            ranges.append((first + k, token["id"][0], token["id"][2]))
        if not isinstance(token["id"], int):
            continue  # 8-9 (multi-word token) or 8.1 (empty node): not a tagged word
        if token["id"] != len(words) + 1:
            raise ConlluFormatError(
                source,
                first + k,
                f"word id {token['id']} where {len(words) + 1} was expected: ids count 1, 2, 3... "
                "within a sentence (is a blank line missing between two sentences?)",
            )
        form = lines[k].split("\t")[1]
        if token["form"] != form or not form:
            raise ConlluFormatError(
                source, first + k, f"bad FORM column {form!r} (empty, or holds two spaces in a row)"
            )
        words.append(form)
        upos.append(token["upos"] or "_")
        xpos.append(token["xpos"] or "_")
        word_rows.append(k)
        if tagset is not None and (upos if tagset == "upos" else xpos)[-1] == "_":
            raise ConlluFormatError(
                source,
                first + k,
                f"word {form!r} has no {tagset.upper()} tag (column {TAG_COLUMN[tagset] + 1} is "
                f"{lines[k].split(chr(9))[TAG_COLUMN[tagset]]!r}); tag every word, or choose the other "
                f"column with --tagset {'xpos' if tagset == 'upos' else 'upos'}",
            )
    if not words:
        raise ConlluFormatError(
            source, first, "sentence has token lines but no word (only multi-word tokens or empty nodes)"
        )
    for line, start, end in ranges:
        if not 1 <= start < end <= len(words):
            raise ConlluFormatError(
                source,
                line,
                f"multi-word token {start}-{end} spans words {start} to {end}, but the sentence has "
                f"{len(words)} word(s): the range and the word lines after it must match",
            )
    sent_id = tokens.metadata.get("sent_id")
    return Sentence(words, upos, xpos, sent_id, first, tokens.metadata.get("text")), word_rows


def iter_conllu(
    stream: BinaryIO | Iterable[bytes], source: str = "<stream>", tagset: TagsetName | None = None
) -> Iterator[ConlluChunk]:
    """Read CoNLL-U incrementally, keeping every raw byte (for tools that rewrite one column).

    Args:
        stream: a binary file (or any iterable of ``bytes`` lines with their endings).
        source: the name used in error messages.
        tagset: ``"upos"`` or ``"xpos"`` to require a tag in that column for every word (for
            training and evaluating); ``None`` (default) accepts ``_`` (for tagging).

    Yields:
        :class:`ConlluChunk` objects; ``b"".join`` of all their ``lines`` is the input.

    Raises:
        ConlluFormatError: with ``source:line``: non-UTF-8 bytes, a malformed line, an empty
            input, or an input without any sentence (e.g. only comments); with ``tagset``, a
            word whose tag in that column is empty or ``_``.
    """
    if tagset is not None and tagset not in TAG_COLUMN:
        raise ValueError(f"tagset must be 'upos' or 'xpos', got {tagset!r}")
    block: list[bytes] = []
    start = 0
    lineno = 0
    sentences = 0

    def flush() -> ConlluChunk:
        text = [_decode(raw, source, start + k) for k, raw in enumerate(block)]
        sentence, rows = _parse_block(text, start, source, tagset)
        return ConlluChunk(start, list(block), sentence, rows)

    for lineno, raw in enumerate(stream, start=1):
        if raw.strip() == b"":
            if block:
                chunk = flush()
                sentences += chunk.sentence is not None
                yield chunk
                block = []
            yield ConlluChunk(lineno, [raw])
            continue
        if not block:
            start = lineno
        block.append(raw)
    if block:
        chunk = flush()
        sentences += chunk.sentence is not None
        yield chunk
    if lineno == 0:
        raise ConlluFormatError(source, None, "empty file: expected CoNLL-U sentences")
    if sentences == 0:
        raise ConlluFormatError(
            source, None, f"no sentence in {lineno} line(s) (only comments or blank lines)"
        )


def read_conllu(path: str | os.PathLike[str], tagset: TagsetName | None = None) -> list[Sentence]:
    """All sentences of any CoNLL-U file (multi-word tokens and empty nodes are skipped).

    Args:
        path: the file (UTF-8).
        tagset: ``"upos"`` or ``"xpos"``: every word must have a tag in that column (what
            training and evaluation need); ``None`` accepts untagged words.

    Raises:
        FileNotFoundError: no such file.
        ConlluFormatError: the file is malformed, or (with ``tagset``) a word has no tag in that
            column; the message names the file and the line (``file:line: problem``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such CoNLL-U file")
    with path.open("rb") as f:
        return [c.sentence for c in iter_conllu(f, str(path), tagset) if c.sentence is not None]


def format_conllu(
    sentence: Sentence, comments: dict[str, str] | None = None, misc: Sequence[str] | None = None
) -> str:
    """One sentence as a CoNLL-U block (comment lines, 10-column word lines, a blank line).

    Columns other than ID, FORM, UPOS and XPOS are ``_``. ``sent_id`` becomes a comment, then
    ``comments`` (``# key = value``, e.g. where the sentence came from), then the text:
    ``sentence.text`` when set (the raw text the words were split from), else the words joined
    by spaces. ``misc`` fills the MISC column, one entry per word (e.g. ``SpaceAfter=No``).
    """
    if misc is not None and len(misc) != len(sentence.words):
        raise ValueError(f"misc has {len(misc)} entries for {len(sentence.words)} words")
    lines = [f"# sent_id = {sentence.sent_id}"] if sentence.sent_id else []
    for key, value in (comments or {}).items():
        lines.append(f"# {key} = {' '.join(str(value).split())}")
    text = sentence.text if sentence.text is not None else " ".join(sentence.words)
    lines.append(f"# text = {' '.join(text.split())}")
    for i, (word, upos, xpos) in enumerate(zip(sentence.words, sentence.upos, sentence.xpos, strict=True), 1):
        if not word or any(c in word for c in "\t\n\r"):
            raise ValueError(f"word {i} of sentence {sentence.sent_id!r} is empty or holds a tab/newline: {word!r}")
        extra = (misc[i - 1] if misc is not None else "") or "_"
        lines.append(f"{i}\t{word}\t_\t{upos or '_'}\t{xpos or '_'}\t_\t_\t_\t_\t{extra}")
    return "\n".join(lines) + "\n\n"


def tags_of(sentences: Iterable[Sentence], tagset: TagsetName = "upos") -> list[list[str]]:
    """The tag sequences of ``tagset`` (``"upos"`` or ``"xpos"``), one list per sentence."""
    if tagset not in TAG_COLUMN:
        raise ValueError(f"tagset must be 'upos' or 'xpos', got {tagset!r}")
    return [list(s.tags(tagset)) for s in sentences]


# ---------------------------------------------------------------------------------------------
# Finding and downloading the treebank


def _split_file(split: str) -> str:
    if split not in EWT_FILES:
        raise ValueError(f"split must be one of {sorted(EWT_FILES)}, got {split!r}")
    return EWT_FILES[split]


def ewt_path(split: Split, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of a UD English EWT file (``"train"``, ``"dev"`` or ``"test"``), downloading if needed.

    Args:
        split: which file.
        data_dir: a folder holding the files; defaults to ``$SEQTAG_DATA``. Without one, the file
            comes from the download cache (see :func:`seqtag.download.fetch`).

    Raises:
        CorpusNotFoundError: a data folder is set but does not hold the file.
        seqtag.download.DownloadError: the download failed.
    """
    fname = _split_file(split)
    folder = Path(data_dir).expanduser() if data_dir not in (None, "") else env_path("SEQTAG_DATA")
    if folder is None:
        return fetch(fname, EWT_SHA256[split])
    candidates = [folder / EWT_FOLDER / fname, folder / fname]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CorpusNotFoundError(
        f"{fname} not found in data folder {folder} (looked for {candidates[0]} and "
        f"{candidates[1]}); put the file there, or unset SEQTAG_DATA to download it to {cache_dir()}"
    )


@lru_cache(maxsize=8)
def _read_cached(path: str, mtime_ns: int, size: int) -> tuple[Sentence, ...]:
    return tuple(read_conllu(path))


def load_ewt(split: Split, data_dir: str | os.PathLike[str] | None = None) -> list[Sentence]:
    """Sentences of a UD English EWT split (train 12,544 / dev 2,001 / test 2,077 sentences).

    Parsed files are cached in memory for the process (keyed by path, size and modification
    time); each call returns fresh copies, so changing them does not change the cache.
    """
    path = ewt_path(split, data_dir).resolve()
    stat = path.stat()
    cached = _read_cached(str(path), stat.st_mtime_ns, stat.st_size)
    return [Sentence(list(s.words), list(s.upos), list(s.xpos), s.sent_id, s.line, s.text) for s in cached]


def subset(sentences: list[Sentence] | tuple[Sentence, ...], n: int | None, seed: int = 0) -> list[Sentence]:
    """A seeded random subset of ``n`` sentences in their original order (all when ``n`` is None)."""
    import random

    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
        raise ValueError(f"subset size must be an int >= 0 or None (all), got {n!r}")
    if n is None or n >= len(sentences):
        return list(sentences)
    keep = sorted(random.Random(seed).sample(range(len(sentences)), n))
    return [sentences[i] for i in keep]
