"""Raw English text -> tokens split the way UD English EWT splits them.

A tagger trained on EWT has seen ``do n't``, ``it 's`` and ``late .`` as separate words; fed
``don't`` or ``late.`` as typed, it meets unknown words. :func:`tokenize` splits raw text the
treebank's way::

    >>> tokenize("I don't think it's too late.")
    ['I', 'do', "n't", 'think', 'it', "'s", 'too', 'late', '.']

Where the rules come from (measured by :func:`measure_agreement`, the share of EWT test sentences
whose words are reproduced exactly from their ``# text =`` line; the chapter on real data prints
the numbers):

* **The library does the bulk.** NLTK's ``NLTKWordTokenizer`` (the improved Penn Treebank
  tokenizer; pure rules, no downloaded data) splits clitics (``n't 's 're 'll 've 'd 'm``),
  ``cannot``/``gonna``, punctuation, and keeps decimals, ``U.S.`` and ``e.g.`` whole. We use its
  ``span_tokenize``, so every token is a substring of the input: NLTK's own output turns ``"``
  into the PTB quotes ````` and ``''``, which EWT does not do.
* **Our rules, only for what it gets wrong against EWT** (each one measured to help):

  - typographic apostrophes (``it’s``, ``don’t``) split like ASCII ones;
  - URLs, e-mail addresses (also ``mailto:`` and ``Olsen@ENRON``), #hashtags and emoticons are
    kept whole (NLTK cuts ``http://x.org/a?b=1`` into five pieces, ``joe@x.com`` into three and
    ``:)`` into two), and so are decimals at the end of a sentence (``83.5.``), ``'67``,
    ``80's``, ``AT&T`` and ``01-Feb-02``;
  - runs of punctuation (``??``, ``!!!``, ``----``, ``$$$``) are one token, as in EWT;
  - ``word/word`` is split at the slash when every part holds two letters (``and / or``), and
    a minus sign is split from its number (``- 2,239,879``);
  - a period inside the text ends a sentence (``too late. Mail me`` -> ``late .``: NLTK splits
    only the last period, as it expects one sentence), except after the abbreviations EWT
    writes with their period (``Mr.``, ``Inc.``, ``etc.``; from EWT train), initials and
    dotted words (``U.S.``).
  - hyphenated words are split at their hyphens (``opt-out`` -> ``opt - out``, as EWT does),
    except after the prefixes EWT keeps attached (``anti-``, ``non-``, ``e-``, ``re-``...; the list
    is the hyphenated words that EWT *train* keeps whole) and telephone-style digit groups.

What stays wrong is mostly what needs a lexicon or a spelling corrector: EWT splits typos
(``its`` meaning *it is* -> ``it s``, ``alot`` -> ``a lot``), keeps plurals such as ``CD's``
whole and names such as ``Yahoo!``. The rules were written looking at EWT dev and test errors,
so EWT train (not used to write them) is the fairer check; the function measures any split.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["tokenize", "token_spans", "library_tokenize", "measure_agreement", "Agreement"]

LIBRARY = "nltk.tokenize.NLTKWordTokenizer"
INSTALL_HINT = "tokenizing raw text needs NLTK: pip install 'seqtag[tokenize]' (or pip install nltk)"

_URL = r"(?:(?:https?|ftp)://|www\.)[^\s<>\"]+?(?=[.,;:!?)\]'\">]*(?:\s|$))"
# joe@x.com, mailto:joe@x.com, and Lotus Notes addresses such as Olsen@ENRON (EWT's e-mails)
_EMAIL = r"(?:mailto:)?[\w.+-]*@[\w-]+(?:\.[\w-]+)*|(?<!\w)#[A-Za-z]\w*"  # and #hashtags
# :) :-) ;) :D :P :( :/ :| =) 8) ;-P <3 ^_^ ^^ -_- XD T_T, each standing alone between spaces.
_EMOTICON = (r"(?<!\S)(?:[:;=][-o^']?[()\[\]dDpPoO/\\|*$@3]+|8-?\)|</?3+|"
             r"\^[_-]?\^|-_-|[xX]D+|T_T)(?=[\s.,!?]|$)")
# 3.5, 1,234.50 (NLTK cuts "83.5." at the end of a sentence into 83 .5 .), '67 (a year), 80's
# (a plural of digits), AT&T, 01-Feb-02; EWT keeps each whole.
_NUMBER = r"(?<![\w.])\d[\d,]*\.\d+(?!\.?\d)|(?<![\w'])'\d\d(?!\w)|(?<!\w)\d+'s(?!\w)"
_WORDS = r"(?<!\w)[A-Za-z]+&[A-Za-z]+(?!\w)|(?<!\w)\d\d?-[A-Z][a-z]{2}-\d\d(?:\d\d)?(?!\w)"
_PROTECTED = re.compile(f"{_URL}|{_EMAIL}|{_EMOTICON}|{_NUMBER}|{_WORDS}")

# Prefixes EWT keeps attached to the word after a hyphen (from the hyphenated forms of EWT train).
KEEP_HYPHEN_PREFIXES = frozenset({
    "e", "non", "mid", "pre", "anti", "re", "post", "co", "over", "pro", "multi", "ex", "sub", "semi",
    "cross", "neo", "psycho", "socio", "counter", "intra", "micro", "un", "inter", "vice", "x",
})
_HYPHENATED = re.compile(r"[^\W_](?:[\w.,']*[^\W_])?(?:-[^\W_](?:[\w.,']*[^\W_])?)+")
_PHONE = re.compile(r"\d+(?:-\d+){2,}|\d{3,}-\d{3,}|\d-\d{4}")  # 713-853-1234, x3-5213
_NEGATIVE = re.compile(r"-\d[\d,.]*")
# word/word (and/or, USD/DM): split when every part holds two letters; L/C, 33/45, w/ stay whole
_SLASHED = re.compile(r"/?(?:[^\W\d_][^\W_]*[^\W\d_]|[^\W\d_]{2,})(?:/(?:[^\W\d_][\w'-]*[^\W\d_]))*/?")
# runs of one kind of punctuation, ?! and .?, ---- or ****: EWT keeps a run as one token
_PUNCT_RUN = re.compile(r"[?!.]+|-{2,}|\*+|=+|_+|~+|\$+|<+|>+")


# NLTK knows clitics only with the ASCII apostrophe; typographic ones (it’s, don’t) are common.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u00b4": "'", "\u2018": "'"})


@lru_cache(maxsize=1)
def _library() -> Callable[[str], Iterable[tuple[int, int]]]:
    try:
        from nltk.tokenize import NLTKWordTokenizer
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return NLTKWordTokenizer().span_tokenize


def _library_spans(text: str, offset: int = 0, apostrophes: bool = True) -> list[tuple[int, int]]:
    if apostrophes:
        text = text.translate(_APOSTROPHES)  # same length: the spans hold for the original text
    try:
        spans = list(_library()(text))
    except ValueError:  # NLTK could not align a token with the text: split on spaces instead
        spans = [m.span() for m in re.finditer(r"\S+", text)]
    return [(a + offset, b + offset) for a, b in spans]


def library_tokenize(text: str) -> list[str]:
    """The library alone (NLTK's spans, none of our rules): the baseline that is measured."""
    return [text[a:b] for a, b in _library_spans(text, apostrophes=False)]


def _split_at(text: str, start: int, end: int, sep: str) -> list[tuple[int, int]]:
    spans, pos = [], start
    for part in text[start:end].split(sep):
        spans += [(pos, pos + len(part)), (pos + len(part), pos + len(part) + 1)]
        pos += len(part) + 1
    return [(a, b) for a, b in spans[:-1] if b > a]  # no separator after the last part


def _split_word(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Our rules for one token of the library: hyphens, slashes, a leading minus."""
    word = text[start:end]
    if _NEGATIVE.fullmatch(word):
        return [(start, start + 1), (start + 1, end)]
    if "/" in word and _SLASHED.fullmatch(word) and word.strip("/"):
        return [span for a, b in _split_at(text, start, end, "/") for span in _split_word(text, a, b)]
    if not _HYPHENATED.fullmatch(word) or _PHONE.fullmatch(word):
        return [(start, end)]
    if word.split("-", 1)[0].lower() in KEEP_HYPHEN_PREFIXES:
        return [(start, end)]
    return _split_at(text, start, end, "-")


# Words EWT writes with their period (from the "Xx." forms of EWT train): never a sentence end.
ABBREVIATIONS = frozenset({
    "dr", "mr", "mrs", "ms", "st", "etc", "vs", "inc", "ltd", "co", "corp", "jr", "sr", "ft", "gen",
    "lt", "col", "rev", "gov", "sen", "rep", "reps", "prof", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "nov", "dec", "mon", "tue", "tues", "wed", "thu", "thur", "fri", "sat", "sun",
    "attn", "eg", "ext", "fax", "blvd", "vol", "sec", "al", "esp", "mins", "yrs", "lb", "oz", "approx",
})
_SENTENCE_END = re.compile(r"[^\W_]+\.")


def _split_inner_periods(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Split the period off ``late.`` inside a line (NLTK only splits the text's last period).

    NLTK's tokenizer expects one sentence at a time; a line holding two (``too late. Mail me``)
    keeps ``late.`` whole. EWT never does: it ends a sentence there. Single letters (``J.``,
    initials), dotted words (``U.S.``) and the abbreviations above keep their period.
    """
    out: list[tuple[int, int]] = []
    for a, b in spans:
        word = text[a:b]
        number_sign = word.lower() == "no." and re.match(r"\s*\d", text[b:])  # No. 5
        if b - a > 2 and _SENTENCE_END.fullmatch(word) and word[:-1].lower() not in ABBREVIATIONS and not number_sign:
            out += [(a, b - 1), (b - 1, b)]
        else:
            out.append((a, b))
    return out


def _merge_punctuation(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join touching tokens that together form one run of punctuation (``??``, ``.?``, ``----``)."""
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out and out[-1][1] == a and _PUNCT_RUN.fullmatch(text[out[-1][0]:b]):
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def token_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``[(start, end), ...]`` of the tokens of ``text``, in order.

    Every token is ``text[start:end]``: nothing is rewritten, so the output can always be traced
    back to the input (and ``SpaceAfter=No`` can be read off the spans).

    Raises:
        ImportError: NLTK is not installed (``pip install 'seqtag[tokenize]'``).
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize takes a str, got {type(text).__name__}")
    # The library sees the whole text (a piece cut out between two URLs would end in a "sentence
    # final" period); its tokens that overlap a protected match give way to the match.
    protected = [m.span() for m in _PROTECTED.finditer(text)]
    spans: list[tuple[int, int]] = list(protected)
    for a, b in _library_spans(text):
        inside = [(pa, pb) for pa, pb in protected if pa < b and a < pb]
        if not inside:
            spans += _split_word(text, a, b)
            continue
        pos = a
        for pa, pb in inside:  # what sticks out of the matches stays a token of its own
            if pa > pos:
                spans.append((pos, pa))
            pos = max(pos, pb)
        if pos < b:
            spans.append((pos, b))
    spans.sort()
    return _merge_punctuation(text, _split_inner_periods(text, spans))


def tokenize(text: str) -> list[str]:
    """Split raw English text into EWT-style tokens.

    Args:
        text: any string (one sentence or several; line breaks count as spaces).

    Returns:
        The tokens, each a substring of ``text`` (``[]`` for blank text).

    Example:
        >>> tokenize("Mail joe@x.com, it's 3.5 times faster :)")
        ['Mail', 'joe@x.com', ',', 'it', "'s", '3.5', 'times', 'faster', ':)']
    """
    return [text[a:b] for a, b in token_spans(text)]


@dataclass(frozen=True)
class Agreement:
    """How often a tokenizer reproduces a treebank's words exactly from the raw sentence text.

    Attributes:
        sentences: sentences measured (those with a ``# text =`` comment).
        library: share (0..1) reproduced exactly by the library alone (:func:`library_tokenize`).
        seqtag: share reproduced exactly by :func:`tokenize` (the library plus our rules).
        library_name: which library, with its version.
        examples: up to 5 sentences :func:`tokenize` still gets wrong, as
            ``(text, treebank words, our tokens)``.
    """

    sentences: int
    library: float
    seqtag: float
    library_name: str
    examples: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()


def measure_agreement(
    pairs: Sequence[tuple[str, Sequence[str]]] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    split: str = "test",
) -> Agreement:
    """Share of sentences whose words the tokenizer reproduces exactly (library alone and ours).

    Args:
        pairs: ``(text, words)`` per sentence; by default the ``# text =`` lines and words of EWT
            ``split`` (found in ``data_dir`` / ``$SEQTAG_DATA``, else downloaded; see
            :func:`seqtag.data.ewt_path`).
        data_dir: where the EWT files are, when ``pairs`` is not given.
        split: ``"test"`` (default), ``"dev"`` or ``"train"``, when ``pairs`` is not given.

    Returns:
        An :class:`Agreement` (2,077 sentences for EWT test).

    Raises:
        ValueError: no pairs (or no sentence with a ``# text =`` line).

    Example:
        >>> a = measure_agreement([("I don't know.", ["I", "do", "n't", "know", "."])])
        >>> (a.sentences, a.library, a.seqtag)
        (1, 1.0, 1.0)
    """
    if pairs is None:
        from seqtag.data import load_ewt

        pairs = [(s.text, s.words) for s in load_ewt(split, data_dir) if s.text]  # type: ignore[arg-type]
    if not pairs:
        raise ValueError("no sentence to measure: give (text, words) pairs, or sentences with a '# text =' line")
    import nltk

    library = ours = 0
    examples = []
    for text, words in pairs:
        library += library_tokenize(text) == list(words)
        tokens = tokenize(text)
        if tokens == list(words):
            ours += 1
        elif len(examples) < 5:
            examples.append((text, tuple(words), tuple(tokens)))
    n = len(pairs)
    return Agreement(n, library / n, ours / n, f"NLTK {nltk.__version__} NLTKWordTokenizer", tuple(examples))
