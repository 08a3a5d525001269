"""Words and tags <-> integer ids, word normalisation, unknown-word classes, building vocabularies.

Reserved ids: ``<pad>`` is always 0 and, for vocabularies with an unknown token, ``<unk>`` is 1.
A tag vocabulary has ``<pad>`` only: an unknown tag is an error, not a guess.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from seqtag.data import Sentence, tags_of
from seqtag.io import write_json

__all__ = [
    "Vocab",
    "PAD",
    "UNK",
    "PAD_ID",
    "UNK_ID",
    "normalize_word",
    "unk_signature",
    "lookup_forms",
    "build_vocabs",
    "seen_pairs",
]

PAD = "<pad>"
UNK = "<unk>"
PAD_ID = 0
UNK_ID = 1


class Vocab:
    """A bijection between tokens and ids, with ``<pad>`` = 0 and (optionally) ``<unk>`` = 1.

    Args:
        tokens: the ordinary tokens, in id order (ids start after the reserved ones).
        unk: whether the vocabulary has ``<unk>`` (words: yes; tags: no).

    >>> v = Vocab(["is", "it"])
    >>> v.encode(["is", "it", "late"])
    [2, 3, 1]
    >>> v.decode([2, 3, 1])
    ['is', 'it', '<unk>']
    """

    def __init__(self, tokens: Iterable[str] = (), *, unk: bool = True) -> None:
        self.unk = unk
        self.itos: list[str] = [PAD, UNK] if unk else [PAD]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        for token in tokens:
            if not isinstance(token, str):
                raise TypeError(f"tokens must be str, got {type(token).__name__}: {token!r}")
            if token in self.stoi:
                raise ValueError(f"duplicate token {token!r} in vocabulary")
            self.stoi[token] = len(self.itos)
            self.itos.append(token)

    @classmethod
    def from_counts(
        cls, counts: Counter[str] | dict[str, int], *, min_freq: int = 1, unk: bool = True
    ) -> Vocab:
        """Build from token counts, keeping tokens seen at least ``min_freq`` times.

        Order: most frequent first, ties broken alphabetically, so the same counts give the same ids.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        kept = [t for t, c in counts.items() if c >= min_freq and t not in (PAD, UNK)]
        kept.sort(key=lambda t: (-counts[t], t))
        return cls(kept, unk=unk)

    @classmethod
    def build(
        cls, sentences: Iterable[Sequence[str]], *, min_freq: int = 1, unk: bool = True
    ) -> Vocab:
        """Count the tokens of ``sentences`` (lists of tokens) and build with :meth:`from_counts`."""
        counts: Counter[str] = Counter()
        for sentence in sentences:
            if isinstance(sentence, str):
                raise TypeError("sentences must be lists of tokens, not strings")
            counts.update(sentence)
        return cls.from_counts(counts, min_freq=min_freq, unk=unk)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos and self.unk == other.unk

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, unk={self.unk})"

    def index(self, token: str) -> int:
        """The id of ``token``; ``<unk>``'s id when unknown, or ``KeyError`` without ``<unk>``."""
        idx = self.stoi.get(token)
        if idx is not None:
            return idx
        if self.unk:
            return UNK_ID
        raise KeyError(f"unknown token {token!r} (this vocabulary has no <unk>; known: {self.itos[1:8]}...)")

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Tokens -> ids (a list of int, same length)."""
        if isinstance(tokens, str):
            raise TypeError("encode takes a list of tokens, not a string; split it first")
        return [self.index(t) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> tokens. Accepts a list of int or a 1-D integer tensor."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise IndexError(f"id {i} is out of range for a vocabulary of size {len(self)}")
            out.append(self.itos[i])
        return out

    def to_dict(self) -> dict[str, object]:
        """A JSON-able description (used inside checkpoints)."""
        return {"itos": list(self.itos), "unk": self.unk}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Vocab:
        """Inverse of :meth:`to_dict`; checks the reserved tokens are where they must be."""
        try:
            itos = list(data["itos"])  # type: ignore[call-overload]
            unk = bool(data["unk"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a vocabulary description: missing {exc}") from exc
        reserved = [PAD, UNK] if unk else [PAD]
        if itos[: len(reserved)] != reserved:
            raise ValueError(f"vocabulary must start with {reserved}, got {itos[:2]}")
        return cls(itos[len(reserved) :], unk=unk)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write as JSON, atomically (:func:`seqtag.io.write_json`): never a half-written file."""
        write_json(path, self.to_dict(), indent=None)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON vocabulary ({exc})") from exc
        return cls.from_dict(data)


def normalize_word(word: str) -> str:
    """The book's word normalisation policy, applied before looking a word up.

    * Case is **kept**: capitals are strong evidence for proper nouns (``NNP``/``PROPN``).
    * Every digit becomes ``0``: ``1984`` and ``2016`` share the entry ``0000``, so numbers
      that never occurred in training are still in the vocabulary by shape.

    The character CNN and the GloVe lookup see the raw word, not this form.
    """
    return "".join("0" if ch.isdigit() else ch for ch in word)


_SUFFIXES = ("ing", "ed", "ly", "ion", "er", "est", "al", "ive", "ous", "able", "ful", "ness", "ment", "ity", "s")


def unk_signature(word: str) -> str:
    """The class of a word the vocabulary does not know: its shape and, for words, a suffix.

    >>> unk_signature("Qaim"), unk_signature("blogging"), unk_signature("1,500"), unk_signature("NATO")
    ('<unk:Cap>', '<unk:low-ing>', '<unk:num>', '<unk:CAPS>')
    """
    if not isinstance(word, str):
        raise TypeError(f"unk_signature needs a str, got {type(word).__name__}: {word!r}")
    if any(ch.isdigit() for ch in word):
        return "<unk:num>"
    if not any(ch.isalpha() for ch in word):
        return "<unk:sym>"
    if word.isupper() and len(word) > 1:
        return "<unk:CAPS>"
    shape = "Cap" if word[0].isupper() else "hyph" if "-" in word else "low"
    lower = word.lower()
    suffix = next((x for x in _SUFFIXES if lower.endswith(x) and len(lower) > len(x) + 2), None)
    return f"<unk:{shape}-{suffix}>" if suffix else f"<unk:{shape}>"


def lookup_forms(words: Vocab, sentence: Sequence[str], signatures: bool, lowercase: bool = False) -> list[str]:
    """The vocabulary entries for ``sentence`` (a list of words): normalised words, unknown ones
    as their :func:`unk_signature` (with ``signatures``).

    With ``lowercase``, an unknown word whose lower case is known (``Cream`` -> ``cream``) takes
    that entry first (used with ``TrainConfig.expand_vocab``, whose GloVe words are lower case).
    """
    if isinstance(sentence, str):
        raise TypeError("lookup_forms takes a list of words, not a string; split it first")
    forms = [normalize_word(w) for w in sentence]
    if lowercase:
        forms = [f.lower() if f not in words and f.lower() in words else f for f in forms]
    if not signatures:
        return forms
    return [f if f in words else unk_signature(w) for f, w in zip(forms, sentence, strict=True)]


def build_vocabs(
    sentences: Sequence[Sentence], tagset: str, min_freq: int, signatures: bool = False
) -> tuple[Vocab, Vocab, Vocab]:
    """``(words, tags, chars)`` vocabularies of a training set (:class:`seqtag.data.Sentence` list).

    Words are normalised first (:func:`normalize_word`) and kept when seen at least ``min_freq``
    times; with ``signatures``, the rarer ones are counted as their :func:`unk_signature` instead.
    Tags (``tagset``: ``"upos"`` or ``"xpos"``) have no ``<unk>``; characters come from the raw words.
    """
    if tagset not in ("upos", "xpos"):
        raise ValueError(f"tagset must be 'upos' or 'xpos', got {tagset!r}")
    words = Vocab.build([[normalize_word(w) for w in s.words] for s in sentences], min_freq=min_freq)
    if signatures:  # the rare words' classes, in the order of their frequency
        rare = Vocab.build([[unk_signature(w) for w in s.words if normalize_word(w) not in words] for s in sentences])
        words = Vocab([*words.itos[2:], *rare.itos[2:]])
    tags = Vocab.build(tags_of(sentences, tagset), unk=False)  # type: ignore[arg-type]
    chars = Vocab.build([list(w) for s in sentences for w in s.words])
    return words, tags, chars


def seen_pairs(
    sentences: Sequence[Sentence], tagset: str, second: str, tags: Vocab, second_tags: Vocab
) -> set[tuple[int, int]]:
    """The ``(tag id, second tag id)`` pairs of two tag sets that some word of ``sentences`` has
    (``tagset``, ``second``: ``"upos"``/``"xpos"``; ids from ``tags`` and ``second_tags``), e.g.
    ``(PROPN, NNP)`` but never ``(VERB, NNP)``: the pairs a jointly decoding tagger may predict
    (:meth:`seqtag.models.Tagger.set_tag_pairs`).

    Raises:
        ValueError: a tag is missing from its vocabulary (``sentences`` are not the training data).
    """
    pairs: set[tuple[int, int]] = set()
    for sentence in sentences:
        for tag, other in zip(sentence.tags(tagset), sentence.tags(second), strict=True):  # type: ignore[arg-type]
            if tag not in tags or other not in second_tags:
                raise ValueError(f"line {sentence.line}: tag pair ({tag!r}, {other!r}) is not in the tag vocabularies")
            pairs.add((tags.stoi[tag], second_tags.stoi[other]))
    return pairs
